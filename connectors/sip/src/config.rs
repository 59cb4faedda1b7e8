//! The SIP connector's configuration: serde defaults, then a file, then
//! `BATON_SIP_…` environment variables. `SipConfig::default()` is a working
//! loopback configuration (what `baton dev` starts). The SIP keys (`sip`,
//! `ring_timeout`, `notify_timeout`, `headers`, `trunks`, `credentials`)
//! are the user agent's, documented in [`baton_sip_stack::config`]; the
//! rest are the connector process's own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use baton_sip_stack::config::*;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// gRPC listen address of the connector service. Default `127.0.0.1:50062`.
    pub listen: SocketAddr,
    /// Logs, traces and metrics.
    pub telemetry: baton_service_kit::telemetry::TelemetryConfig,
    /// TLS of the gRPC listener (`cert_file`, `key_file`, and
    /// `client_ca_file` to require client certificates: mTLS with the
    /// control service). Plain text when absent.
    pub tls: Option<baton_service_kit::tls::TlsConfig>,
    /// A plain-text listener serving only `grpc.health.v1`, for probes that
    /// cannot speak TLS (Kubernetes' gRPC probes). Off when unset.
    pub health_listen: Option<SocketAddr>,
    /// State directory: the transfer journal (`transfers.sqlite3`) that
    /// makes a restart a non-event. A transfer that ended is replayed to a
    /// control service that re-attaches; one that a stopped process left
    /// running is taken over by the next, which never INVITEs the human a
    /// second time: it CANCELs the ringing INVITE or BYEs the answered leg
    /// its predecessor noted (or follows the REFER it had sent) and reports
    /// the outcome. Default: none (transfers in memory only, as without a
    /// writable disk); `baton dev` and deployments set it.
    pub data_dir: Option<PathBuf>,
    /// On SIGTERM, how long running transfers may go on (new ones are
    /// refused) before the process exits. Nothing is hung up at shutdown:
    /// the legs still ringing or answered are left to the next process
    /// through the journal (`data_dir`). Default `30s`.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// [`UserAgentConfig::sip`].
    pub sip: SipEndpointConfig,
    /// [`UserAgentConfig::ring_timeout`].
    #[serde(with = "humantime_serde")]
    pub ring_timeout: Duration,
    /// [`UserAgentConfig::notify_timeout`].
    #[serde(with = "humantime_serde")]
    pub notify_timeout: Duration,
    /// [`UserAgentConfig::headers`].
    pub headers: HeaderPolicy,
    /// [`UserAgentConfig::trunks`].
    pub trunks: Vec<TrunkConfig>,
    /// [`UserAgentConfig::credentials`].
    pub credentials: Vec<CredentialConfig>,
}

impl Default for SipConfig {
    fn default() -> Self {
        let UserAgentConfig {
            sip,
            ring_timeout,
            notify_timeout,
            headers,
            trunks,
            credentials,
        } = UserAgentConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50062)),
            telemetry: Default::default(),
            tls: None,
            health_listen: None,
            data_dir: None,
            drain_timeout: Duration::from_secs(30),
            sip,
            ring_timeout,
            notify_timeout,
            headers,
            trunks,
            credentials,
        }
    }
}

impl SipConfig {
    /// The default configuration on free loopback ports (gRPC and SIP port
    /// 0), for tests and in-process use; `bind` reports the ports chosen.
    pub fn ephemeral() -> Self {
        let mut config = Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        };
        config.sip.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// The SIP user agent's keys, which the transfers run on.
    pub fn user_agent(&self) -> UserAgentConfig {
        UserAgentConfig {
            sip: self.sip.clone(),
            ring_timeout: self.ring_timeout,
            notify_timeout: self.notify_timeout,
            headers: self.headers.clone(),
            trunks: self.trunks.clone(),
            credentials: self.credentials.clone(),
        }
    }

    /// Checks what serde cannot, naming the exact key in the error.
    pub fn validate(&self) -> Result<(), String> {
        self.user_agent().validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_is_a_valid_configuration() {
        let readme = include_str!("../README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml example in the README");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sip.toml");
        std::fs::write(&path, example).expect("write");
        let config: SipConfig =
            baton_service_kit::config::load(Some(&path), "BATON_SIP_README_TEST").expect("loads");
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.trunks.len(), 1);
        assert_eq!(
            config
                .user_agent()
                .credentials_for("sip:desk@pbx.example.net")
                .map(|c| c.0)
                .as_deref(),
            Some("baton")
        );
    }
}
