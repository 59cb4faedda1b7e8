//! The request half of OpenAI's chat-completions contract, as a fake
//! endpoint enforces it.
//!
//! Source: OpenAI's published OpenAPI description (github.com/openai/
//! openai-openapi, `openapi.yaml`): the operation `createChatCompletion`
//! (`POST /chat/completions` under the server `https://api.openai.com/v1`),
//! its body `CreateChatCompletionRequest` (own properties plus those of
//! `CreateModelResponseProperties` / `ModelResponseProperties`), the message
//! schemas `ChatCompletionRequest{System,Developer,User,Assistant,Tool}Message`
//! with their content-part schemas, `ResponseFormatText`,
//! `ResponseFormatJsonObject`, `ResponseFormatJsonSchema`, and the `ApiKeyAuth`
//! bearer scheme. Errors use the API's `{"error": {message, type, param,
//! code}}` shape, with the messages the live API gives for the same faults.
//!
//! Deliberately stricter than the spec in one place: the deprecated
//! `function` role is refused, because no current client should send it.

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

/// An OpenAI-style error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: param.map(str::to_owned),
            code: code.map(str::to_owned),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// Every top-level property of `CreateChatCompletionRequest` (with those it
/// inherits); anything else is "Unrecognized request argument supplied".
const REQUEST_FIELDS: &[&str] = &[
    "messages",
    "model",
    "modalities",
    "verbosity",
    "reasoning_effort",
    "max_completion_tokens",
    "frequency_penalty",
    "presence_penalty",
    "web_search_options",
    "top_logprobs",
    "response_format",
    "audio",
    "store",
    "stream",
    "stop",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "prediction",
    "seed",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "function_call",
    "functions",
    "metadata",
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
];

/// The properties each message schema allows (`additionalProperties`
/// is not open on any of them).
fn message_fields(role: &str) -> Option<&'static [&'static str]> {
    Some(match role {
        "system" | "developer" | "user" => &["role", "content", "name"],
        "assistant" => &[
            "role",
            "content",
            "name",
            "refusal",
            "audio",
            "tool_calls",
            "function_call",
        ],
        "tool" => &["role", "content", "tool_call_id"],
        _ => return None,
    })
}

/// The content-part types each role may send in an array `content`.
fn part_types(role: &str) -> &'static [&'static str] {
    match role {
        "user" => &["text", "image_url", "input_audio", "file"],
        "assistant" => &["text", "refusal"],
        _ => &["text"],
    }
}

/// Checks the headers; `api_key` is the key the endpoint expects, `None`
/// for an endpoint without authentication (which then must not be sent
/// one: the client would be leaking a key it was not given).
pub fn check_headers(headers: &HeaderMap, api_key: Option<&str>) -> Result<(), ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match (api_key, authorization) {
        (Some(_), None) => {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "You didn't provide an API key. You need to provide your API key in an \
                          Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    .into(),
                param: None,
                code: None,
            });
        }
        (Some(key), Some(value)) if value != format!("Bearer {key}") => {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "Incorrect API key provided.".into(),
                param: None,
                code: Some("invalid_api_key".into()),
            });
        }
        (None, Some(_)) => {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "This endpoint takes no API key, but an Authorization header was sent."
                    .into(),
                param: None,
                code: None,
            });
        }
        _ => {}
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::invalid(
            format!("Invalid Content-Type header ({content_type}), expected application/json."),
            None,
            None,
        ));
    }
    Ok(())
}

/// Checks the body; returns it parsed.
pub fn check_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let parse_error = || {
        ApiError::invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't \
             using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
            None,
            None,
        )
    };
    let Value::Object(request) = serde_json::from_slice(body).map_err(|_| parse_error())? else {
        return Err(parse_error());
    };
    if let Some(unknown) = request
        .keys()
        .find(|k| !REQUEST_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            format!("Unrecognized request argument supplied: {unknown}"),
            None,
            None,
        ));
    }
    match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => {}
        Some(Value::String(_)) | None => {
            return Err(ApiError::invalid(
                "you must provide a model parameter",
                None,
                None,
            ));
        }
        Some(other) => return Err(invalid_type("model", "a string", other)),
    }
    check_messages(request.get("messages"))?;
    number_in("temperature", request.get("temperature"), 0.0, 2.0)?;
    number_in("top_p", request.get("top_p"), 0.0, 1.0)?;
    integer_at_least("max_tokens", request.get("max_tokens"), 1)?;
    integer_at_least(
        "max_completion_tokens",
        request.get("max_completion_tokens"),
        1,
    )?;
    integer_at_least("n", request.get("n"), 1)?;
    if let Some(stream) = request
        .get("stream")
        .filter(|s| !s.is_null() && !s.is_boolean())
    {
        return Err(invalid_type("stream", "a boolean", stream));
    }
    check_response_format(&request)?;
    Ok(request)
}

fn check_messages(messages: Option<&Value>) -> Result<(), ApiError> {
    let messages = match messages {
        None => {
            return Err(ApiError::invalid(
                "Missing required parameter: 'messages'.",
                Some("messages"),
                Some("missing_required_parameter"),
            ));
        }
        Some(Value::Array(messages)) => messages,
        Some(other) => return Err(invalid_type("messages", "an array", other)),
    };
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an \
             empty array instead.",
            Some("messages"),
            Some("empty_array"),
        ));
    }
    for (i, message) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let Value::Object(message) = message else {
            return Err(invalid_type(&param, "an object", message));
        };
        let role = match message.get("role") {
            Some(Value::String(role)) => role.as_str(),
            None => {
                return Err(ApiError::invalid(
                    format!("Missing required parameter: '{param}.role'."),
                    Some(&format!("{param}.role")),
                    Some("missing_required_parameter"),
                ));
            }
            Some(other) => return Err(invalid_type(&format!("{param}.role"), "a string", other)),
        };
        let Some(allowed) = message_fields(role) else {
            return Err(ApiError::invalid(
                format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', \
                     'tool', and 'developer'."
                ),
                Some(&format!("{param}.role")),
                Some("invalid_value"),
            ));
        };
        if let Some(extra) = message.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::invalid(
                format!(
                    "Additional properties are not allowed ('{extra}' was unexpected) - 'messages.{i}'"
                ),
                Some(&param),
                None,
            ));
        }
        // The assistant's content is optional (a tool call may stand alone);
        // every other role's is required.
        let content_param = format!("{param}.content");
        match message.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) => check_parts(&content_param, part_types(role), parts)?,
            Some(Value::Null) | None if role == "assistant" => {}
            None => {
                return Err(ApiError::invalid(
                    format!("Missing required parameter: '{content_param}'."),
                    Some(&content_param),
                    Some("missing_required_parameter"),
                ));
            }
            Some(other) => {
                return Err(invalid_type(
                    &content_param,
                    "one of a string or array of objects",
                    other,
                ));
            }
        }
        if role == "tool" && !message.get("tool_call_id").is_some_and(Value::is_string) {
            return Err(ApiError::invalid(
                format!("Missing required parameter: '{param}.tool_call_id'."),
                Some(&format!("{param}.tool_call_id")),
                Some("missing_required_parameter"),
            ));
        }
    }
    Ok(())
}

fn check_parts(param: &str, types: &[&str], parts: &[Value]) -> Result<(), ApiError> {
    if parts.is_empty() {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead."
            ),
            Some(param),
            Some("empty_array"),
        ));
    }
    for (j, part) in parts.iter().enumerate() {
        let part_param = format!("{param}[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        if !types.contains(&kind) {
            return Err(ApiError::invalid(
                format!("Invalid value: '{kind}'. Supported values are: {types:?}."),
                Some(&format!("{part_param}.type")),
                Some("invalid_value"),
            ));
        }
        if kind == "text" && !part.get("text").is_some_and(Value::is_string) {
            return Err(ApiError::invalid(
                format!("Missing required parameter: '{part_param}.text'."),
                Some(&format!("{part_param}.text")),
                Some("missing_required_parameter"),
            ));
        }
    }
    Ok(())
}

fn check_response_format(request: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(format) = request.get("response_format").filter(|f| !f.is_null()) else {
        return Ok(());
    };
    let Value::Object(format) = format else {
        return Err(invalid_type("response_format", "an object", format));
    };
    let kind = format.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "text" => {}
        "json_schema" => {
            let named = format
                .get("json_schema")
                .and_then(|s| s.get("name"))
                .is_some_and(Value::is_string);
            if !named {
                return Err(ApiError::invalid(
                    "Missing required parameter: 'response_format.json_schema.name'.",
                    Some("response_format.json_schema.name"),
                    Some("missing_required_parameter"),
                ));
            }
        }
        "json_object" => {
            // The API refuses JSON mode unless the conversation mentions JSON,
            // so that the model knows what it is to write.
            let mentions_json = request
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|m| m.to_string().to_ascii_lowercase().contains("json"));
            if !mentions_json {
                return Err(ApiError::invalid(
                    "'messages' must contain the word 'json' in some form, to use 'response_format' \
                     of type 'json_object'.",
                    Some("messages"),
                    None,
                ));
            }
        }
        _ => {
            return Err(ApiError::invalid(
                format!(
                    "Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'."
                ),
                Some("response_format.type"),
                Some("invalid_value"),
            ));
        }
    }
    Ok(())
}

fn number_in(param: &str, value: Option<&Value>, min: f64, max: f64) -> Result<(), ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(number) = value.as_f64() else {
        return Err(invalid_type(param, "a decimal", value));
    };
    if number < min {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': decimal below minimum value. Expected a value >= {min}, but got {number} instead."
            ),
            Some(param),
            Some("decimal_below_min_value"),
        ));
    }
    if number > max {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': decimal above maximum value. Expected a value <= {max}, but got {number} instead."
            ),
            Some(param),
            Some("decimal_above_max_value"),
        ));
    }
    Ok(())
}

fn integer_at_least(param: &str, value: Option<&Value>, min: i64) -> Result<(), ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    // 100.0 is a number but not an integer; the API refuses it.
    let Some(integer) = value.as_i64().or_else(|| value.as_u64().map(|_| i64::MAX)) else {
        return Err(invalid_type(param, "an integer", value));
    };
    if integer < min {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': integer below minimum value. Expected a value >= {min}, but got {integer} instead."
            ),
            Some(param),
            Some("integer_below_min_value"),
        ));
    }
    Ok(())
}

fn invalid_type(param: &str, expected: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiError::invalid(
        format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
        Some(param),
        Some("invalid_type"),
    )
}
