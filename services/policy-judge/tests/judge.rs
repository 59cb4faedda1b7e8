//! The judge against a fake OpenAI-compatible endpoint that checks every
//! request against the chat-completions contract.

mod support;

use std::time::Duration;

use baton_policy_judge::{
    ApiKey, Judge, JudgeConfig, JudgeError, JudgeRequest, Labels, MAX_RESPONSE_BYTES, Speaker,
    Turn, Verdict,
};
use serde_json::{Value, json};
use support::{Behaviour, FakeOpenAi};

const KEY: &str = "sk-test-7d1f0c2a9b";

fn config(url: String, key: Option<&str>) -> JudgeConfig {
    let mut config = JudgeConfig::new(url, "judge-mini");
    config.api_key = key.map(ApiKey::new);
    config
}

fn judge(config: JudgeConfig) -> Judge {
    Judge::new(config).expect("valid configuration")
}

fn ambiguous(turn: &str) -> JudgeRequest {
    JudgeRequest::new("en", turn, Labels::Both).with_earlier_turns([
        Turn::new(Speaker::Customer, "my order [ORDER_ID] never came"),
        Turn::new(Speaker::Ai, "I'm sorry to hear that. Let me check."),
    ])
}

#[tokio::test]
async fn a_request_meets_the_contract_and_the_verdict_is_parsed() {
    let endpoint = FakeOpenAi::start(Behaviour::Decide, Some(KEY)).await;
    let judge = judge(config(endpoint.base_url(), Some(KEY)));

    let verdict = judge
        .judge(ambiguous("could I speak to a person from your team"))
        .await;
    assert_eq!(endpoint.rejections(), Vec::<Value>::new());
    assert_eq!(
        verdict,
        Ok(Verdict {
            explicit_request: true,
            distress: false,
            reason: "fake judge: keyword match".into()
        })
    );
    let verdict = judge
        .judge(ambiguous("I am furious, this is the third time"))
        .await;
    assert_eq!(
        verdict.map(|v| (v.explicit_request, v.distress)),
        Ok((false, true))
    );

    assert_eq!(endpoint.requests(), 2);
    assert_eq!(
        endpoint.paths(),
        ["/v1/chat/completions", "/v1/chat/completions"]
    );
    let body = &endpoint.bodies()[0];
    assert_eq!(body["model"], "judge-mini");
    assert_eq!(body["temperature"], json!(0.0));
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    let user: Value = serde_json::from_str(body["messages"][1]["content"].as_str().unwrap_or(""))
        .expect("the user message is a JSON document");
    assert_eq!(user["turn"], "could I speak to a person from your team");
    assert_eq!(
        user["earlier_turns"][1],
        json!({"speaker": "ai", "text": "I'm sorry to hear that. Let me check."})
    );
}

#[tokio::test]
async fn a_full_chat_completions_url_is_used_as_it_is() {
    let endpoint = FakeOpenAi::start(Behaviour::Decide, None).await;
    let judge = judge(config(
        format!("http://{}/chat/completions", endpoint.addr),
        None,
    ));
    let verdict = judge.judge(ambiguous("hello")).await;
    assert_eq!(
        verdict.map(|v| (v.explicit_request, v.distress)),
        Ok((false, false))
    );
    assert_eq!(endpoint.paths(), ["/chat/completions"]);
}

#[tokio::test]
async fn without_a_key_no_authorization_header_is_sent() {
    // The fake endpoint refuses (401) any Authorization header when it
    // expects no key.
    let endpoint = FakeOpenAi::start(Behaviour::Decide, None).await;
    let judge = judge(config(endpoint.base_url(), None));
    assert!(judge.judge(ambiguous("speak to a person")).await.is_ok());
    assert_eq!(endpoint.rejections(), Vec::<Value>::new());
}

#[tokio::test]
async fn a_wrong_key_is_an_http_error() {
    let endpoint = FakeOpenAi::start(Behaviour::Decide, Some(KEY)).await;
    let judge = judge(config(endpoint.base_url(), Some("sk-someone-else")));
    assert_eq!(
        judge.judge(ambiguous("hi")).await,
        Err(JudgeError::Http(401))
    );
}

#[tokio::test]
async fn a_slow_endpoint_is_a_timeout() {
    let endpoint = FakeOpenAi::start(Behaviour::Sleep(Duration::from_secs(5)), None).await;
    let mut config = config(endpoint.base_url(), None);
    config.timeout = Duration::from_millis(200);
    let judge = judge(config);
    assert_eq!(
        judge.judge(ambiguous("speak to a person")).await,
        Err(JudgeError::Timeout)
    );
    assert_eq!(endpoint.requests(), 1);
}

#[tokio::test]
async fn a_server_error_is_an_http_error() {
    let endpoint = FakeOpenAi::start(Behaviour::Status(500), None).await;
    let judge = judge(config(endpoint.base_url(), None));
    let error = judge
        .judge(ambiguous("speak to a person"))
        .await
        .expect_err("500");
    assert_eq!(error, JudgeError::Http(500));
    assert_eq!(error.reason(), "JUDGE_HTTP_STATUS");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let endpoint = FakeOpenAi::start(Behaviour::Status(307), None).await;
    let judge = judge(config(endpoint.base_url(), None));
    assert_eq!(
        judge.judge(ambiguous("hi")).await,
        Err(JudgeError::Http(307))
    );
    assert_eq!(endpoint.requests(), 1);
}

#[tokio::test]
async fn content_that_is_not_the_verdict_object_is_malformed() {
    for content in [
        json!("Yes, the customer wants a human."),
        json!(r#"{"explicit_request": true, "reason": "no distress key"}"#),
        json!(r#"{"explicit_request": "yes", "distress": false, "reason": "r"}"#),
        json!(null),
    ] {
        let endpoint = FakeOpenAi::start(Behaviour::Content(content.clone()), None).await;
        let judge = judge(config(endpoint.base_url(), None));
        let result = judge.judge(ambiguous("speak to a person")).await;
        assert!(
            matches!(result, Err(JudgeError::Malformed(_))),
            "{content}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_chat_completion_is_malformed() {
    for body in [
        "<html>busy</html>",
        "{}",
        r#"{"choices": []}"#,
        r#"{"choices": [{"message": {}}]}"#,
    ] {
        let endpoint = FakeOpenAi::start(Behaviour::Body(body.into()), None).await;
        let judge = judge(config(endpoint.base_url(), None));
        let result = judge.judge(ambiguous("hi")).await;
        assert!(
            matches!(result, Err(JudgeError::Malformed(_))),
            "{body}: {result:?}"
        );
    }
}

#[tokio::test]
async fn an_oversize_body_is_refused() {
    let padding = "x".repeat(MAX_RESPONSE_BYTES);
    let body = support::completion(json!("judge-mini"), json!(padding)).to_string();
    let endpoint = FakeOpenAi::start(Behaviour::Body(body), None).await;
    let judge = judge(config(endpoint.base_url(), None));
    let result = judge.judge(ambiguous("hi")).await;
    assert!(
        matches!(&result, Err(JudgeError::Malformed(reason)) if reason.contains("larger than")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_limit_while_reading() {
    let (addr, written) = support::endless_endpoint().await;
    let mut config = config(format!("http://{addr}/v1"), None);
    config.timeout = Duration::from_secs(10);
    let judge = judge(config);
    let result = judge.judge(ambiguous("hi")).await;
    assert!(
        matches!(&result, Err(JudgeError::Malformed(reason)) if reason.contains("larger than")),
        "{result:?}"
    );
    // The endpoint had 32 MiB to send; the client stopped reading near the
    // limit (socket buffers let some more through).
    let sent = written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        sent < 16 * 1024 * 1024,
        "the client read on: {sent} bytes sent"
    );
}

#[tokio::test]
async fn over_budget_nothing_is_sent() {
    let endpoint = FakeOpenAi::start(Behaviour::Decide, None).await;
    let mut config = config(endpoint.base_url(), None);
    config.max_calls_per_minute = 2;
    let judge = judge(config);
    assert!(judge.judge(ambiguous("one")).await.is_ok());
    assert!(judge.judge(ambiguous("two")).await.is_ok());
    assert_eq!(
        judge.judge(ambiguous("three")).await,
        Err(JudgeError::OverBudget)
    );
    assert_eq!(
        judge.judge(ambiguous("four")).await,
        Err(JudgeError::OverBudget)
    );
    assert_eq!(endpoint.requests(), 2);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error() {
    // Bind then drop: a loopback port nobody listens on.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .and_then(|l| l.local_addr())
        .expect("ephemeral port");
    let judge = judge(config(format!("http://{addr}/v1"), None));
    let result = judge.judge(ambiguous("hi")).await;
    assert!(
        matches!(result, Err(JudgeError::Transport(_))),
        "{result:?}"
    );
}

#[test]
fn the_api_key_never_appears_in_debug_output() {
    let config = config("https://api.example.com/v1".into(), Some(KEY));
    let judge = judge(config.clone());
    for printed in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{judge:?}"),
    ] {
        assert!(!printed.contains(KEY), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}

#[test]
fn configuration_errors_name_the_key() {
    let parsed: JudgeConfig = serde_json::from_value(json!({
        "url": "https://api.example.com/v1",
        "model": "judge-mini",
        "api_key": KEY,
        "timeout": "20ms",
    }))
    .expect("parses");
    let error = Judge::new(parsed).expect_err("timeout below the minimum");
    assert!(
        matches!(&error, JudgeError::Config(reason) if reason.starts_with("timeout: ")),
        "{error}"
    );
    assert!(!error.to_string().contains(KEY));

    let mut bad = config("https://api.example.com/v1".into(), None);
    bad.max_calls_per_minute = 0;
    let error = Judge::new(bad).expect_err("no budget");
    assert!(
        matches!(&error, JudgeError::Config(reason) if reason.starts_with("max_calls_per_minute: ")),
        "{error}"
    );

    let error = serde_json::from_value::<JudgeConfig>(json!({
        "url": "https://api.example.com/v1", "model": "m", "max_token": 5,
    }))
    .expect_err("unknown key");
    assert!(error.to_string().contains("max_token"), "{error}");
}

#[test]
fn a_judge_is_shared_between_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Judge>();
}
