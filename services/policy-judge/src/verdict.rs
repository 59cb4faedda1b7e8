//! The judge's answer: a chat-completions response whose first choice holds
//! the verdict as a JSON object, read strictly.

use serde::Deserialize;

use crate::prompt::truncate_chars;

/// The longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// What the judge decided about a turn.
///
/// `reason` is written by the model and may echo the customer's words
/// despite the prompt: treat it as the turn itself (redacted, never logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub explicit_request: bool,
    pub distress: bool,
    /// At most [`MAX_REASON_CHARS`] characters.
    pub reason: String,
}

/// Why an answer could not be read. Says what was wrong, never what the
/// answer held.
pub(crate) type Malformed = String;

/// The envelope. Fields OpenAI adds over time (`system_fingerprint`,
/// `service_tier`, usage details) are ignored; what the verdict depends on
/// is required.
#[derive(Deserialize)]
struct ChatCompletion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: AssistantMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// The verdict as the system prompt asks for it: these keys, no others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    explicit_request: bool,
    distress: bool,
    reason: String,
}

pub(crate) fn parse(body: &[u8]) -> Result<Verdict, Malformed> {
    let completion: ChatCompletion = serde_json::from_slice(body)
        .map_err(|e| format!("not a chat completion ({})", e.classify_name()))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or("the completion has no choices")?;
    if choice.message.refusal.is_some() {
        return Err("the model refused to answer".into());
    }
    match choice.finish_reason.as_deref() {
        Some("stop") | None => {}
        Some("length") => return Err("the answer was cut at max_tokens".into()),
        Some(_) => return Err("the answer did not finish normally".into()),
    }
    let content = choice
        .message
        .content
        .ok_or("the first choice has no content")?;
    let not_the_verdict = |e: serde_json::Error| {
        format!(
            "the content is not the verdict object ({})",
            e.classify_name()
        )
    };
    // Read as an object first: serde's derive would also take the three
    // values as an array, which the prompt did not ask for.
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&content).map_err(not_the_verdict)?;
    let answer: Answer =
        serde_json::from_value(serde_json::Value::Object(object)).map_err(not_the_verdict)?;
    Ok(Verdict {
        explicit_request: answer.explicit_request,
        distress: answer.distress,
        reason: truncate_chars(answer.reason.trim(), MAX_REASON_CHARS).to_owned(),
    })
}

/// serde_json's errors quote the input they stopped at ("invalid type:
/// string \"…\""), which here is the model's answer and may hold the
/// customer's words; only the category goes into the error.
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "wrong fields or types",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn completion(content: serde_json::Value) -> Vec<u8> {
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "system_fingerprint": "fp_1",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_well_formed_answer_is_the_verdict() {
        let body = completion(json!(
            r#"{"explicit_request": true, "distress": false, "reason": " asks for a person "}"#
        ));
        assert_eq!(
            parse(&body),
            Ok(Verdict {
                explicit_request: true,
                distress: false,
                reason: "asks for a person".into()
            })
        );
    }

    #[test]
    fn a_long_reason_is_cut() {
        let reason = "ü".repeat(1_000);
        let content = json!({"explicit_request": false, "distress": true, "reason": reason});
        let verdict = parse(&completion(json!(content.to_string()))).expect("parses");
        assert_eq!(verdict.reason.chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn anything_but_the_exact_verdict_object_is_malformed() {
        for content in [
            json!("yes, they want a human"),
            json!(
                "```json\n{\"explicit_request\": true, \"distress\": false, \"reason\": \"r\"}\n```"
            ),
            json!(r#"{"explicit_request": true, "distress": false}"#),
            json!(r#"{"explicit_request": "true", "distress": false, "reason": "r"}"#),
            json!(
                r#"{"explicit_request": true, "distress": false, "reason": "r", "confidence": 0.9}"#
            ),
            json!(r#"[true, false, "r"]"#),
            json!(null),
        ] {
            assert!(
                parse(&completion(content.clone())).is_err(),
                "{content} was accepted"
            );
        }
    }

    #[test]
    fn a_broken_envelope_is_malformed() {
        for body in [
            b"not json".to_vec(),
            json!({"choices": []}).to_string().into_bytes(),
            json!({"error": {"message": "x"}}).to_string().into_bytes(),
            json!({"choices": [{"message": {"content": "{}"}, "finish_reason": "length"}]})
                .to_string()
                .into_bytes(),
            json!({"choices": [{"message": {"content": null, "refusal": "no"}, "finish_reason": "stop"}]})
                .to_string()
                .into_bytes(),
        ] {
            assert!(parse(&body).is_err(), "{} was accepted", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn the_error_never_quotes_the_answer() {
        let body = completion(json!(
            r#"{"explicit_request": "Alice Smith", "distress": false, "reason": "r"}"#
        ));
        let error = parse(&body).expect_err("wrong type");
        assert!(!error.contains("Alice"), "{error}");
    }
}
