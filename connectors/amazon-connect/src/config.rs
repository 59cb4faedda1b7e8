//! The Amazon Connect connector's configuration: serde defaults, then a
//! file, then `BATON_AMAZON_CONNECT_…` environment variables. The secret
//! key is best given in the environment
//! (`BATON_AMAZON_CONNECT_CREDENTIALS__SECRET_ACCESS_KEY`, or AWS's own
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sdk::config::{ConnectorDefaults, ServerConfig, StoreConfig, loopback};
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectConfig {
    /// The connector's name in GetConnectorInfo. Default `amazon-connect`.
    pub name: String,
    /// The gRPC listener, its health listener and the drain at SIGTERM
    /// (the SDK's shared section). Default gRPC address `127.0.0.1:50068`.
    pub server: ServerConfig<ConnectConfig>,
    /// `data_dir`: the SDK's transfer journal (`transfers.sqlite3`), so
    /// that a restarted connector replays the transfers that ended and
    /// never delivers one a second time. One process per directory.
    /// Default `.baton/amazon-connect`.
    pub store: StoreConfig<ConnectConfig>,
    /// Logs, traces and metrics.
    pub telemetry: baton_service_kit::telemetry::TelemetryConfig,
    /// TLS of the gRPC listener (`cert_file`, `key_file`, and
    /// `client_ca_file` to require the control service's certificate).
    pub tls: Option<baton_service_kit::tls::TlsConfig>,
    /// The AWS Region of the instance, e.g. `us-east-1`.
    pub region: String,
    /// The Connect API's base URL. Default
    /// `https://connect.{region}.amazonaws.com`.
    pub endpoint: Option<String>,
    /// The instance's id (the last part of its ARN).
    pub instance_id: String,
    /// How to sign requests.
    pub credentials: Credentials,
    /// Queue name (the handoff target's) → where in Connect it goes.
    pub queues: BTreeMap<String, QueueConfig>,
    /// Requests per second per API operation (Amazon Connect's default
    /// quota for most contact APIs is 2); more wait their turn, reported
    /// as QUEUED.
    pub rate_per_second: f64,
    /// The quota's burst: requests per operation allowed back to back.
    /// Default 5. The connector sends one fewer back to back, keeping one
    /// in reserve for uneven arrival times.
    pub burst: u32,
    /// How often a transfer's contact and queue are looked at. Default `2s`.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long one API request may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl ConnectorDefaults for ConnectConfig {
    const GRPC_LISTEN: SocketAddr = loopback(50068);
    const DATA_DIR: Option<&'static str> = Some(".baton/amazon-connect");
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            name: "amazon-connect".into(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            telemetry: Default::default(),
            tls: None,
            region: String::new(),
            endpoint: None,
            instance_id: String::new(),
            credentials: Credentials::default(),
            queues: BTreeMap::new(),
            rate_per_second: 2.0,
            burst: 5,
            poll_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Static AWS credentials of an IAM user or role session allowed the calls
/// the connector makes (see the README's policy).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    /// `AKIA…`/`ASIA…`. Default: `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// Never logged. Default: `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// For temporary credentials. Default: `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where a queue target goes: a queue with the flow that takes the contact
/// there, or a quick connect (of type QUEUE or USER) that names both.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// The Connect queue's id.
    pub queue_id: Option<String>,
    /// The flow TransferContact runs (a transfer-to-queue or inbound flow).
    pub contact_flow_id: Option<String>,
    /// A quick connect's id, instead of `queue_id` and `contact_flow_id`.
    pub quick_connect_id: Option<String>,
}

impl ConnectConfig {
    /// Takes the credentials from AWS's standard variables where the
    /// configuration has none.
    pub fn with_aws_environment(mut self) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if self.credentials.access_key_id.is_empty()
            && let Some(id) = var("AWS_ACCESS_KEY_ID")
        {
            self.credentials.access_key_id = id;
            if self.credentials.secret_access_key.is_empty() {
                self.credentials.secret_access_key =
                    var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
            }
            if self.credentials.session_token.is_none() {
                self.credentials.session_token = var("AWS_SESSION_TOKEN");
            }
        }
        if self.region.is_empty() {
            self.region = var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_default();
        }
        self
    }

    /// The API's base URL, without a trailing slash.
    pub fn endpoint_url(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("https://connect.{}.amazonaws.com", self.region))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.check()?;
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("region: is required (e.g. us-east-1; or AWS_REGION)".into());
        }
        if self.instance_id.is_empty() || self.instance_id.len() > 100 {
            return Err("instance_id: is required (1 to 100 characters)".into());
        }
        if self.credentials.access_key_id.is_empty() {
            return Err("credentials.access_key_id: is required (or AWS_ACCESS_KEY_ID)".into());
        }
        if self.credentials.secret_access_key.is_empty() {
            return Err(
                "credentials.secret_access_key: is required (or AWS_SECRET_ACCESS_KEY)".into(),
            );
        }
        let url =
            reqwest::Url::parse(&self.endpoint_url()).map_err(|e| format!("endpoint: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("endpoint: must be an http(s) URL".into());
        }
        if !(self.rate_per_second.is_finite() && self.rate_per_second > 0.0) {
            return Err("rate_per_second: must be above 0".into());
        }
        if self.burst == 0 {
            return Err("burst: must be 1 or more".into());
        }
        if self.poll_interval.is_zero() {
            return Err("poll_interval: must be above 0".into());
        }
        for (name, queue) in &self.queues {
            let direct = queue.queue_id.is_some() || queue.contact_flow_id.is_some();
            match (&queue.quick_connect_id, direct) {
                (Some(id), false) if !id.is_empty() => {}
                (None, true) => {
                    let queue_id = queue.queue_id.as_deref().unwrap_or_default();
                    let flow = queue.contact_flow_id.as_deref().unwrap_or_default();
                    if queue_id.is_empty() || flow.is_empty() || flow.len() > 500 {
                        return Err(format!(
                            "queues.{name}: a queue needs queue_id and contact_flow_id (the flow that transfers to it)"
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "queues.{name}: give either quick_connect_id, or queue_id and contact_flow_id"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ConnectConfig {
        ConnectConfig {
            region: "us-east-1".into(),
            instance_id: "11111111-2222-3333-4444-555555555555".into(),
            credentials: Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_default_endpoint_is_the_regions() {
        assert_eq!(
            valid().endpoint_url(),
            "https://connect.us-east-1.amazonaws.com"
        );
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn a_queue_is_either_a_queue_and_flow_or_a_quick_connect() {
        let mut config = valid();
        config.queues.insert(
            "support".into(),
            QueueConfig {
                queue_id: Some("q".into()),
                ..Default::default()
            },
        );
        assert!(matches!(config.validate(), Err(e) if e.starts_with("queues.support:")));
        config.queues.insert(
            "support".into(),
            QueueConfig {
                queue_id: Some("q".into()),
                contact_flow_id: Some("f".into()),
                quick_connect_id: Some("qc".into()),
            },
        );
        assert!(matches!(config.validate(), Err(e) if e.starts_with("queues.support:")));
        config.queues.insert(
            "support".into(),
            QueueConfig {
                quick_connect_id: Some("qc".into()),
                ..Default::default()
            },
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn missing_credentials_are_named_by_key() {
        let mut config = valid();
        config.credentials.secret_access_key.clear();
        assert!(
            matches!(config.validate(), Err(e) if e.starts_with("credentials.secret_access_key"))
        );
    }
}
