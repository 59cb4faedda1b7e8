//! A tenant's judge configuration: where the chat-completions endpoint is,
//! which model, the key, and the limits that keep the judge from ever
//! holding up a turn (deadline, call budget, answer length).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The default deadline of one judge call, request and answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(800);
/// The shortest deadline accepted: below it no remote model answers, and
/// every call would be spent for nothing.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(50);
/// The longest deadline accepted: the judge sits in a live conversation.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// The default budget, in calls per minute.
pub const DEFAULT_MAX_CALLS_PER_MINUTE: u32 = 60;
/// The largest budget accepted.
pub const MAX_CALLS_PER_MINUTE: u32 = 100_000;
/// The default cap on the tokens the model may answer with; the verdict is
/// a one-line JSON object.
pub const DEFAULT_MAX_TOKENS: u32 = 100;
/// The largest `max_tokens` accepted.
pub const MAX_MAX_TOKENS: u32 = 4_096;

/// The judge's configuration, one per tenant that wants it. Unknown keys
/// are rejected; [`JudgeConfig::validate`] names the key of the first bad
/// value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// Base URL of an OpenAI-compatible API (`https://api.openai.com/v1`);
    /// the judge posts to `{url}/chat/completions`. A URL that already ends
    /// in `/chat/completions` is used as it is. Required.
    pub url: String,
    /// The model to ask (`gpt-4o-mini`, a vLLM model name…). Required.
    pub model: String,
    /// Sent as `Authorization: Bearer …`. Default: none (no header), for a
    /// local endpoint without authentication.
    #[serde(default)]
    pub api_key: Option<ApiKey>,
    /// Hard deadline for the whole call, from the first byte sent to the
    /// last byte read: `"800ms"`, `"2s"`. Between 50ms and 10s. Default 800ms.
    #[serde(default = "default_timeout", deserialize_with = "duration_text")]
    pub timeout: Duration,
    /// Calls allowed per minute (a token bucket that holds a minute's worth
    /// and refills evenly); a turn over budget is not sent. Default 60.
    #[serde(default = "default_max_calls_per_minute")]
    pub max_calls_per_minute: u32,
    /// The most tokens the model may answer with. Default 100.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_max_calls_per_minute() -> u32 {
    DEFAULT_MAX_CALLS_PER_MINUTE
}

fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}

impl JudgeConfig {
    /// A configuration with every optional key at its default.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_calls_per_minute: DEFAULT_MAX_CALLS_PER_MINUTE,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// Checks every value; the error is `"<key>: <reason>"` for the first
    /// bad one, and never quotes the key's secret.
    pub fn validate(&self) -> Result<(), String> {
        self.endpoint()?;
        if self.model.trim().is_empty() {
            return Err("model: must not be empty".into());
        }
        if self.model.chars().any(char::is_control) {
            return Err("model: must not contain control characters".into());
        }
        if let Some(key) = &self.api_key {
            key.check()?;
        }
        if self.timeout < MIN_TIMEOUT || self.timeout > MAX_TIMEOUT {
            return Err(format!(
                "timeout: must be between {}ms and {}s, got {}ms",
                MIN_TIMEOUT.as_millis(),
                MAX_TIMEOUT.as_secs(),
                self.timeout.as_millis()
            ));
        }
        if self.max_calls_per_minute == 0 || self.max_calls_per_minute > MAX_CALLS_PER_MINUTE {
            return Err(format!(
                "max_calls_per_minute: must be between 1 and {MAX_CALLS_PER_MINUTE}, got {}",
                self.max_calls_per_minute
            ));
        }
        if self.max_tokens == 0 || self.max_tokens > MAX_MAX_TOKENS {
            return Err(format!(
                "max_tokens: must be between 1 and {MAX_MAX_TOKENS}, got {}",
                self.max_tokens
            ));
        }
        Ok(())
    }

    /// The chat-completions URL the judge posts to.
    pub(crate) fn endpoint(&self) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(self.url.trim())
            .map_err(|e| format!("url: not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "url: scheme must be http or https, got {}",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("url: must name a host".into());
        }
        // A password in the URL would be sent and logged as part of the
        // address; the key has its own, redacted, setting.
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url: must not carry credentials; use api_key".into());
        }
        if url.fragment().is_some() {
            return Err("url: must not have a fragment".into());
        }
        let complete = url
            .path()
            .trim_end_matches('/')
            .ends_with("/chat/completions");
        if !complete {
            url.path_segments_mut()
                .map_err(|()| "url: cannot be a base URL".to_owned())?
                .pop_if_empty()
                .extend(["chat", "completions"]);
        }
        Ok(url)
    }
}

/// An API key: a secret. Its `Debug` and `Display` print `[redacted]`, so a
/// configuration can be logged whole; only the request header carries it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    fn check(&self) -> Result<(), String> {
        if self.0.trim().is_empty() {
            return Err("api_key: must not be empty".into());
        }
        // An HTTP header value cannot hold these; say so here rather than
        // fail every call.
        if self
            .0
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err("api_key: must be printable ASCII without spaces".into());
        }
        Ok(())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A duration written as a whole number of milliseconds or seconds:
/// `"800ms"`, `"2s"` (the subset of humantime's syntax the deadline needs).
fn duration_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.strip_suffix("ms") {
        Some(number) => (number, 1),
        None => match text.strip_suffix('s') {
            Some(number) => (number, 1_000),
            None => {
                return Err(format!(
                    "expected a duration such as \"800ms\" or \"2s\", got {text:?}"
                ));
            }
        },
    };
    let number: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration such as \"800ms\" or \"2s\", got {text:?}"))?;
    number
        .checked_mul(unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> JudgeConfig {
        JudgeConfig::new("https://api.example.com/v1", "judge-model")
    }

    #[test]
    fn defaults_fill_every_optional_key() {
        let config: JudgeConfig =
            serde_json::from_str(r#"{"url": "https://api.example.com/v1", "model": "m"}"#)
                .expect("minimal config parses");
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.max_calls_per_minute, 60);
        assert_eq!(config.max_tokens, 100);
        assert_eq!(config.api_key, None);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn timeout_is_read_in_milliseconds_or_seconds() {
        assert_eq!(parse_duration("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration(" 50 ms "), Ok(Duration::from_millis(50)));
        assert!(parse_duration("800").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = serde_json::from_str::<JudgeConfig>(
            r#"{"url": "https://a.example/v1", "model": "m", "temprature": 0}"#,
        )
        .expect_err("unknown key");
        assert!(error.to_string().contains("temprature"), "{error}");
    }

    #[test]
    fn the_endpoint_appends_chat_completions_to_a_base_url() {
        let endpoint = |url: &str| JudgeConfig::new(url, "m").endpoint().map(|u| u.to_string());
        assert_eq!(
            endpoint("https://api.example.com/v1"),
            Ok("https://api.example.com/v1/chat/completions".into())
        );
        assert_eq!(
            endpoint("https://api.example.com/v1/"),
            Ok("https://api.example.com/v1/chat/completions".into())
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8000"),
            Ok("http://127.0.0.1:8000/chat/completions".into())
        );
        assert_eq!(
            endpoint("https://api.example.com/v1/chat/completions"),
            Ok("https://api.example.com/v1/chat/completions".into())
        );
        assert_eq!(
            endpoint("https://gw.example.com/openai?tenant=7"),
            Ok("https://gw.example.com/openai/chat/completions?tenant=7".into())
        );
    }

    #[test]
    fn every_error_names_its_key() {
        type Breaks = Box<dyn Fn(&mut JudgeConfig)>;
        let cases: Vec<(&str, Breaks)> = vec![
            ("url: ", Box::new(|c| c.url = "not a url".into())),
            (
                "url: ",
                Box::new(|c| c.url = "ftp://files.example.com/".into()),
            ),
            (
                "url: ",
                Box::new(|c| c.url = "https://user:pw@api.example.com/v1".into()),
            ),
            (
                "url: ",
                Box::new(|c| c.url = "https://api.example.com/v1#x".into()),
            ),
            ("model: ", Box::new(|c| c.model = "  ".into())),
            ("api_key: ", Box::new(|c| c.api_key = Some(ApiKey::new("")))),
            (
                "api_key: ",
                Box::new(|c| c.api_key = Some(ApiKey::new("sk bad"))),
            ),
            (
                "timeout: ",
                Box::new(|c| c.timeout = Duration::from_millis(10)),
            ),
            (
                "timeout: ",
                Box::new(|c| c.timeout = Duration::from_secs(11)),
            ),
            (
                "max_calls_per_minute: ",
                Box::new(|c| c.max_calls_per_minute = 0),
            ),
            ("max_tokens: ", Box::new(|c| c.max_tokens = 0)),
            ("max_tokens: ", Box::new(|c| c.max_tokens = 1_000_000)),
        ];
        for (key, breaks) in cases {
            let mut config = valid();
            breaks(&mut config);
            let error = config.validate().expect_err(key);
            assert!(
                error.starts_with(key),
                "{error:?} should start with {key:?}"
            );
        }
    }

    #[test]
    fn the_key_is_never_printed() {
        let mut config = valid();
        config.api_key = Some(ApiKey::new("sk-live-secret"));
        let printed = format!("{config:?} {}", ApiKey::new("sk-live-secret"));
        assert!(!printed.contains("sk-live-secret"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
        config.api_key = Some(ApiKey::new("sk live secret"));
        let error = config.validate().expect_err("bad key");
        assert!(!error.contains("live"), "{error}");
    }
}
