//! The queue connector's configuration. Every key has a documented default,
//! so `baton-connector-queue` runs with no file at all (one queue,
//! `support`, on loopback).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use baton_connector_sdk::config::{ConnectorDefaults, ServerConfig, StoreConfig, loopback};
use baton_service_kit::metrics::MetricsConfig;
use baton_service_kit::telemetry::TelemetryConfig;
use baton_sip_stack::config::{
    CredentialConfig, HeaderPolicy, SipEndpointConfig, TrunkConfig, UserAgentConfig,
};
use serde::Deserialize;

use crate::domain::{Policy, QueueSpec};

#[path = "callback/config.rs"]
mod callback;
pub use callback::CallbackConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// The connector's name in GetConnectorInfo. Default `queue`.
    pub name: String,
    /// The listeners and the drain at SIGTERM (the SDK's shared section):
    /// `grpc_listen` (ConnectorService, default `127.0.0.1:50071`),
    /// `health_listen`, the agent desktop's `http_listen` (default
    /// `127.0.0.1:8090`) and its limits `http` (event streams are not cut
    /// by the request timeout), and `drain_timeout`: how long running
    /// transfers may go on at SIGTERM (agents keep the desktop and may take
    /// the customers waiting) before the connector stops; new transfers are
    /// refused meanwhile. Waiting contacts stay in the store either way,
    /// and the transfers still running are handed to the next process
    /// through the journal. Default 30s.
    pub server: ServerConfig<QueueConfig>,
    /// `data_dir`: the directory of the SQLite database holding the queue's
    /// state, and of the SDK's transfer journal (`transfers.sqlite3`).
    /// Default `.baton/queue`.
    pub store: StoreConfig<QueueConfig>,
    /// Where Prometheus scrapes `/metrics`: `listen`, a listener of its
    /// own; unset, the desktop's listener answers `/metrics` to loopback
    /// callers only.
    pub metrics: MetricsConfig,
    /// Logs, traces and metrics (`log_format`, `otlp_endpoint`, …).
    pub telemetry: TelemetryConfig,
    /// TLS of the gRPC listener and of the agent desktop (`cert_file`, `key_file`, and
    /// `client_ca_file` to require client certificates on gRPC: mTLS
    /// with the control service; the desktop, reached by browsers, never
    /// asks for one). Plain text when absent.
    pub tls: Option<baton_service_kit::tls::TlsConfig>,
    /// How long an agent has to accept an offer. Default 20s.
    #[serde(with = "humantime_serde")]
    pub offer_timeout: Duration,
    /// The handle time assumed before a queue has handled contacts.
    /// Default 4m.
    #[serde(with = "humantime_serde")]
    pub initial_handle_time: Duration,
    /// How many recent handle times the wait estimate averages. Default 20.
    pub handle_time_samples: usize,
    /// How many chats an agent holds at once, offered or connected (an
    /// agent with fewer may be offered another chat); `agents[].chat_capacity`
    /// sets one agent's. A call (or a callback) always takes the agent
    /// alone: nothing else is offered beside it, and it is not offered
    /// beside a chat. 1 to 20; default 3.
    pub chat_capacity: u32,
    /// The largest structured context accepted, in bytes. Default 256 KiB.
    pub max_context_bytes: u32,
    /// The queues. Default: one queue `support` needing skill `support`.
    pub queues: Vec<QueueSpec>,
    /// Agents known in advance: their skills and contact address are used
    /// when they sign in (an account in `desk.accounts_file` that lists
    /// its own skills or contact overrides them). Default none.
    pub agents: Vec<AgentConfig>,
    /// Who signs in to the desktop and how sessions behave: see
    /// [`DeskConfig`].
    pub desk: DeskConfig,
    /// How long after a restart a restored waiting contact stays held
    /// (queued, never offered) for the control service to re-attach its
    /// transfer; then it is withdrawn. Default 60s.
    #[serde(with = "humantime_serde")]
    pub reattach_grace: Duration,
    /// No longer has any effect: every sign-in needs an account with a
    /// password in `desk.accounts_file`. Still accepted so that older
    /// files load; `true` is warned about at start.
    pub allow_self_sign_in: bool,
    /// The voice leg: whether and how a voice conversation is delivered to
    /// the accepting agent's contact address. Default: off.
    pub voice: VoiceConfig,
    /// How a callback's customer is dialed (`attempts`, `retry_delay`,
    /// `customer_ring_timeout`): see [`CallbackConfig`]. Callbacks are
    /// taken only with `voice.enabled`.
    pub callback: CallbackConfig,
    /// Where the supervisor view reads how the last day's handoffs went
    /// (the control service's `GetOutcomeMetrics`): see
    /// [`crate::outcomes::OutcomesConfig`]. Default none: the view says
    /// the figures are not configured.
    pub outcomes: Option<crate::outcomes::OutcomesConfig>,
}

/// The voice leg, delivered through the SIP user agent (`baton-sip-stack`)
/// once an agent accepts a voice conversation. The SIP keys are the user
/// agent's, as in the SIP connector (`sip`, `ring_timeout`,
/// `notify_timeout`, `headers`, `trunks`, `credentials`), documented
/// there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceConfig {
    /// Deliver the voice leg. Default false: an accepted handoff is
    /// connected at once, whatever its channel (the desktop shows the
    /// agent's contact address).
    pub enabled: bool,
    /// `warm` (call the agent, then REFER the caller's gateway with
    /// Replaces) or `blind` (REFER the gateway to the agent). Default `warm`.
    pub mode: VoiceMode,
    /// The queue's own SIP endpoint. Default bind `127.0.0.1:5063` (the SIP
    /// connector's default is 5062).
    pub sip: SipEndpointConfig,
    /// How long the agent's phone may ring. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub ring_timeout: Duration,
    /// How long to wait for the gateway's final NOTIFY. Default `32s`.
    #[serde(with = "humantime_serde")]
    pub notify_timeout: Duration,
    /// The context sent in the signalling. Default: as the SIP connector.
    pub headers: HeaderPolicy,
    /// Trunks for agents whose contact is a phone number. Default none.
    pub trunks: Vec<TrunkConfig>,
    /// Digest credentials by host. Default none.
    pub credentials: Vec<CredentialConfig>,
}

/// How the voice leg reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceMode {
    Warm,
    Blind,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        let sip = UserAgentConfig::default();
        let mut endpoint = sip.sip;
        endpoint.bind = SocketAddr::from(([127, 0, 0, 1], 5063));
        Self {
            enabled: false,
            mode: VoiceMode::Warm,
            sip: endpoint,
            ring_timeout: sip.ring_timeout,
            notify_timeout: sip.notify_timeout,
            headers: sip.headers,
            trunks: sip.trunks,
            credentials: sip.credentials,
        }
    }
}

impl VoiceConfig {
    /// The SIP user agent's configuration for these keys.
    pub fn sip_config(&self) -> UserAgentConfig {
        UserAgentConfig {
            sip: self.sip.clone(),
            ring_timeout: self.ring_timeout,
            notify_timeout: self.notify_timeout,
            headers: self.headers.clone(),
            trunks: self.trunks.clone(),
            credentials: self.credentials.clone(),
        }
    }
}

/// The desktop's sign-in and sessions (`[desk]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// The accounts file (`[[accounts]]` with name, role, tenants, skills,
    /// contact and an argon2id password hash), written by
    /// `baton desk account add`. Read again at every sign-in. Unset:
    /// nobody can sign in (the connector still queues, and says so at
    /// start).
    pub accounts_file: Option<PathBuf>,
    /// A session unused this long ends. Default 8h.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not. Default 12h.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// Origins (`https://desk.example.com`) besides the desktop's own
    /// (`server.public_url`, or the request's Host) from which a browser
    /// may send a state-changing request. Default none.
    pub allowed_origins: Vec<String>,
    /// Failed sign-ins allowed per source address (`per_minute`, `burst`,
    /// `max_sources`), as for the control service's credentials. Default
    /// 30 a minute, bursts of 20.
    pub failed_sign_ins: baton_auth::FailedAuthConfig,
    /// Whether the accounts of `accounts_file` may sign in with their
    /// password. Default true; false (with `oidc` set) leaves the issuer
    /// as the only way in.
    pub local_accounts: bool,
    /// Sign-in through an OpenID Connect issuer (`[desk.oidc]`): see
    /// [`crate::oidc::OidcConfig`]. Default none.
    pub oidc: Option<crate::oidc::OidcConfig>,
}

impl Default for DeskConfig {
    fn default() -> Self {
        Self {
            accounts_file: None,
            session_idle_timeout: Duration::from_secs(8 * 3600),
            session_lifetime: Duration::from_secs(12 * 3600),
            allowed_origins: Vec::new(),
            failed_sign_ins: baton_auth::FailedAuthConfig::default(),
            local_accounts: true,
            oidc: None,
        }
    }
}

impl DeskConfig {
    pub fn session_limits(&self) -> crate::session::SessionLimits {
        crate::session::SessionLimits {
            idle: self.session_idle_timeout,
            lifetime: self.session_lifetime,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.session_idle_timeout.is_zero() || self.session_lifetime.is_zero() {
            return Err(
                "desk.session_idle_timeout, desk.session_lifetime: must be more than 0".into(),
            );
        }
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
            if !scheme_ok || origin.ends_with('/') || origin.matches('/').count() != 2 {
                return Err(format!(
                    "desk.allowed_origins[{i}]: an origin like https://desk.example.com \
                     (scheme and host, no path)"
                ));
            }
        }
        self.failed_sign_ins
            .validate()
            .map_err(|e| format!("desk.{}", e.replace("failed_auth", "failed_sign_ins")))?;
        if let Some(oidc) = &self.oidc {
            oidc.validate()?;
        } else if !self.local_accounts {
            return Err("desk.local_accounts: false needs desk.oidc (else nobody signs in)".into());
        }
        if let Some(path) = &self.accounts_file
            && path.exists()
        {
            crate::accounts::Accounts::load(path)
                .map_err(|e| format!("desk.accounts_file: {e}"))?;
        }
        Ok(())
    }
}

/// An agent known in advance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The id the agent signs in with.
    pub id: String,
    /// Display name; the id when unset.
    #[serde(default)]
    pub name: Option<String>,
    /// Skills, matched against queues' and targets' skills.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Where the voice leg goes: a SIP URI or an E.164 number.
    #[serde(default)]
    pub contact: String,
    /// How many chats this agent holds at once. Default: `chat_capacity`.
    #[serde(default)]
    pub chat_capacity: Option<u32>,
}

impl ConnectorDefaults for QueueConfig {
    const GRPC_LISTEN: SocketAddr = loopback(50071);
    const HTTP_LISTEN: Option<SocketAddr> = Some(loopback(8090));
    const DATA_DIR: Option<&'static str> = Some(".baton/queue");
}

impl Default for QueueConfig {
    fn default() -> Self {
        let policy = Policy::default();
        let mut support = QueueSpec::new("support");
        support.skills = vec!["support".into()];
        Self {
            name: "queue".into(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::default(),
            telemetry: TelemetryConfig::default(),
            tls: None,
            offer_timeout: policy.offer_timeout,
            initial_handle_time: policy.initial_handle_time,
            handle_time_samples: policy.handle_time_samples,
            chat_capacity: policy.chat_capacity,
            max_context_bytes: 256 * 1024,
            queues: vec![support],
            agents: Vec::new(),
            desk: DeskConfig::default(),
            reattach_grace: Duration::from_secs(60),
            allow_self_sign_in: false,
            voice: VoiceConfig::default(),
            callback: CallbackConfig::default(),
            outcomes: None,
        }
    }
}

impl QueueConfig {
    /// The defaults on ephemeral loopback ports with the given data
    /// directory: what `baton dev` and tests start.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self {
            store: StoreConfig::at(Some(data_dir.into())),
            ..Self::default()
        };
        config.server.grpc_listen = loopback(0);
        config.server.http_listen = Some(loopback(0));
        config.voice.sip.bind = loopback(0);
        config
    }

    pub fn policy(&self) -> Policy {
        Policy {
            offer_timeout: self.offer_timeout,
            initial_handle_time: self.initial_handle_time,
            handle_time_samples: self.handle_time_samples,
            chat_capacity: self.chat_capacity,
        }
    }

    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.check()?;
        self.server.http_listen()?;
        self.store.required_data_dir()?;
        self.metrics.check()?;
        if self.name.is_empty() {
            return Err("name: must not be empty".into());
        }
        if self.queues.is_empty() {
            return Err("queues: at least one queue is needed".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, queue) in self.queues.iter().enumerate() {
            if queue.name.is_empty()
                || !names.insert((queue.tenant.as_deref(), queue.name.as_str()))
            {
                return Err(format!(
                    "queues[{i}].name: empty or repeated (for the same tenant)"
                ));
            }
            if let Some(tenant) = &queue.tenant
                && !baton_auth::principal::is_valid_tenant(tenant)
            {
                return Err(format!("queues[{i}].tenant: not a valid tenant name"));
            }
            if queue.max_wait.is_zero() {
                return Err(format!("queues[{i}].max_wait: must be more than 0"));
            }
        }
        if self.offer_timeout.is_zero() {
            return Err("offer_timeout: must be more than 0".into());
        }
        if !CHAT_CAPACITY.contains(&self.chat_capacity) {
            return Err(format!("chat_capacity: {CHAT_CAPACITY_RANGE}"));
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if !valid_agent_id(&agent.id) {
                return Err(format!(
                    "agents[{i}].id: 1 to 64 letters, digits, '.', '_', '-' or '@'"
                ));
            }
            if agent
                .chat_capacity
                .is_some_and(|c| !CHAT_CAPACITY.contains(&c))
            {
                return Err(format!("agents[{i}].chat_capacity: {CHAT_CAPACITY_RANGE}"));
            }
        }
        self.desk.validate()?;
        if self.voice.enabled {
            self.voice
                .sip_config()
                .validate()
                .map_err(|e| format!("voice.{e}"))?;
        }
        self.callback.validate()?;
        if let Some(outcomes) = &self.outcomes {
            outcomes.validate(self.server.http.request_timeout)?;
        }
        Ok(())
    }
}

/// The chats one agent may hold at once: at least one, and few enough that
/// each customer still gets a human's attention.
const CHAT_CAPACITY: std::ops::RangeInclusive<u32> = 1..=20;
const CHAT_CAPACITY_RANGE: &str = "from 1 to 20 chats at once";

/// Agent ids appear in URLs and logs: keep them plain.
pub fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_misspelt_key_is_named() {
        QueueConfig::default().validate().expect("valid");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.toml");
        std::fs::write(
            &path,
            "[[queues]]\nname = \"billing\"\nmax_wait = \"5m\"\ncallback_threshold = \"1m\"\n\n[[agents]]\nid = \"ann\"\nskills = [\"billing\"]\n",
        )
        .expect("write");
        let config: QueueConfig =
            baton_service_kit::config::load(Some(&path), "BATON_QUEUE_TEST_GOOD").expect("loads");
        assert_eq!(config.queues[0].max_wait, Duration::from_secs(300));
        assert_eq!(
            config.queues[0].callback_threshold,
            Some(Duration::from_secs(60))
        );
        assert_eq!(config.server.drain_timeout, Duration::from_secs(30));
        config.validate().expect("valid");

        std::fs::write(&path, "[[queues]]\nname = \"x\"\nmax_wiat = \"5m\"\n").expect("write");
        let error =
            baton_service_kit::config::load::<QueueConfig>(Some(&path), "BATON_QUEUE_TEST_BAD")
                .expect_err("rejects");
        assert!(error.to_string().contains("max_wiat"), "{error}");
    }

    #[test]
    fn chat_capacity_defaults_to_three_and_is_checked_overall_and_per_agent() {
        let config = QueueConfig::default();
        assert_eq!(config.chat_capacity, 3);
        assert_eq!(config.policy().chat_capacity, 3);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.toml");
        let load = |text: &str, env: &str| -> QueueConfig {
            std::fs::write(&path, text).expect("write");
            baton_service_kit::config::load(Some(&path), env).expect("loads")
        };
        let config = load(
            "chat_capacity = 5\n[[agents]]\nid = \"ann\"\nchat_capacity = 2\n",
            "BATON_QUEUE_TEST_CHAT",
        );
        config.validate().expect("valid");
        assert_eq!(config.policy().chat_capacity, 5);
        assert_eq!(config.agents[0].chat_capacity, Some(2));

        let error = load("chat_capacity = 0\n", "BATON_QUEUE_TEST_CHAT0")
            .validate()
            .expect_err("rejects");
        assert!(error.starts_with("chat_capacity:"), "{error}");
        let error = load(
            "[[agents]]\nid = \"ann\"\nchat_capacity = 21\n",
            "BATON_QUEUE_TEST_CHAT21",
        )
        .validate()
        .expect_err("rejects");
        assert!(error.starts_with("agents[0].chat_capacity:"), "{error}");
    }

    #[test]
    fn voice_is_off_by_default_and_its_sip_keys_are_the_sip_connectors() {
        let config = QueueConfig::default();
        assert!(!config.voice.enabled);
        assert_eq!(config.voice.mode, VoiceMode::Warm);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.toml");
        std::fs::write(
            &path,
            "[voice]\nenabled = true\nmode = \"blind\"\nring_timeout = \"5s\"\n[voice.sip]\nbind = \"127.0.0.1:0\"\nt1 = \"100ms\"\n[[voice.trunks]]\nname = \"carrier\"\nhost = \"sip.example.net\"\n",
        )
        .expect("write");
        let config: QueueConfig =
            baton_service_kit::config::load(Some(&path), "BATON_QUEUE_TEST_VOICE").expect("loads");
        config.validate().expect("valid");
        assert_eq!(config.voice.mode, VoiceMode::Blind);
        let sip = config.voice.sip_config();
        assert_eq!(sip.ring_timeout, Duration::from_secs(5));
        assert_eq!(sip.sip.t1, Duration::from_millis(100));
        assert_eq!(sip.trunks[0].name, "carrier");

        std::fs::write(&path, "[voice]\nenabled = true\n[voice.sip]\nt1 = \"0s\"\n")
            .expect("write");
        let config: QueueConfig =
            baton_service_kit::config::load(Some(&path), "BATON_QUEUE_TEST_VOICE0").expect("loads");
        let error = config.validate().expect_err("rejects");
        assert!(error.starts_with("voice.sip.t1"), "{error}");
    }

    #[test]
    fn an_old_style_file_and_a_new_style_file_give_the_same_config() {
        let from_new = baton_connector_sdk::testing::old_layout_loads_as_new::<QueueConfig>(
            "grpc_listen = \"0.0.0.0:50071\"\nhttp_listen = \"0.0.0.0:8090\"\n\
             health_listen = \"0.0.0.0:50050\"\ndata_dir = \"/var/lib/baton-queue\"\n\
             drain_timeout = \"10s\"\noffer_timeout = \"15s\"\n\n\
             [http]\nidle_timeout = \"90s\"\n",
            "offer_timeout = \"15s\"\n\n[server]\ngrpc_listen = \"0.0.0.0:50071\"\n\
             http_listen = \"0.0.0.0:8090\"\nhealth_listen = \"0.0.0.0:50050\"\n\
             drain_timeout = \"10s\"\n\n[server.http]\nidle_timeout = \"90s\"\n\n\
             [store]\ndata_dir = \"/var/lib/baton-queue\"\n",
            6,
        );
        assert_eq!(from_new.server.http.idle_timeout, Duration::from_secs(90));
        from_new.validate().expect("valid");
    }
}
