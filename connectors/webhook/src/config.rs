//! The webhook connector's configuration: serde defaults, then a file, then
//! `BATON_WEBHOOK_…` environment variables (a secret is best given as
//! `BATON_WEBHOOK_ENDPOINTS__<NAME>__SECRET`, so it stays out of files).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use baton_connector_sdk::config::{ConnectorDefaults, ServerConfig, StoreConfig, loopback};
use baton_service_kit::metrics::MetricsConfig;
use serde::Deserialize;

use crate::signature::SigningSecret;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// The connector's name in GetConnectorInfo. Default `webhook`.
    pub name: String,
    /// The listeners and the drain at SIGTERM (the SDK's shared section):
    /// `grpc_listen` (default `127.0.0.1:50066`), `health_listen`,
    /// `drain_timeout`, and the HTTP listener of the delivery log
    /// (`GET /v1/deliveries`) and of the receivers' progress reports
    /// (`POST /v1/reports`): `http_listen` (default `127.0.0.1:8096`), its
    /// limits `http`, and `public_url`, the URL receivers reach it at, for
    /// `data.report_url` (default: `http://` + the bound address).
    pub server: ServerConfig<WebhookConfig>,
    /// `data_dir`: the SDK's transfer journal (`transfers.sqlite3`), so
    /// that a restarted connector replays the transfers that ended and
    /// never delivers one a second time. One process per directory.
    /// Default `.baton/webhook`.
    pub store: StoreConfig<WebhookConfig>,
    /// Where Prometheus scrapes `/metrics`: `listen`, a listener of its
    /// own; unset, the HTTP listener answers `/metrics` to loopback callers
    /// only.
    pub metrics: MetricsConfig,
    /// Logs, traces and metrics.
    pub telemetry: baton_service_kit::telemetry::TelemetryConfig,
    /// TLS of the gRPC listener and of the HTTP listener (`cert_file`,
    /// `key_file`, and `client_ca_file` to require client certificates on
    /// gRPC: mTLS with the control service; never asked for on HTTP).
    /// Plain text when absent.
    pub tls: Option<baton_service_kit::tls::TlsConfig>,
    /// The SQLite file of the delivery log. Default
    /// `.baton/webhook-deliveries.sqlite3`.
    pub delivery_log: PathBuf,
    /// The most bytes of context the connector asks the control service for
    /// (the WEBHOOK payload's limit). Default 65536.
    pub max_context_bytes: u32,
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// Queue targets: a queue name and the endpoints that receive its
    /// handoffs. A queue not listed here fails with UNREACHABLE.
    pub queues: BTreeMap<String, Vec<String>>,
    /// How failed deliveries are retried.
    pub retry: RetryConfig,
}

impl ConnectorDefaults for WebhookConfig {
    const GRPC_LISTEN: SocketAddr = loopback(50066);
    const HTTP_LISTEN: Option<SocketAddr> = Some(loopback(8096));
    const DATA_DIR: Option<&'static str> = Some(".baton/webhook");
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            name: "webhook".into(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::default(),
            telemetry: Default::default(),
            tls: None,
            delivery_log: PathBuf::from(".baton/webhook-deliveries.sqlite3"),
            max_context_bytes: 64 * 1024,
            endpoints: BTreeMap::new(),
            queues: BTreeMap::new(),
            retry: RetryConfig::default(),
        }
    }
}

/// One HTTP endpoint that receives handoffs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `https://…` (or `http://…`, for loopback and tests).
    pub url: String,
    /// The Standard Webhooks signing secret, `whsec_<base64>`. Never logged.
    pub secret: SigningSecret,
    /// The most requests per second sent to this endpoint; more wait their
    /// turn (reported as QUEUED). Default 10.
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    /// Requests allowed back to back before the rate applies. Default 1.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// How long one request may take before it counts as a timeout (and is
    /// retried). Default `10s`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// When a transfer to this endpoint is over: `accepted` (default) when
    /// it answers 2xx; `reported` when it reports the human connected (or
    /// a failure) to `data.report_url`, signed with the same secret.
    #[serde(default)]
    pub completion: Completion,
    /// Where the connector posts the conversation of a chat handoff
    /// delivered to this endpoint (customer messages, typing, read, the
    /// end), signed with the same secret; the platform posts the human's
    /// side to the connector's `/v1/chats/{handoff_id}/{attempt}`. Unset:
    /// the endpoint gets chat handoffs as a screen pop only.
    #[serde(default)]
    pub chat_url: Option<String>,
}

/// When a delivered transfer counts as connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completion {
    /// The endpoint's 2xx: the receiving system owns the customer.
    #[default]
    Accepted,
    /// The receiving system's own report that a human has the customer.
    Reported,
}

fn default_rate() -> f64 {
    10.0
}

fn default_burst() -> u32 {
    1
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Retries of 5xx, 429 and timeouts with jittered exponential backoff.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Requests per delivery, the first included. Default 6.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles per retry, and
    /// each wait is drawn uniformly below it ("full jitter"). Default `1s`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// The largest backoff ceiling. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; an endpoint asking for more fails
    /// the delivery at once rather than hold the customer. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl WebhookConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.check()?;
        self.metrics.check()?;
        if self.name.is_empty() {
            return Err("name: must not be empty".into());
        }
        for (name, endpoint) in &self.endpoints {
            let key = format!("endpoints.{name}");
            check_url(&endpoint.url, &format!("{key}.url"))?;
            if let Some(chat_url) = &endpoint.chat_url {
                check_url(chat_url, &format!("{key}.chat_url"))?;
            }
            if !(endpoint.rate_per_second.is_finite() && endpoint.rate_per_second > 0.0) {
                return Err(format!("{key}.rate_per_second: must be above 0"));
            }
            if endpoint.burst == 0 {
                return Err(format!("{key}.burst: must be 1 or more"));
            }
            if endpoint.timeout.is_zero() {
                return Err(format!("{key}.timeout: must be above 0"));
            }
        }
        for (queue, endpoints) in &self.queues {
            if endpoints.is_empty() {
                return Err(format!("queues.{queue}: names no endpoint"));
            }
            for endpoint in endpoints {
                if !self.endpoints.contains_key(endpoint) {
                    return Err(format!(
                        "queues.{queue}: endpoint {endpoint:?} is not in endpoints"
                    ));
                }
            }
        }
        if let Some(url) = &self.server.public_url {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("server.public_url: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
                return Err("server.public_url: must be an http(s) URL without a query".into());
            }
        }
        if self.retry.max_attempts == 0 {
            return Err("retry.max_attempts: must be 1 or more".into());
        }
        if self.retry.max_backoff < self.retry.initial_backoff {
            return Err("retry.max_backoff: must not be below retry.initial_backoff".into());
        }
        Ok(())
    }
}

/// An endpoint's URL: http(s) with a host.
fn check_url(text: &str, key: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{key}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{key}: must be an http(s) URL with a host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<WebhookConfig, String> {
        let config: WebhookConfig = toml_like(text)?;
        config.validate().map(|()| config)
    }

    fn toml_like(text: &str) -> Result<WebhookConfig, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("webhook.toml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        baton_service_kit::config::load(Some(&path), "BATON_WEBHOOK_CONFIG_TEST")
            .map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[endpoints.crm]
url = "https://crm.example.com/baton"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[queues]
billing = ["crm"]
"#;

    #[test]
    fn a_queue_maps_to_configured_endpoints() {
        let config = config(GOOD).expect("valid");
        assert_eq!(config.queues["billing"], ["crm"]);
        assert_eq!(config.endpoints["crm"].rate_per_second, 10.0);
    }

    #[test]
    fn mistakes_are_named_by_key() {
        let unknown_endpoint = GOOD.replace("[\"crm\"]", "[\"zendesk\"]");
        assert!(
            config(&unknown_endpoint)
                .expect_err("refused")
                .contains("queues.billing")
        );
        let bad_secret = GOOD.replace("whsec_MfKQ", "MfKQ");
        assert!(config(&bad_secret).expect_err("refused").contains("whsec_"));
        let bad_url = GOOD.replace("https://crm.example.com/baton", "ftp://crm.example.com");
        assert!(
            config(&bad_url)
                .expect_err("refused")
                .contains("endpoints.crm.url")
        );
        let bad_chat_url = GOOD.replace(
            "url = \"https://crm.example.com/baton\"",
            "url = \"https://crm.example.com/baton\"\nchat_url = \"mailto:desk@crm\"",
        );
        assert!(
            config(&bad_chat_url)
                .expect_err("refused")
                .contains("endpoints.crm.chat_url")
        );
        let typo = GOOD.replace("url =", "ulr =");
        assert!(config(&typo).expect_err("refused").contains("ulr"));
    }

    #[test]
    fn an_old_style_file_and_a_new_style_file_give_the_same_config() {
        let from_new = baton_connector_sdk::testing::old_layout_loads_as_new::<WebhookConfig>(
            &format!(
                "listen = \"0.0.0.0:50066\"\nhttp_listen = \"0.0.0.0:8096\"\n\
                 public_url = \"https://webhook.example.com\"\ndata_dir = \"/var/lib/w\"\n\
                 drain_timeout = \"5s\"\nhealth_listen = \"0.0.0.0:50050\"\n\
                 delivery_log = \"/var/lib/w/log.sqlite3\"\n{GOOD}\n[http]\nmax_connections = 9\n"
            ),
            &format!(
                "delivery_log = \"/var/lib/w/log.sqlite3\"\n{GOOD}\n[server]\n\
                 grpc_listen = \"0.0.0.0:50066\"\nhttp_listen = \"0.0.0.0:8096\"\n\
                 public_url = \"https://webhook.example.com\"\ndrain_timeout = \"5s\"\n\
                 health_listen = \"0.0.0.0:50050\"\n\n[server.http]\nmax_connections = 9\n\n\
                 [store]\ndata_dir = \"/var/lib/w\"\n"
            ),
            7,
        );
        assert_eq!(from_new.server.http.max_connections, 9);
        from_new.validate().expect("valid");
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let config = config(GOOD).expect("valid");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{debug}"
        );
    }
}
