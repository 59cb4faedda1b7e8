//! The SIP connector's configuration: serde defaults, then a file, then
//! `BATON_SIP_…` environment variables. `SipConfig::default()` is a working
//! loopback configuration (what `baton dev` starts). The SIP keys (`sip`,
//! `ring_timeout`, `notify_timeout`, `headers`, `trunks`, `credentials`)
//! are the user agent's, documented in [`baton_sip_stack::config`]; the
//! rest are the connector process's own.

use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sdk::config::{ConnectorDefaults, ServerConfig, StoreConfig, loopback};
pub use baton_sip_stack::config::*;
pub use baton_sip_stack::hand_back::HandBackConfig;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// The gRPC listener, its health listener and the drain at SIGTERM
    /// (the SDK's shared section). Default gRPC address `127.0.0.1:50062`.
    /// Nothing is hung up at shutdown: the legs still ringing or answered
    /// after `drain_timeout` are left to the next process through the
    /// journal (`store.data_dir`).
    pub server: ServerConfig<SipConfig>,
    /// `data_dir`: the transfer journal (`transfers.sqlite3`) that makes a
    /// restart a non-event. A transfer that ended is replayed to a control
    /// service that re-attaches; one that a stopped process left running
    /// is taken over by the next, which never INVITEs the human a second
    /// time: it CANCELs the ringing INVITE or BYEs the answered leg its
    /// predecessor noted (or follows the REFER it had sent) and reports the
    /// outcome. Default: none (transfers in memory only, as without a
    /// writable disk); `baton dev` and deployments set it.
    pub store: StoreConfig<SipConfig>,
    /// Logs, traces and metrics.
    pub telemetry: baton_service_kit::telemetry::TelemetryConfig,
    /// TLS of the gRPC listener (`cert_file`, `key_file`, and
    /// `client_ca_file` to require client certificates: mTLS with the
    /// control service). Plain text when absent.
    pub tls: Option<baton_service_kit::tls::TlsConfig>,
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
    /// Hand-back to the AI runtime: with it, every transfer of a call that
    /// has a caller's gateway advertises a hand-back address to the human's
    /// side, which redirects the customer to `runtime_uri` and ends the
    /// transfer HANDED_BACK (see [`baton_sip_stack::hand_back`]). Default:
    /// none (a connected transfer is COMPLETED at once).
    pub hand_back: Option<HandBackConfig>,
    /// The consult leg of attended transfers (`TRANSFER_MODE_ATTENDED`):
    /// the keys that accept and decline, the decide timeout, the brief's
    /// templates and voices and the TTS command (see
    /// [`baton_sip_stack::config::ConsultConfig`]). Default: keys 1 and 2,
    /// `20s`, an English brief spoken by `espeak-ng`.
    pub consult: ConsultConfig,
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
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            telemetry: Default::default(),
            tls: None,
            sip,
            ring_timeout,
            notify_timeout,
            headers,
            trunks,
            credentials,
            hand_back: None,
            consult: ConsultConfig::default(),
        }
    }
}

impl ConnectorDefaults for SipConfig {
    const GRPC_LISTEN: SocketAddr = loopback(50062);
}

impl SipConfig {
    /// The default configuration on free loopback ports (gRPC and SIP port
    /// 0), for tests and in-process use; `bind` reports the ports chosen.
    pub fn ephemeral() -> Self {
        let mut config = Self::default();
        config.server.grpc_listen = loopback(0);
        config.sip.bind = loopback(0);
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
        self.server.check()?;
        if let Some(hand_back) = &self.hand_back {
            hand_back.validate()?;
        }
        self.consult.validate()?;
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
        let (config, moved) =
            baton_connector_sdk::run::load::<SipConfig>(Some(&path)).expect("loads");
        assert_eq!(moved, [], "the README writes every key at its place");
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

    #[test]
    fn an_invalid_consult_key_is_named_in_the_error() {
        let mut config = SipConfig::default();
        config.consult.decline_digit = config.consult.accept_digit;
        let error = config.validate().expect_err("refused");
        assert!(error.contains("consult.accept_digit"), "{error}");
        config.consult = ConsultConfig::default();
        config.consult.brief_template = "{customer_phone}".into();
        let error = config.validate().expect_err("refused");
        assert!(error.contains("consult.brief_template"), "{error}");
    }

    #[test]
    fn an_old_style_file_and_a_new_style_file_give_the_same_config() {
        let from_new = baton_connector_sdk::testing::old_layout_loads_as_new::<SipConfig>(
            "listen = \"0.0.0.0:50062\"\nhealth_listen = \"0.0.0.0:50050\"\n\
             data_dir = \"/var/lib/baton-sip\"\ndrain_timeout = \"35s\"\n\
             ring_timeout = \"20s\"\n\n[sip]\nbind = \"0.0.0.0:5060\"\n",
            "ring_timeout = \"20s\"\n\n[server]\ngrpc_listen = \"0.0.0.0:50062\"\n\
             health_listen = \"0.0.0.0:50050\"\ndrain_timeout = \"35s\"\n\n\
             [store]\ndata_dir = \"/var/lib/baton-sip\"\n\n[sip]\nbind = \"0.0.0.0:5060\"\n",
            4,
        );
        assert_eq!(from_new.server.drain_timeout, Duration::from_secs(35));
    }
}
