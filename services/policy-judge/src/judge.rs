//! The client: budget, then one chat-completions call under a hard
//! deadline, then the verdict read within a size limit.

use std::fmt;
use std::time::Instant;

use tracing::Instrument;

use crate::budget::CallBudget;
use crate::config::JudgeConfig;
use crate::error::JudgeError;
use crate::prompt::{JudgeRequest, chat_request, language_tag};
use crate::verdict::{self, Verdict};

/// The most an answer may hold. A verdict is well under a kilobyte; a
/// larger answer is refused as soon as it passes this, unread beyond it.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A tenant's judge. Cheap to share (`Arc<Judge>`); calls may run at once.
pub struct Judge {
    config: JudgeConfig,
    endpoint: reqwest::Url,
    client: reqwest::Client,
    budget: CallBudget,
}

impl fmt::Debug for Judge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The host only: a gateway's query string may carry a token.
        f.debug_struct("Judge")
            .field("host", &self.endpoint.host_str().unwrap_or_default())
            .field("model", &self.config.model)
            .field("api_key", &self.config.api_key)
            .field("timeout", &self.config.timeout)
            .field("max_calls_per_minute", &self.config.max_calls_per_minute)
            .finish_non_exhaustive()
    }
}

impl Judge {
    /// Validates `config` and builds the HTTP client.
    pub fn new(config: JudgeConfig) -> Result<Self, JudgeError> {
        config.validate().map_err(JudgeError::Config)?;
        let endpoint = config.endpoint().map_err(JudgeError::Config)?;
        let client = reqwest::Client::builder()
            // A redirect would carry the key and the customer's words to
            // another address; it is an answer (Http), not a place to go.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("baton-policy-judge/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|e| {
                JudgeError::Config(format!("cannot build the HTTP client: {}", chain(&e)))
            })?;
        Ok(Self {
            budget: CallBudget::per_minute(config.max_calls_per_minute),
            config,
            endpoint,
            client,
        })
    }

    /// Asks the judge about one turn. Returns within the configured
    /// deadline whatever the endpoint does; every error means "keep the
    /// model's decision".
    ///
    /// Spans and events carry the model, the language tag, the labels, the
    /// outcome and the time taken, never the text or the key.
    pub async fn judge(&self, request: JudgeRequest) -> Result<Verdict, JudgeError> {
        let span = tracing::info_span!(
            "policy_judge",
            model = %self.config.model,
            language = %language_tag(&request.language),
            labels = ?request.labels.names(),
        );
        async {
            let started = Instant::now();
            let result = if self.budget.try_take() {
                tokio::time::timeout(self.config.timeout, self.call(&request))
                    .await
                    .unwrap_or(Err(JudgeError::Timeout))
            } else {
                Err(JudgeError::OverBudget)
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(verdict) => tracing::debug!(
                    elapsed_ms,
                    explicit_request = verdict.explicit_request,
                    distress = verdict.distress,
                    "judge answered"
                ),
                Err(error) => tracing::warn!(
                    elapsed_ms,
                    reason = error.reason(),
                    %error,
                    "no verdict from the judge; the model's decision stands"
                ),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn call(&self, request: &JudgeRequest) -> Result<Verdict, JudgeError> {
        let body = chat_request(&self.config.model, self.config.max_tokens, request);
        let mut post = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        if let Some(key) = &self.config.api_key {
            // bearer_auth marks the header sensitive, so HTTP-level
            // debugging does not print it either.
            post = post.bearer_auth(key.expose());
        }
        let response = post.send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(JudgeError::Http(status.as_u16()));
        }
        let answer = bounded_body(response, MAX_RESPONSE_BYTES).await?;
        verdict::parse(&answer).map_err(JudgeError::Malformed)
    }
}

/// The body of `response`, at most `max` bytes: refused when its
/// Content-Length says more, or as soon as more arrives.
async fn bounded_body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, JudgeError> {
    let too_large = || JudgeError::Malformed(format!("the answer is larger than {max} bytes"));
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A failed exchange, said without the URL (a gateway's query string may
/// carry a token) but with its causes, which name what went wrong.
fn transport(error: reqwest::Error) -> JudgeError {
    if error.is_timeout() {
        JudgeError::Timeout
    } else {
        JudgeError::Transport(chain(&error.without_url()))
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
