//! Assembles the control service from its configuration: checks it, opens
//! the store, builds the registry, dispatcher and API, and binds the
//! listeners ([`listeners`]); [`serve`] runs them and the shutdown sequence.

mod listeners;
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use baton_auth::{AuthLayer, AuthMode, RateLimitLayer};
use tokio_util::sync::CancellationToken;

use crate::api::HandoffApi;
use crate::config::{ControlConfig, TenantScopes};
use crate::connector::ConnectorRegistry;
use crate::dispatch::Dispatcher;
use crate::domain::message::CustomerMessages;
use crate::domain::routing::{PerTenant, Router};
use crate::http::HttpState;
use crate::hub::EventHub;
use crate::policy::PolicyEngine;
use crate::store::HandoffStore;
use crate::token::TokenSigner;

use self::listeners::{ListenerTls, Listeners};

/// A control service whose listeners are bound and whose in-flight
/// handoffs are known, ready to serve.
pub struct BoundControl {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    config: ControlConfig,
    listeners: Listeners,
    api: HandoffApi,
    http_state: HttpState,
    dispatcher: Arc<Dispatcher>,
    registry: ConnectorRegistry,
    store: Arc<dyn HandoffStore>,
    auth: AuthLayer,
    rate_limit: RateLimitLayer,
}

impl std::fmt::Debug for BoundControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundControl")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

/// The parts of the service a configuration yields once it is checked.
pub struct Checked {
    router: PerTenant<Router>,
    messages: PerTenant<CustomerMessages>,
    policy: Arc<PolicyEngine>,
}

/// Checks everything in a configuration that does not need the network or
/// the disk: connectors, routes, messages, policies, timeouts. The error
/// names the key. `baton config check` runs exactly this.
pub fn check(config: &ControlConfig) -> Result<Checked, String> {
    ConnectorRegistry::check_config(&config.connectors, config.connector_tls.as_ref())?;
    let connector_names: Vec<&str> = config.connectors.keys().map(String::as_str).collect();
    let TenantScopes {
        routers: router,
        messages,
    } = config.tenant_scopes()?;
    let policy = Arc::new(PolicyEngine::new(&config.policy)?);
    config.store.check()?;
    config.check_security()?;
    config.dispatch.check(&connector_names)?;
    config.checked_data_policy()?;
    if config.limits.max_watch_streams == 0 {
        return Err("limits.max_watch_streams: must be at least 1".into());
    }
    if config.handoff.default_timeout > config.handoff.max_timeout {
        return Err("handoff.default_timeout: must not exceed handoff.max_timeout".into());
    }
    Ok(Checked {
        router,
        messages,
        policy,
    })
}

/// Checks the configuration, opens the store and binds both listeners.
/// Every configuration error names its key.
pub async fn bind(mut config: ControlConfig) -> anyhow::Result<BoundControl> {
    let Checked {
        router,
        messages,
        policy,
    } = check(&config).map_err(anyhow::Error::msg)?;
    crate::metrics::set_known_names(&config.all_routes());
    let registry = ConnectorRegistry::new(&config.connectors, config.connector_tls.as_ref())
        .map_err(anyhow::Error::msg)?;
    let tls = ListenerTls::load(&config)?;

    let failures =
        baton_auth::FailureLimiter::new(&config.failed_auth).map_err(anyhow::Error::msg)?;
    let auth = auth_layer(&config)?.with_failure_limit(failures.clone());
    let rate_limit = RateLimitLayer::new(&config.rate_limit).map_err(anyhow::Error::msg)?;
    let store = crate::store::open(&config.store).await?;
    let key_file = config
        .store
        .token_key_file
        .clone()
        .unwrap_or_else(|| config.store.data_dir.join("context-token.key"));
    let tokens = TokenSigner::load_or_create(&key_file)
        .with_context(|| format!("store.token_key_file: cannot read {}", key_file.display()))?;

    let listeners = Listeners::bind(&mut config, tls).await?;

    let hub = Arc::new(EventHub::new(config.limits.max_watch_streams));
    // With a shared store, events recorded by other replicas reach this
    // one's watchers too.
    if let Some(notices) = store
        .listen()
        .await
        .context("store: cannot listen for events")?
    {
        hub.follow(store.clone(), notices);
    }
    let dispatcher = Arc::new(
        Dispatcher::new(
            store.clone(),
            hub.clone(),
            registry.clone(),
            tokens.clone(),
            config.public_url(),
            config.handoff.context_token_ttl,
        )
        .with_lease_ttl(config.store.lease_ttl)
        .with_dispatch(config.dispatch.clone())
        .with_data_policy(config.checked_data_policy().map_err(anyhow::Error::msg)?),
    );
    let api = HandoffApi {
        store: store.clone(),
        hub,
        dispatcher: dispatcher.clone(),
        router,
        messages,
        policy,
        limits: config.limits.clone(),
        default_timeout: config.handoff.default_timeout,
        max_timeout: config.handoff.max_timeout,
        shutdown: CancellationToken::new(),
        watch_streams: baton_auth::StreamLimiter::new(config.limits.max_watch_streams_per_tenant),
        chat_rooms: Arc::default(),
    };
    Ok(BoundControl {
        grpc_addr: listeners.grpc_addr,
        http_addr: listeners.http_addr,
        http_state: HttpState {
            store: store.clone(),
            tokens,
            ended_token_grace: config.handoff.ended_token_grace,
            reads: crate::http::ReadLimiter::new(&config.context_reads)
                .map_err(anyhow::Error::msg)?,
            failures,
        },
        store,
        config,
        listeners,
        api,
        dispatcher,
        registry,
        auth,
        rate_limit,
    })
}

/// The auth layer of `config`. With `mode = "required"` and no keys file
/// named, the default keys file is created empty when missing, so that the
/// service starts and refuses every call until a key is added.
fn auth_layer(config: &ControlConfig) -> anyhow::Result<AuthLayer> {
    let mut auth = config.auth.clone();
    if auth.mode == AuthMode::Required {
        auth.api_keys_file = config.api_keys_file();
        if config.auth.api_keys_file.is_none()
            && let Some(path) = &auth.api_keys_file
            && !path.exists()
        {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("store.data_dir: cannot create {}", dir.display()))?;
            }
            baton_auth::api_key::KeysFile::default()
                .write(path)
                .with_context(|| format!("auth.api_keys_file: cannot create {}", path.display()))?;
            tracing::warn!(
                keys_file = %path.display(),
                "authentication is required and no API key exists yet: add one with `baton auth new-key`"
            );
        }
    }
    AuthLayer::from_config(&auth).map_err(anyhow::Error::msg)
}
