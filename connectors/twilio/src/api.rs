//! Twilio's REST API as the connector calls it: updating a live call with
//! new TwiML (`POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`,
//! form-encoded `Twiml=…`, HTTP Basic auth), paced by the account's rate
//! limit so that a burst of transfers queues instead of being throttled;
//! and [`CallsApi::request`], the same authentication and error handling
//! for the Conversations and TaskRouter calls of chat transfers and
//! context updates ([`crate::conversations`]).

use std::time::Duration;

use baton_connector_sdk::{FailureReason, Pacer, TransferEvents};
use baton_platform_http::{MAX_RESPONSE_BYTES, bounded_text, client, take_turn, transport_error};
use serde::Deserialize;
use serde_json::Value;

use crate::config::TwilioConfig;

/// How many times a request throttled anyway (429) is sent again.
const THROTTLE_RETRIES: u32 = 3;

/// Twilio's JSON error body.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TwilioError {
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub more_info: String,
    #[serde(default)]
    pub status: u16,
}

/// Why a call update did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("Twilio answered HTTP {status} (error {}: {})", .error.code, .error.message)]
    Refused { status: u16, error: TwilioError },
    #[error("Twilio could not be reached: {0}")]
    Transport(String),
}

impl UpdateError {
    /// The transfer's failure reason.
    pub fn reason(&self) -> FailureReason {
        match self {
            // The call is gone (20404) or no longer in progress (21220): the
            // customer is not there to transfer.
            Self::Refused { error, .. } if error.code == 20404 || error.code == 21220 => {
                FailureReason::Unreachable
            }
            Self::Refused { status, .. } if *status >= 500 => FailureReason::Unreachable,
            // Credentials, TwiML or parameters: the connector's or its
            // configuration's fault.
            Self::Refused { .. } => FailureReason::ConnectorError,
            Self::Transport(_) => FailureReason::Unreachable,
        }
    }
}

/// The Calls resource of one account.
#[derive(Debug)]
pub struct CallsApi {
    client: reqwest::Client,
    base: String,
    account_sid: String,
    username: String,
    password: String,
    pacer: Pacer,
    rate_per_second: f64,
}

/// The error of a response that is not a success.
async fn refusal(response: reqwest::Response) -> UpdateError {
    let status = response.status().as_u16();
    // An unreadable or oversized error body is no error body.
    let text = bounded_text(response, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let error: TwilioError = serde_json::from_str(&text).unwrap_or_else(|_| TwilioError {
        status,
        message: "no Twilio error body".into(),
        ..Default::default()
    });
    UpdateError::Refused { status, error }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl CallsApi {
    pub fn new(config: &TwilioConfig) -> anyhow::Result<Self> {
        let credentials = &config.credentials;
        let (username, password) = match (&credentials.api_key_sid, &credentials.api_key_secret) {
            (Some(sid), Some(secret)) => (sid.clone(), secret.clone()),
            _ => (
                credentials.account_sid.clone(),
                credentials.auth_token.clone(),
            ),
        };
        Ok(Self {
            client: client(concat!(
                "baton-connector-twilio/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(config.request_timeout)
            .build()?,
            base: config.api_base.trim_end_matches('/').to_owned(),
            account_sid: credentials.account_sid.clone(),
            username,
            password,
            pacer: Pacer::new(config.rate_per_second, config.burst),
            rate_per_second: config.rate_per_second,
        })
    }

    /// Replaces the TwiML of a live call, waiting for the account's rate
    /// limit first (reported as QUEUED on `events`). `note` is remembered
    /// on `events` once the rate limit lets the request go, before it is
    /// sent: a restarted connector then knows that Twilio may have it.
    pub async fn update_twiml(
        &self,
        call_sid: &str,
        twiml: &str,
        events: Option<&TransferEvents>,
        note: Option<&str>,
    ) -> Result<(), UpdateError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{call_sid}.json",
            self.base, self.account_sid
        );
        let body = serde_urlencoded::to_string([("Twiml", twiml)])
            .map_err(|e| UpdateError::Transport(format!("cannot encode the request: {e}")))?;
        let mut throttled = 0;
        loop {
            let limit = format!(
                "Twilio's call-update rate limit ({}/s)",
                self.rate_per_second
            );
            take_turn(&self.pacer, events, &limit).await;
            if let (Some(events), Some(note)) = (events, note) {
                events.remember(note).await;
            }
            let response = self
                .client
                .post(&url)
                .basic_auth(&self.username, Some(&self.password))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| UpdateError::Transport(transport_error(e)))?;
            if response.status().is_success() {
                return Ok(());
            }
            if response.status().as_u16() == 429 && throttled < THROTTLE_RETRIES {
                throttled += 1;
                tracing::warn!(
                    call_sid,
                    throttled,
                    "Twilio throttled a call update; retrying"
                );
                let wait = retry_after(&response).unwrap_or(self.pacer.interval());
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(refusal(response).await);
        }
    }

    /// One request to `url` (a GET without `form`, else a form-encoded
    /// POST), authenticated as every call of the connector is; the JSON
    /// resource Twilio answers. Sent again when throttled (429).
    pub async fn request(
        &self,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Result<Value, UpdateError> {
        let body = form
            .map(serde_urlencoded::to_string)
            .transpose()
            .map_err(|e| UpdateError::Transport(format!("cannot encode the request: {e}")))?;
        let mut throttled = 0;
        loop {
            let request = match &body {
                Some(body) => self
                    .client
                    .post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.clone()),
                None => self.client.get(url),
            };
            let response = request
                .basic_auth(&self.username, Some(&self.password))
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| UpdateError::Transport(transport_error(e)))?;
            if response.status().is_success() {
                let text = bounded_text(response, MAX_RESPONSE_BYTES)
                    .await
                    .map_err(UpdateError::Transport)?;
                return serde_json::from_str(&text)
                    .map_err(|e| UpdateError::Transport(format!("unreadable answer: {e}")));
            }
            if response.status().as_u16() == 429 && throttled < THROTTLE_RETRIES {
                throttled += 1;
                tracing::warn!(url, throttled, "Twilio throttled a request; retrying");
                let wait = retry_after(&response).unwrap_or(self.pacer.interval());
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(refusal(response).await);
        }
    }
}
