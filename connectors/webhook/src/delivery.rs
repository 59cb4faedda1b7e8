//! One delivery: a signed message posted to one endpoint, paced by the
//! endpoint's rate limit, retried per [`crate::retry`], every request
//! written to the [`DeliveryLog`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use baton_connector_sdk::{FailureReason, Pacer, TransferEvents};
use baton_platform_http::{client, take_turn};

use crate::config::{Completion, EndpointConfig, RetryConfig};
use crate::log::{Attempt, DeliveryLog, Outcome};
use crate::retry::{Verdict, backoff, classify};
use crate::signature::SigningSecret;

/// An endpoint ready to post to: its URL, secret and pacer.
#[derive(Debug)]
pub struct Endpoint {
    pub name: String,
    url: reqwest::Url,
    secret: SigningSecret,
    timeout: Duration,
    pacer: Pacer,
    rate_per_second: f64,
    pub completion: Completion,
    /// Where a chat handoff's conversation is posted, if the endpoint
    /// takes chats.
    pub chat_url: Option<reqwest::Url>,
}

impl Endpoint {
    pub fn new(name: &str, config: &EndpointConfig) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            url: reqwest::Url::parse(&config.url)
                .map_err(|e| anyhow::anyhow!("endpoints.{name}.url: {e}"))?,
            secret: config.secret.clone(),
            timeout: config.timeout,
            pacer: Pacer::new(config.rate_per_second, config.burst),
            rate_per_second: config.rate_per_second,
            completion: config.completion,
            chat_url: config
                .chat_url
                .as_deref()
                .map(reqwest::Url::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("endpoints.{name}.chat_url: {e}"))?,
        })
    }

    /// Whether the platform behind this endpoint signed a request to the
    /// connector (a chat message of the human) with the endpoint's secret.
    pub fn signed(&self, message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        self.secret.verify(message_id, timestamp, body, header)
    }
}

/// Why a delivery did not get through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("endpoint {endpoint} refused the handoff with HTTP {status} (not retried)")]
    Rejected { endpoint: String, status: u16 },
    #[error("endpoint {endpoint}: all {tries} tries failed, the last with {last}")]
    Exhausted {
        endpoint: String,
        tries: u32,
        last: String,
    },
    #[error(
        "endpoint {endpoint} asked to retry after {asked_secs} s, beyond retry.max_retry_after ({allowed_secs} s)"
    )]
    RetryAfterTooLong {
        endpoint: String,
        asked_secs: u64,
        allowed_secs: u64,
    },
}

impl DeliveryError {
    /// The transfer's failure reason: a refusal is REJECTED, an endpoint
    /// that cannot be reached in time is UNREACHABLE.
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::Rejected { .. } => FailureReason::Rejected,
            Self::Exhausted { .. } | Self::RetryAfterTooLong { .. } => FailureReason::Unreachable,
        }
    }
}

/// What a delivery sends: the same id and body on every try.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: Arc<[u8]>,
    pub handoff_id: String,
    pub transfer_attempt: u32,
}

/// Posts messages; shared by every transfer.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    retry: RetryConfig,
    log: DeliveryLog,
}

impl Deliverer {
    pub fn new(retry: RetryConfig, log: DeliveryLog) -> anyhow::Result<Self> {
        let client = client(concat!(
            "baton-connector-webhook/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()?;
        Ok(Self { client, retry, log })
    }

    pub fn log(&self) -> &DeliveryLog {
        &self.log
    }

    /// Delivers `message` to `endpoint`, reporting waits for the rate limit
    /// as QUEUED events; returns the accepting status.
    pub async fn deliver(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        events: &TransferEvents,
    ) -> Result<u16, DeliveryError> {
        self.deliver_to(endpoint, &endpoint.url, message, Some(events))
            .await
    }

    /// Delivers one piece of a chat conversation to the endpoint's
    /// `chat_url`, with the same signature, pacing, retries and log as a
    /// transfer's message.
    pub async fn deliver_chat(
        &self,
        endpoint: &Endpoint,
        chat_url: &reqwest::Url,
        message: &Message,
    ) -> Result<u16, DeliveryError> {
        self.deliver_to(endpoint, chat_url, message, None).await
    }

    async fn deliver_to(
        &self,
        endpoint: &Endpoint,
        url: &reqwest::Url,
        message: &Message,
        events: Option<&TransferEvents>,
    ) -> Result<u16, DeliveryError> {
        let mut try_number = 0;
        loop {
            try_number += 1;
            let limit = format!(
                "endpoint {}'s rate limit ({}/s)",
                endpoint.name, endpoint.rate_per_second
            );
            take_turn(&endpoint.pacer, events, &limit).await;
            let (status, verdict, error, elapsed, sent_at) =
                self.post(endpoint, url, message).await;
            let outcome = match verdict {
                Verdict::Accepted => Outcome::Accepted,
                Verdict::Retry { .. } => Outcome::Retryable,
                Verdict::Rejected => Outcome::Rejected,
            };
            self.log
                .record(Attempt {
                    message_id: message.id.clone(),
                    handoff_id: message.handoff_id.clone(),
                    transfer_attempt: message.transfer_attempt,
                    endpoint: endpoint.name.clone(),
                    try_number,
                    sent_at_ms: millis_since_epoch(sent_at),
                    elapsed_ms: elapsed.as_millis().try_into().unwrap_or(i64::MAX),
                    status,
                    outcome,
                    error: error.clone(),
                })
                .await;
            tracing::info!(
                handoff_id = %message.handoff_id,
                endpoint = %endpoint.name,
                message_id = %message.id,
                try_number,
                status,
                outcome = ?outcome,
                error = error.as_deref().unwrap_or(""),
                "webhook request"
            );
            let retry_after = match verdict {
                Verdict::Accepted => return Ok(status.unwrap_or(200)),
                Verdict::Rejected => {
                    return Err(DeliveryError::Rejected {
                        endpoint: endpoint.name.clone(),
                        status: status.unwrap_or_default(),
                    });
                }
                Verdict::Retry { retry_after } => retry_after,
            };
            if try_number >= self.retry.max_attempts {
                return Err(DeliveryError::Exhausted {
                    endpoint: endpoint.name.clone(),
                    tries: try_number,
                    last: match (status, error) {
                        (Some(status), _) => format!("HTTP {status}"),
                        (None, Some(error)) => error,
                        (None, None) => "no answer".into(),
                    },
                });
            }
            let wait = match retry_after {
                Some(asked) if asked > self.retry.max_retry_after => {
                    return Err(DeliveryError::RetryAfterTooLong {
                        endpoint: endpoint.name.clone(),
                        asked_secs: asked.as_secs(),
                        allowed_secs: self.retry.max_retry_after.as_secs(),
                    });
                }
                Some(asked) => asked,
                None => backoff(&self.retry, try_number, &mut rand::rng()),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One signed request: (status, verdict, error, elapsed, sent at).
    async fn post(
        &self,
        endpoint: &Endpoint,
        url: &reqwest::Url,
        message: &Message,
    ) -> (Option<u16>, Verdict, Option<String>, Duration, SystemTime) {
        let sent_at = SystemTime::now();
        let timestamp = sent_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // Signed again on each try: the timestamp is the request's, so that
        // a receiver's replay window accepts a late retry.
        let signature = endpoint.secret.sign(&message.id, timestamp, &message.body);
        let started = Instant::now();
        let mut request = self
            .client
            .post(url.clone())
            .timeout(endpoint.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature);
        // The receiver's spans join the handoff's trace (W3C Trace Context).
        if let Some(traceparent) = baton_service_kit::telemetry::current_traceparent() {
            request = request.header("traceparent", traceparent);
        }
        let result = request.body(message.body.to_vec()).send().await;
        let elapsed = started.elapsed();
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let verdict = classify(status, retry_after.as_deref(), SystemTime::now());
                let error = match verdict {
                    Verdict::Accepted => None,
                    _ => Some(format!(
                        "HTTP {status}{}",
                        response
                            .status()
                            .canonical_reason()
                            .map(|r| format!(" {r}"))
                            .unwrap_or_default()
                    )),
                };
                (Some(status), verdict, error, elapsed, sent_at)
            }
            Err(error) => {
                // The URL may carry an endpoint's own credentials: never
                // written anywhere.
                let description = if error.is_timeout() {
                    format!("timed out after {} ms", endpoint.timeout.as_millis())
                } else if error.is_connect() {
                    "connection failed".to_string()
                } else {
                    format!("transport error: {}", error.without_url())
                };
                (
                    None,
                    Verdict::Retry { retry_after: None },
                    Some(description),
                    elapsed,
                    sent_at,
                )
            }
        }
    }
}

fn millis_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(i64::MAX))
}
