//! The fake endpoint's contract checks have teeth: requests that break
//! OpenAI's chat-completions request contract are refused with the API's
//! error shape, and a conforming one is answered with a chat completion.

mod support;

use serde_json::{Value, json};
use support::contract::check_body;
use support::{Behaviour, FakeOpenAi};

fn valid() -> Value {
    json!({
        "model": "judge-mini",
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "temperature": 0,
        "max_tokens": 100,
        "response_format": {"type": "json_object"},
    })
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut request = valid();
    change(&mut request);
    request
}

/// The `param` (and the start of the message) of the refusal.
fn refusal(request: &Value) -> (Option<String>, String) {
    let error = check_body(request.to_string().as_bytes()).expect_err("should be refused");
    (error.param, error.message)
}

#[test]
fn a_conforming_request_passes() {
    assert!(check_body(valid().to_string().as_bytes()).is_ok());
    let minimal = json!({"model": "m", "messages": [{"role": "developer", "content": "x"}]});
    assert!(check_body(minimal.to_string().as_bytes()).is_ok());
    let tool_turn = json!({"model": "m", "messages": [
        {"role": "assistant", "content": null, "tool_calls": []},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
    ]});
    assert!(check_body(tool_turn.to_string().as_bytes()).is_ok());
}

#[test]
fn each_broken_rule_is_refused_with_its_parameter() {
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (
            with(|r| r["temprature"] = json!(0)),
            None,
            "Unrecognized request argument supplied: temprature",
        ),
        (
            with(|r| {
                r.as_object_mut().map(|o| o.remove("model"));
            }),
            None,
            "you must provide a model",
        ),
        (
            with(|r| r["model"] = json!("")),
            None,
            "you must provide a model",
        ),
        (
            with(|r| r["model"] = json!(4)),
            Some("model"),
            "Invalid type",
        ),
        (
            with(|r| {
                r.as_object_mut().map(|o| o.remove("messages"));
            }),
            Some("messages"),
            "Missing required parameter",
        ),
        (
            with(|r| r["messages"] = json!([])),
            Some("messages"),
            "Invalid 'messages': empty array",
        ),
        (
            with(|r| r["messages"] = json!("hi")),
            Some("messages"),
            "Invalid type",
        ),
        (
            with(|r| r["messages"][1]["role"] = json!("customer")),
            Some("messages[1].role"),
            "Invalid value: 'customer'",
        ),
        (
            with(|r| r["messages"][1]["role"] = json!("function")),
            Some("messages[1].role"),
            "Invalid value",
        ),
        (
            with(|r| r["messages"][0]["content"] = json!(7)),
            Some("messages[0].content"),
            "Invalid type",
        ),
        (
            with(|r| {
                r["messages"][0]
                    .as_object_mut()
                    .map(|o| o.remove("content"));
            }),
            Some("messages[0].content"),
            "Missing required parameter",
        ),
        (
            with(|r| r["messages"][1]["content"] = json!([{"type": "text"}])),
            Some("messages[1].content[0].text"),
            "Missing required parameter",
        ),
        (
            with(|r| r["messages"][0]["content"] = json!([{"type": "image_url", "image_url": {}}])),
            Some("messages[0].content[0].type"),
            "Invalid value",
        ),
        (
            with(|r| r["messages"][0]["speaker"] = json!("x")),
            Some("messages[0]"),
            "Additional properties are not allowed",
        ),
        (
            with(|r| {
                r["messages"] =
                    json!([{"role": "tool", "content": "x"}, {"role": "user", "content": "json"}])
            }),
            Some("messages[0].tool_call_id"),
            "Missing required parameter",
        ),
        (
            with(|r| r["temperature"] = json!(2.5)),
            Some("temperature"),
            "Invalid 'temperature': decimal above maximum value",
        ),
        (
            with(|r| r["temperature"] = json!(-0.1)),
            Some("temperature"),
            "Invalid 'temperature': decimal below minimum value",
        ),
        (
            with(|r| r["temperature"] = json!("0")),
            Some("temperature"),
            "Invalid type",
        ),
        (
            with(|r| r["max_tokens"] = json!(0)),
            Some("max_tokens"),
            "Invalid 'max_tokens': integer below minimum value",
        ),
        (
            with(|r| r["max_tokens"] = json!(10.5)),
            Some("max_tokens"),
            "Invalid type",
        ),
        (
            with(|r| r["max_completion_tokens"] = json!(-1)),
            Some("max_completion_tokens"),
            "Invalid 'max_completion_tokens': integer below minimum value",
        ),
        (
            with(|r| r["response_format"] = json!({"type": "xml"})),
            Some("response_format.type"),
            "Invalid value: 'xml'",
        ),
        (
            with(|r| r["response_format"] = json!({"type": "json_schema"})),
            Some("response_format.json_schema.name"),
            "Missing required parameter",
        ),
        (
            with(|r| r["messages"][0]["content"] = json!("Answer briefly.")),
            Some("messages"),
            "'messages' must contain the word 'json'",
        ),
    ];
    for (request, param, message) in cases {
        let (got_param, got_message) = refusal(&request);
        assert_eq!(got_param.as_deref(), param, "{request}");
        assert!(
            got_message.starts_with(message),
            "{got_message:?} for {request}"
        );
    }
    assert!(check_body(b"not json").is_err());
    assert!(check_body(b"[]").is_err());
}

#[tokio::test]
async fn refusals_use_openais_error_shape_over_http() {
    let endpoint = FakeOpenAi::start(Behaviour::Decide, Some("sk-k")).await;
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", endpoint.base_url());

    let bad = client
        .post(&url)
        .bearer_auth("sk-k")
        .json(&with(|r| r["temperature"] = json!(3)))
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("JSON error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "temperature");
    assert_eq!(body["error"]["code"], "decimal_above_max_value");
    assert!(body["error"]["message"].is_string());

    let unauthenticated = client
        .post(&url)
        .json(&valid())
        .send()
        .await
        .expect("answered");
    assert_eq!(unauthenticated.status(), 401);
    let not_json = client
        .post(&url)
        .bearer_auth("sk-k")
        .header("content-type", "text/plain")
        .body(valid().to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(not_json.status(), 400);
    let wrong_path = client
        .post(format!("http://{}/v1/completions", endpoint.addr))
        .bearer_auth("sk-k")
        .json(&valid())
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong_path.status(), 404);

    let good = client
        .post(&url)
        .bearer_auth("sk-k")
        .json(&valid())
        .send()
        .await
        .expect("answered");
    assert_eq!(good.status(), 200);
    let completion: Value = good.json().await.expect("JSON completion");
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "judge-mini");
    assert_eq!(completion["choices"][0]["message"]["role"], "assistant");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert!(completion["usage"]["total_tokens"].is_u64());
    assert_eq!(endpoint.rejections().len(), 4);
    assert_eq!(endpoint.requests(), 5);
}
