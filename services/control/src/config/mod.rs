//! The control service's configuration. Every key has a documented default,
//! so `baton-control` runs with no file at all; `deny_unknown_fields` makes
//! a misspelt key an error that names it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use baton_service_kit::telemetry::TelemetryConfig;
use baton_service_kit::tls::{ClientTlsFiles, TlsConfig};
use serde::Deserialize;

use crate::domain::message::MessageTemplates;
use crate::domain::routing::{DefaultConnectors, RouteConfig};
use crate::domain::validate::Limits;

mod store;
mod tenants;
pub use store::{StoreBackend, StoreConfig};
pub use tenants::{TenantConfig, TenantMessagesConfig, TenantScopes};

/// A fully commented reference configuration (`baton config example`).
pub const EXAMPLE: &str = include_str!("../../config.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    pub server: ServerConfig,
    /// Who may call the gRPC API. Unlike the library default, the control
    /// service requires a credential unless told otherwise.
    pub auth: baton_auth::AuthConfig,
    /// Per-tenant call rate on the gRPC API.
    pub rate_limit: baton_auth::RateLimitConfig,
    /// Failed authentications per source address, on both listeners.
    pub failed_auth: baton_auth::FailedAuthConfig,
    /// Reads of one handoff's context with its token.
    pub context_reads: ContextReadsConfig,
    /// Where Prometheus scrapes `/metrics`.
    pub metrics: MetricsConfig,
    /// How long transcripts and context of ended handoffs are kept.
    pub retention: RetentionConfig,
    /// Logs, traces and metrics.
    pub telemetry: TelemetryConfig,
    pub store: StoreConfig,
    pub limits: Limits,
    pub handoff: HandoffConfig,
    /// Per-connector timeouts, retries and circuit breakers.
    pub dispatch: crate::circuit::DispatchConfig,
    /// Connector services by name.
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// The connector for each target kind when no route names one.
    pub default_connectors: DefaultConnectors,
    /// Named routes, matched in order.
    pub routes: Vec<RouteConfig>,
    /// Named business hours, for routes and targets (`hours = "…"`) of
    /// every tenant.
    pub hours: Vec<crate::domain::hours::HoursConfig>,
    pub messages: MessagesConfig,
    /// What each tenant configures apart from the shared routes, default
    /// connectors and messages, by tenant id.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// What of a handoff's context goes to which connector, in which form.
    pub data_policy: crate::disclosure::DataPolicyConfig,
    /// The escalation policy of `EvaluateEscalation`.
    pub policy: crate::policy::PolicySettings,
    /// TLS of both listeners (`cert_file`, `key_file`). `client_ca_file`
    /// makes the gRPC listener require client certificates (mTLS); the
    /// HTTP listener, reached by browsers, never asks for one. Plain text
    /// when absent.
    pub tls: Option<TlsConfig>,
    /// Client TLS towards every `https://` connector without a `tls` of
    /// its own: the CA that signs the connectors' certificates and, for
    /// mTLS, this service's client certificate and key.
    pub connector_tls: Option<ClientTlsFiles>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            auth: baton_auth::AuthConfig {
                mode: baton_auth::AuthMode::Required,
                ..baton_auth::AuthConfig::default()
            },
            rate_limit: baton_auth::RateLimitConfig::default(),
            failed_auth: baton_auth::FailedAuthConfig::default(),
            context_reads: ContextReadsConfig::default(),
            metrics: MetricsConfig::default(),
            retention: RetentionConfig::default(),
            telemetry: TelemetryConfig::default(),
            store: StoreConfig::default(),
            limits: Limits::default(),
            handoff: HandoffConfig::default(),
            connectors: BTreeMap::new(),
            default_connectors: DefaultConnectors::default(),
            routes: Vec::new(),
            hours: Vec::new(),
            messages: MessagesConfig::default(),
            tenants: BTreeMap::new(),
            data_policy: Default::default(),
            policy: crate::policy::PolicySettings::default(),
            tls: None,
            connector_tls: None,
            dispatch: crate::circuit::DispatchConfig::default(),
        }
    }
}

/// Limits on reading one handoff's context with its token: whoever holds a
/// token (a screen-pop URL, a SIP User-to-User header) may read, but not
/// without bound, and repeated reads make one audit record, not one each.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextReadsConfig {
    /// Sustained reads per minute of one handoff's context (JSON and
    /// screen pop together); beyond the burst, `429` with `Retry-After`.
    pub per_minute: f64,
    /// Reads of one handoff allowed at once after a quiet spell.
    pub burst: u32,
    /// Most handoffs whose read rate is tracked at once (bounded memory).
    pub max_tracked: usize,
    /// Reads of the same page of the same handoff within this long of the
    /// first are counted on that first audit record instead of adding one.
    #[serde(with = "humantime_serde")]
    pub audit_window: Duration,
}

impl Default for ContextReadsConfig {
    fn default() -> Self {
        Self {
            per_minute: 10.0,
            burst: 20,
            max_tracked: 10_000,
            audit_window: Duration::from_secs(10 * 60),
        }
    }
}

/// The Prometheus endpoint, the same for every service with an HTTP
/// listener. Metrics mix every tenant's handoffs, so they are not served to
/// whoever reaches the context pages.
pub use baton_service_kit::metrics::MetricsConfig;

/// Retention of what customers said.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How long after a handoff ended its transcript, context and
    /// conversation are kept; then they are deleted (the handoff record,
    /// its events and the audit log stay).
    #[serde(with = "humantime_serde")]
    pub context_ttl: Duration,
    /// How often the purge runs.
    #[serde(with = "humantime_serde")]
    pub purge_interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            context_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            purge_interval: Duration::from_secs(60 * 60),
        }
    }
}

impl ControlConfig {
    /// The API keys file: `auth.api_keys_file`, else `api-keys.toml` in
    /// `store.data_dir` when no JWT verifier is configured either (so that
    /// `mode = "required"` with nothing else set starts, refusing every
    /// call until `baton auth new-key` adds a key).
    pub fn api_keys_file(&self) -> Option<PathBuf> {
        match (&self.auth.api_keys_file, &self.auth.jwt) {
            (Some(path), _) => Some(path.clone()),
            (None, None) => Some(self.store.data_dir.join("api-keys.toml")),
            (None, Some(_)) => None,
        }
    }

    /// Checks the auth, rate limit and retention keys without touching the
    /// disk; the error names the key.
    pub fn check_security(&self) -> Result<(), String> {
        if !baton_auth::principal::is_valid_tenant(&self.auth.default_tenant) {
            return Err(
                "auth.default_tenant: must be 1 to 128 bytes without control characters".into(),
            );
        }
        self.rate_limit.validate().map_err(|e| e.to_string())?;
        self.failed_auth.validate()?;
        let reads = &self.context_reads;
        if !(reads.per_minute.is_finite() && reads.per_minute > 0.0) {
            return Err("context_reads.per_minute: must be a positive number".into());
        }
        if reads.burst == 0 {
            return Err("context_reads.burst: must be at least 1".into());
        }
        if reads.max_tracked == 0 {
            return Err("context_reads.max_tracked: must be at least 1".into());
        }
        self.server.http.check("server.http")?;
        self.server.grpc.check("server.grpc")?;
        self.metrics.http.check("metrics.http")?;
        if self.retention.context_ttl.is_zero() {
            return Err("retention.context_ttl: must be more than 0s".into());
        }
        if self.retention.purge_interval < Duration::from_secs(1) {
            return Err("retention.purge_interval: must be at least 1s".into());
        }
        if self.limits.max_watch_streams_per_tenant == 0 {
            return Err("limits.max_watch_streams_per_tenant: must be at least 1".into());
        }
        let least_response = self
            .limits
            .max_request_bytes
            .saturating_add(baton_request_validation::RESPONSE_HEADROOM_BYTES);
        if self.limits.max_response_bytes < least_response {
            // Else a handoff the service accepted could not be returned.
            return Err(format!(
                "limits.max_response_bytes: must be at least limits.max_request_bytes + {} ({least_response})",
                baton_request_validation::RESPONSE_HEADROOM_BYTES
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC listen address (HandoffService, health, reflection).
    pub grpc_listen: SocketAddr,
    /// HTTP listen address (context JSON and screen-pop pages).
    pub http_listen: SocketAddr,
    /// The base URL under which humans and platforms reach the HTTP
    /// listener; `http://<http_listen>` when unset.
    pub public_url: Option<String>,
    /// How long in-flight calls may take to finish on shutdown.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// A plain-text listener serving only `grpc.health.v1`, for probes
    /// that cannot speak TLS (Kubernetes' gRPC probes). Off when unset.
    pub health_listen: Option<SocketAddr>,
    /// Timeouts and connection limit of the HTTP listener.
    pub http: baton_service_kit::http::HttpLimits,
    /// Connection limit and keepalive of the gRPC listener.
    pub grpc: baton_service_kit::grpc::GrpcLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            drain_timeout: Duration::from_secs(10),
            health_listen: None,
            http: baton_service_kit::http::HttpLimits::default(),
            grpc: baton_service_kit::grpc::GrpcLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffConfig {
    /// How long routing may take when the request sets no timeout.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// The longest timeout a request may ask for.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// How long after its deadline a handoff's context token stays valid
    /// (the human reads the screen pop during the call).
    #[serde(with = "humantime_serde")]
    pub context_token_ttl: Duration,
    /// How long after a handoff completed or failed its context tokens
    /// still open the context (wrap-up); a cancelled handoff's stop at once.
    #[serde(with = "humantime_serde")]
    pub ended_token_grace: Duration,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(15 * 60),
            context_token_ttl: Duration::from_secs(24 * 60 * 60),
            ended_token_grace: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// The connector's gRPC endpoint, e.g. `http://127.0.0.1:50061`.
    pub endpoint: String,
    /// Timeout of unary calls (info, health, cancel) to the connector.
    #[serde(with = "humantime_serde", default = "default_call_timeout")]
    pub call_timeout: Duration,
    /// Client TLS towards this connector (its endpoint must then be
    /// `https://`); `connector_tls` when unset.
    #[serde(default)]
    pub tls: Option<ClientTlsFiles>,
}

impl ConnectorConfig {
    /// A plain-text or TLS connector at `endpoint`, with the default call
    /// timeout and the global `connector_tls`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            call_timeout: default_call_timeout(),
            tls: None,
        }
    }
}

fn default_call_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesConfig {
    /// The language used when the conversation's has no message.
    pub default_language: String,
    /// Customer messages by BCP 47 tag; add to or replace the built-in
    /// en, es, fr, de and pt messages.
    pub translations: BTreeMap<String, String>,
    /// What the AI says about the wait and the hours, by BCP 47 tag
    /// (`[messages.templates.en]`: `wait`, `wait_one_minute`, `nobody`,
    /// `opens_again`, `closed`); each phrase left out is the built-in one.
    pub templates: BTreeMap<String, MessageTemplates>,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        Self {
            default_language: "en".into(),
            translations: BTreeMap::new(),
            templates: BTreeMap::new(),
        }
    }
}

impl ControlConfig {
    pub fn public_url(&self) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.http_listen))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
mod tests;
