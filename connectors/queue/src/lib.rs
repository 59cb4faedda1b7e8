//! `baton-connector-queue`: a small, real contact-center queue with a
//! browser agent desktop that screen-pops the handoff. It is Baton's
//! default target in `baton dev`, and the way to try Baton without a
//! contact-center platform.
//!
//! - [`domain`]: queues, agents, routing, offers, the wait estimate (plain
//!   Rust, unit-tested).
//! - [`store`]: the queue's state in SQLite, so it survives a restart.
//! - [`connector`]: the `baton.connector.v1` side, on the connector SDK.
//! - [`http`]: the agent desktop and supervisor view (embedded HTML, CSS
//!   and JS; live updates through Server-Sent Events).
//! - [`disclosures`]: what the control service disclosed of each handoff
//!   (fields and forms, never values), on the supervisor's view.
//! - [`accounts`], [`session`], [`guard`]: who signs in (argon2id
//!   passwords, roles, tenants), their sessions, and the cookie, CSRF,
//!   Origin and failed-sign-in checks in front of every desktop request;
//!   [`account_watch`] ends a removed account's sessions at once.
//! - [`oidc`]: sign-in through an OpenID Connect issuer (authorization
//!   code with PKCE), making the same sessions as a password.
//! - [`outcomes`]: how the last day's handoffs went (the control service's
//!   `GetOutcomeMetrics`, with the desk's supervisor credential), on the
//!   supervisor's view.
//!
//! Tenants: every contact carries its transfer's tenant; a queue name is
//! per tenant, an agent takes only their tenant's customers and a
//! supervisor sees only their tenants' ([`domain::QueueKey`]).
//!
//! The voice leg: with `[voice] enabled = true`, a voice conversation an
//! agent accepts is delivered to the agent's contact address (SIP URI or
//! number) through the SIP user agent that the SIP connector runs too
//! ([`baton_sip_stack::VoiceLegs`]), and the handoff is connected when
//! that leg is. Otherwise the desktop shows the address and the handoff is
//! connected at accept.
//!
//! Restarts: the queue's contacts live in its store and its transfers in
//! the SDK's journal (`transfers.sqlite3` in `data_dir`); a restored contact
//! is held, never offered, until the control service re-attaches its
//! transfer (see [`domain::Hold`]).
//!
//! Start it in-process:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = baton_connector_queue::QueueConfig::ephemeral("/tmp/baton-queue");
//! let bound = baton_connector_queue::bind(config).await?;
//! println!("desktop at http://{}", bound.http_addr);
//! bound.serve(baton_connector_sdk::shutdown_signal()).await
//! # }
//! ```

pub mod account_watch;
pub mod accounts;
pub mod chat;
pub mod config;
pub mod connector;
pub mod desk;
pub mod disclosures;
pub mod domain;
pub mod guard;
pub mod http;
pub mod oidc;
pub mod outcomes;
pub mod session;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::{BoundConnector, NoFlags, RunnableConnector, ServeOptions};
use baton_service_kit::metrics::MetricsEndpoint;
use baton_service_kit::tls::HttpListener;
use tokio::net::TcpListener;

pub use config::QueueConfig;
pub use connector::QueueConnector;
pub use desk::Desk;

/// The queue with its gRPC and HTTP listeners bound, ready to serve.
pub struct Bound {
    /// The ConnectorService address (what the control service calls).
    pub grpc_addr: SocketAddr,
    /// The agent desktop: `http://{http_addr}/` (`https` with `[tls]`),
    /// supervisor at `/supervisor`.
    pub http_addr: SocketAddr,
    connector: BoundConnector<QueueConnector>,
    http: HttpListener,
    http_limits: baton_service_kit::http::HttpLimits,
    router: axum::Router,
    metrics: MetricsEndpoint,
    desk: Arc<Desk>,
    queue: QueueConnector,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

/// Validates the configuration, opens the store and binds both listeners
/// (port 0 picks a free port).
pub async fn bind(config: QueueConfig) -> anyhow::Result<Bound> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let desk = Desk::open(&config)?;
    let http_listen = config.server.http_listen().map_err(anyhow::Error::msg)?;
    let http = TcpListener::bind(http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("server.http_listen: cannot listen on {http_listen}: {e}"))?;
    let http_addr = http.local_addr()?;
    let metrics = MetricsEndpoint::bind(&config.metrics).await?;
    // The desktop is reached by browsers: the same certificate, never a
    // client certificate asked for.
    let tls = config.tls.as_ref().map(|tls| tls.without_client_ca());
    let http = HttpListener::new(http, tls.as_ref())?;
    let mut connector = QueueConnector::new(&config.name, config.max_context_bytes, desk.clone());
    if config.voice.enabled {
        let legs = baton_sip_stack::VoiceLegs::bind(config.voice.sip_config()).await?;
        tracing::info!(sip = %legs.sip_addr(), "voice legs delivered through SIP");
        connector = connector.with_voice(legs, config.voice.mode, config.callback.clone());
    }
    let queue = connector.clone();
    let mut allowed_origins = config.desk.allowed_origins.clone();
    if let Some(origin) = config.server.public_url.as_deref().and_then(origin_of) {
        allowed_origins.push(origin);
    }
    let guard_options = guard::GuardOptions {
        secure: tls.is_some(),
        allowed_origins,
        failed_sign_ins: config.desk.failed_sign_ins.clone(),
        session_lifetime: config.desk.session_lifetime,
    };
    let sign_in = oidc::routes::SignInRoutes {
        oidc: match &config.desk.oidc {
            Some(oidc) => Some(Arc::new(oidc::Oidc::new(oidc).map_err(anyhow::Error::msg)?)),
            None => None,
        },
        desk: desk.clone(),
        guard: Arc::new(guard::Guard::new(guard_options.clone()).map_err(anyhow::Error::msg)?),
        // Without an accounts file the form still shows, and says why
        // nobody signs in with it.
        local_accounts: config.desk.local_accounts,
        secure: tls.is_some(),
    };
    let outcomes = match &config.outcomes {
        Some(outcomes) => Some(Arc::new(
            outcomes::Outcomes::from_config(outcomes).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let router = http::router(desk.clone(), guard_options, outcomes)
        .map_err(anyhow::Error::msg)?
        .merge(oidc::routes::routes(sign_in));
    let mut options = ServeOptions::configured(&config.server, config.tls.as_ref(), &config.store)
        .ready_endpoint("http", http_addr)
        // A queue that cannot save loses its customers at the next restart.
        .not_serving_while(desk.store_failing());
    if let Some(addr) = metrics.local_addr() {
        options = options.ready_endpoint("metrics", addr);
    }
    let connector = baton_connector_sdk::bind(connector, options).await?;
    tracing::info!(desktop = %format!("{}://{http_addr}/", http.scheme()), "agent desktop");
    Ok(Bound {
        grpc_addr: connector.addr,
        http_addr,
        connector,
        http,
        desk,
        queue,
        http_limits: config.server.http.clone(),
        router,
        metrics,
    })
}

/// `https://desk.example.com/path` → `https://desk.example.com`.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

impl Bound {
    /// Serves gRPC and the desktop until `shutdown`; then gRPC drains
    /// (refusing new transfers, for at most `drain_timeout`) while the
    /// desktop stays up so that agents may take the customers waiting; then
    /// the desktop's event streams and the transfer streams end. Nothing
    /// here removes or fails a waiting contact: it stays in the store, and
    /// the next process holds it until the control service re-attaches.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Set once gRPC has drained: the desktop and the clock stop then.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let wait = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };

        let desk = self.desk.clone();
        let ticker_stopped = stopped.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(desk::TICK);
            let mut stopped = ticker_stopped;
            loop {
                tokio::select! {
                    _ = interval.tick() => desk.tick(),
                    _ = stopped.wait_for(|s| *s) => return,
                }
            }
        });

        let desk = self.desk.clone();
        let http_stopped = stopped;
        let metrics_routes = self.metrics.on_service_listener();
        let metrics = self.metrics.serve(wait(http_stopped.clone()));
        let http = baton_service_kit::http::serve(
            self.http,
            self.router.merge(metrics_routes),
            self.http_limits,
            async move {
                wait(http_stopped).await;
                desk.close();
            },
        );
        let grpc = async {
            let grpc = self.connector.serve(shutdown).await;
            stop.send_replace(true);
            grpc
        };
        let (http, metrics, grpc) = tokio::join!(http, metrics, grpc);
        // No agent's phone keeps ringing for a queue that stopped.
        self.queue.shutdown().await;
        http?;
        metrics?;
        grpc
    }
}

baton_connector_sdk::serve_connector!(Bound);

impl RunnableConnector for QueueConfig {
    const BINARY: &'static str = "baton-connector-queue";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ENV_PREFIX: &'static str = "BATON_QUEUE";
    const ABOUT: &'static str = "A Baton connector that queues handoffs for human agents, who \
        take them in a browser desktop that screen-pops the AI's context.";
    type Flags = NoFlags;
    type Bound = Bound;

    baton_connector_sdk::shared_sections!();

    fn validate(&self) -> Result<(), String> {
        QueueConfig::validate(self)
    }

    fn bind(self) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send {
        bind(self)
    }
}
