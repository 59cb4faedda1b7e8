//! The Twilio connector's configuration: serde defaults, then a file, then
//! `BATON_TWILIO_…` environment variables. Secrets are best given in the
//! environment: `BATON_TWILIO_CREDENTIALS__AUTH_TOKEN`,
//! `BATON_TWILIO_CREDENTIALS__API_KEY_SECRET`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sdk::config::{ConnectorDefaults, ServerConfig, StoreConfig, loopback};
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioConfig {
    /// The connector's name in GetConnectorInfo. Default `twilio`.
    pub name: String,
    /// The gRPC listener, its health listener and the drain at SIGTERM
    /// (the SDK's shared section). Default gRPC address `127.0.0.1:50067`.
    /// The callback listener is `callbacks.listen`.
    pub server: ServerConfig<TwilioConfig>,
    /// `data_dir`: the SDK's transfer journal (`transfers.sqlite3`), so
    /// that a restarted connector replays the transfers that ended and
    /// never delivers one a second time. One process per directory.
    /// Default `.baton/twilio`.
    pub store: StoreConfig<TwilioConfig>,
    /// Logs, traces and metrics.
    pub telemetry: baton_service_kit::telemetry::TelemetryConfig,
    /// TLS of the gRPC listener and of the callback listener (`cert_file`,
    /// `key_file`, and `client_ca_file` to require client certificates on
    /// gRPC: mTLS with the control service; never asked for on HTTP).
    /// Plain text when absent.
    pub tls: Option<baton_service_kit::tls::TlsConfig>,
    /// The REST API's base URL. Default `https://api.twilio.com`.
    pub api_base: String,
    /// The Conversations API's base URL (chat transfers). Default
    /// `https://conversations.twilio.com`.
    pub conversations_api_base: String,
    /// The TaskRouter API's base URL (chat tasks, context updates).
    /// Default `https://taskrouter.twilio.com`.
    pub taskrouter_api_base: String,
    /// The TaskRouter workspace (`WS…`) of the queues' workflows: chat
    /// transfers create their task in it, and context updates change the
    /// attributes of its tasks. Voice transfers need none.
    pub workspace_sid: Option<String>,
    /// The account and how to authenticate to it.
    pub credentials: Credentials,
    /// Where Twilio's status callbacks arrive.
    pub callbacks: CallbackConfig,
    /// Call-update requests per second for the account (Twilio's default
    /// limit is 1 per second); more wait their turn, reported as QUEUED.
    pub rate_per_second: f64,
    /// Requests allowed back to back before the rate applies. Default 1.
    pub burst: u32,
    /// How long one API request may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// `<Dial timeout>`: how long the human's phone rings. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub ring_timeout: Duration,
    /// `<Dial callerId>` for phone-number targets (an E.164 number of the
    /// account); Twilio uses the caller's number when unset.
    pub caller_id: Option<String>,
    /// The TaskRouter workflow for queue targets without one of their own.
    pub workflow_sid: Option<String>,
    /// Queue name → TaskRouter workflow SID, for queues routed apart.
    pub queues: BTreeMap<String, String>,
    /// Queue name → the TaskRouter TaskQueue SID (`WQ…`) whose real-time
    /// statistics say who is there for it (GetAvailability). A workflow
    /// may route to several TaskQueues, so the one that stands for the
    /// queue is named here. The connector reports availability only when
    /// this and `workspace_sid` are set; other queues answer NOT_FOUND.
    pub task_queues: BTreeMap<String, String>,
    /// What the caller hears while waiting for the next target after a
    /// failed one: TwiML returned to Dial's and Enqueue's action requests.
    pub hold_twiml: String,
    /// What the caller hears while queued: TwiML returned to Enqueue's wait
    /// requests (Say, Play, Pause…), requested again when it ends.
    pub wait_twiml: String,
}

impl ConnectorDefaults for TwilioConfig {
    const GRPC_LISTEN: SocketAddr = loopback(50067);
    const DATA_DIR: Option<&'static str> = Some(".baton/twilio");
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            name: "twilio".into(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            telemetry: Default::default(),
            tls: None,
            api_base: "https://api.twilio.com".into(),
            conversations_api_base: "https://conversations.twilio.com".into(),
            taskrouter_api_base: "https://taskrouter.twilio.com".into(),
            workspace_sid: None,
            credentials: Credentials::default(),
            callbacks: CallbackConfig::default(),
            rate_per_second: 1.0,
            burst: 1,
            request_timeout: Duration::from_secs(10),
            ring_timeout: Duration::from_secs(30),
            caller_id: None,
            workflow_sid: None,
            queues: BTreeMap::new(),
            task_queues: BTreeMap::new(),
            hold_twiml: "<Response><Pause length=\"60\"/></Response>".into(),
            wait_twiml: "<Response><Say>Please hold: you are being connected to someone who has the details of your conversation.</Say><Pause length=\"20\"/></Response>".into(),
        }
    }
}

/// The account SID and the secret(s). Requests authenticate with the API
/// key when one is set, else with the auth token; callbacks are always
/// verified with the auth token, which is what Twilio signs them with.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    /// `AC…`.
    pub account_sid: String,
    /// The account's auth token. Never logged.
    pub auth_token: String,
    /// `SK…`: an API key, preferred for requests.
    pub api_key_sid: Option<String>,
    /// The API key's secret. Never logged.
    pub api_key_secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("api_key_sid", &self.api_key_sid)
            .finish_non_exhaustive()
    }
}

/// The connector's HTTP endpoint for Twilio's callbacks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    /// Local listen address. Default `127.0.0.1:8097`.
    pub listen: SocketAddr,
    /// The URL Twilio reaches this endpoint at (a proxy may sit between,
    /// keeping the path), e.g. `https://baton.example.com/twilio`. Signatures
    /// are computed over it. Default: `http://` + the bound address.
    pub public_url: Option<String>,
    /// Timeouts and connection limit of the listener
    /// (`header_read_timeout` 10s, `idle_timeout` 60s, `request_timeout`
    /// 30s, `max_connections` 1024).
    pub limits: baton_service_kit::http::HttpLimits,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8097)),
            public_url: None,
            limits: Default::default(),
        }
    }
}

fn is_sid(text: &str, prefix: &str) -> bool {
    text.len() == 34 && text.starts_with(prefix) && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl TwilioConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.check()?;
        self.callbacks.limits.check("callbacks.limits")?;
        let credentials = &self.credentials;
        if !is_sid(&credentials.account_sid, "AC") {
            return Err(
                "credentials.account_sid: must be an account SID (AC + 32 hex digits)".into(),
            );
        }
        if credentials.auth_token.is_empty() {
            return Err(
                "credentials.auth_token: is required (callbacks are verified with it)".into(),
            );
        }
        match (&credentials.api_key_sid, &credentials.api_key_secret) {
            (None, None) => {}
            (Some(sid), Some(secret)) if is_sid(sid, "SK") && !secret.is_empty() => {}
            _ => {
                return Err(
                    "credentials.api_key_sid: an API key needs an SK… SID and api_key_secret"
                        .into(),
                );
            }
        }
        for (key, base) in [
            ("api_base", &self.api_base),
            ("conversations_api_base", &self.conversations_api_base),
            ("taskrouter_api_base", &self.taskrouter_api_base),
        ] {
            let api = reqwest::Url::parse(base).map_err(|e| format!("{key}: {e}"))?;
            if !matches!(api.scheme(), "http" | "https") {
                return Err(format!("{key}: must be an http(s) URL"));
            }
        }
        if let Some(sid) = &self.workspace_sid
            && !is_sid(sid, "WS")
        {
            return Err("workspace_sid: must be a workspace SID (WS + 32 hex digits)".into());
        }
        if let Some(url) = &self.callbacks.public_url {
            let parsed =
                reqwest::Url::parse(url).map_err(|e| format!("callbacks.public_url: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
                return Err("callbacks.public_url: must be an http(s) URL without a query".into());
            }
        }
        if !(self.rate_per_second.is_finite() && self.rate_per_second > 0.0) {
            return Err("rate_per_second: must be above 0".into());
        }
        if self.burst == 0 {
            return Err("burst: must be 1 or more".into());
        }
        if self.ring_timeout.as_secs() < 5 || self.ring_timeout.as_secs() > 600 {
            return Err("ring_timeout: Twilio allows 5s to 600s".into());
        }
        if let Some(sid) = &self.workflow_sid
            && !is_sid(sid, "WW")
        {
            return Err("workflow_sid: must be a workflow SID (WW + 32 hex digits)".into());
        }
        for (queue, sid) in &self.queues {
            if !is_sid(sid, "WW") {
                return Err(format!(
                    "queues.{queue}: must be a workflow SID (WW + 32 hex digits)"
                ));
            }
        }
        for (queue, sid) in &self.task_queues {
            if !is_sid(sid, "WQ") {
                return Err(format!(
                    "task_queues.{queue}: must be a TaskQueue SID (WQ + 32 hex digits)"
                ));
            }
        }
        if !self.task_queues.is_empty() && self.workspace_sid.is_none() {
            return Err(
                "task_queues: needs workspace_sid (the TaskQueues' statistics are read in it)"
                    .into(),
            );
        }
        if !self.hold_twiml.trim_start().starts_with("<Response") {
            return Err("hold_twiml: must be a <Response> document".into());
        }
        if !self.wait_twiml.trim_start().starts_with("<Response") {
            return Err("wait_twiml: must be a <Response> document".into());
        }
        Ok(())
    }

    /// The workflow of a queue target.
    pub fn workflow_for(&self, queue: &str) -> Option<&str> {
        self.queues
            .get(queue)
            .or(self.workflow_sid.as_ref())
            .map(String::as_str)
    }

    /// Whether GetAvailability can be answered for some queue: it needs a
    /// workspace and at least one TaskQueue to read statistics from.
    pub fn reports_availability(&self) -> bool {
        self.workspace_sid.is_some() && !self.task_queues.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> TwilioConfig {
        TwilioConfig {
            credentials: Credentials {
                account_sid: format!("AC{}", "a".repeat(32)),
                auth_token: "token".into(),
                ..Default::default()
            },
            workflow_sid: Some(format!("WW{}", "b".repeat(32))),
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_configuration_is_valid_and_queues_fall_back_to_the_default_workflow() {
        let mut config = valid();
        config
            .queues
            .insert("vip".into(), format!("WW{}", "c".repeat(32)));
        config.validate().expect("valid");
        assert!(
            config
                .workflow_for("vip")
                .expect("vip")
                .starts_with("WWccc")
        );
        assert!(
            config
                .workflow_for("billing")
                .expect("default")
                .starts_with("WWbbb")
        );
    }

    #[test]
    fn mistakes_are_named_by_key() {
        let mut config = valid();
        config.credentials.account_sid = "AC123".into();
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("credentials.account_sid")
        );
        let mut config = valid();
        config.credentials.api_key_sid = Some(format!("SK{}", "d".repeat(32)));
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("credentials.api_key_sid")
        );
        let mut config = valid();
        config.rate_per_second = 0.0;
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("rate_per_second")
        );
        let mut config = valid();
        config.workspace_sid = Some("WS123".into());
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("workspace_sid")
        );
        let mut config = valid();
        config.conversations_api_base = "ftp://conversations.example".into();
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("conversations_api_base")
        );
        let mut config = valid();
        config.workspace_sid = Some(format!("WS{}", "e".repeat(32)));
        config.task_queues.insert("vip".into(), "WQ123".into());
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("task_queues.vip")
        );
        let mut config = valid();
        config
            .task_queues
            .insert("vip".into(), format!("WQ{}", "f".repeat(32)));
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("task_queues: needs workspace_sid")
        );
        let mut config = valid();
        config.queues.insert("vip".into(), "nope".into());
        assert!(
            config
                .validate()
                .expect_err("bad")
                .starts_with("queues.vip")
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut config = valid();
        config.credentials.auth_token = "very-secret-token".into();
        config.credentials.api_key_secret = Some("very-secret-key".into());
        let debug = format!("{config:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
    }
}
