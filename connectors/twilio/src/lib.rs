//! The Baton Twilio connector: transfers a live Twilio call by updating it
//! with TwiML — `<Dial><Number>` for phone numbers, `<Dial><Sip>` with the
//! context as `X-Baton-*` URI headers for SIP endpoints, `<Enqueue
//! workflowSid><Task>` with the context as TaskRouter task attributes for
//! queues (the Flex screen pop) — paced by the account's call-update rate
//! limit, and follows the transfer through status callbacks that must carry
//! a valid `X-Twilio-Signature`.

pub mod api;
pub mod callbacks;
pub mod config;
pub mod connector;
pub mod signature;
pub mod twiml;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::{
    BoundConnector, RunnableConnector, Sections, ServeConnector, ServeOptions,
};
use baton_service_kit::tls::HttpListener;
use tokio::net::TcpListener;

pub use config::TwilioConfig;
pub use connector::TwilioConnector;

/// The connector with its gRPC and callback listeners bound.
pub struct Bound {
    /// The ConnectorService address.
    pub grpc_addr: SocketAddr,
    /// The callback endpoint's local address.
    pub callbacks_addr: SocketAddr,
    connector: BoundConnector<TwilioConnector>,
    listener: HttpListener,
    limits: baton_service_kit::http::HttpLimits,
    callbacks: Arc<callbacks::Callbacks>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("grpc_addr", &self.grpc_addr)
            .field("callbacks_addr", &self.callbacks_addr)
            .finish_non_exhaustive()
    }
}

/// Validates `config` and binds both listeners (port 0 picks a free port);
/// `serve` prints one readiness line naming `grpc` and `callbacks`.
pub async fn bind(config: TwilioConfig) -> anyhow::Result<Bound> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let listener = TcpListener::bind(config.callbacks.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.callbacks.listen))?;
    let callbacks_addr = listener.local_addr()?;
    // Twilio signs its callbacks; it presents no client certificate.
    let tls = config.tls.as_ref().map(|tls| tls.without_client_ca());
    let listener = HttpListener::new(listener, tls.as_ref())?;
    let public_url = config
        .callbacks
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{}://{callbacks_addr}", listener.scheme()));
    let callbacks = callbacks::Callbacks::new(
        config.credentials.auth_token.clone(),
        public_url,
        config.hold_twiml.clone(),
        config.wait_twiml.clone(),
    );
    tracing::info!(
        event_callback_url = %callbacks.taskrouter_events_url(),
        "set this as the TaskRouter workspace's Event Callback URL"
    );
    let api = Arc::new(api::CallsApi::new(&config)?);
    let options = ServeOptions::configured(&config.server, config.tls.as_ref(), &config.store)
        .ready_endpoint("callbacks", callbacks_addr);
    let limits = config.callbacks.limits.clone();
    let connector = TwilioConnector::new(Arc::new(config), api, callbacks.clone());
    let connector = baton_connector_sdk::bind(connector, options).await?;
    Ok(Bound {
        grpc_addr: connector.addr,
        callbacks_addr,
        connector,
        listener,
        limits,
        callbacks,
    })
}

impl Bound {
    /// Serves gRPC and the callback endpoint until `shutdown`.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            stop.send_replace(true);
        });
        let wait = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let http = baton_service_kit::http::serve(
            self.listener,
            self.callbacks.router(),
            self.limits,
            wait(stopped.clone()),
        );
        let grpc = self.connector.serve(wait(stopped));
        let (http, grpc) = tokio::join!(http, grpc);
        http?;
        grpc
    }
}

impl ServeConnector for Bound {
    fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        self.connector.endpoints()
    }

    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        Bound::serve(self, shutdown)
    }
}

/// The Twilio connector's own flag.
#[derive(Debug, clap::Args)]
pub struct TwilioFlags {
    /// Callback endpoint listen address (overrides `callbacks.listen`).
    #[arg(long)]
    callbacks_listen: Option<SocketAddr>,
}

impl RunnableConnector for TwilioConfig {
    const BINARY: &'static str = "baton-connector-twilio";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    /// E.g. `BATON_TWILIO_CREDENTIALS__AUTH_TOKEN`.
    const ENV_PREFIX: &'static str = "BATON_TWILIO";
    const ABOUT: &'static str = "A Baton connector for Twilio Programmable Voice and Flex: moves \
        the live call with TwiML (Dial Number, Dial Sip with context headers, Enqueue into a \
        TaskRouter workflow with the context as task attributes) and follows it through signed \
        status callbacks. Secrets are best given as BATON_TWILIO_CREDENTIALS__AUTH_TOKEN and \
        BATON_TWILIO_CREDENTIALS__API_KEY_SECRET.";
    type Flags = TwilioFlags;
    type Bound = Bound;

    fn sections(&mut self) -> Sections<'_, Self> {
        Sections {
            server: &mut self.server,
            store: &mut self.store,
            telemetry: &mut self.telemetry,
            tls: &mut self.tls,
        }
    }

    fn apply_flags(&mut self, flags: TwilioFlags) {
        if let Some(listen) = flags.callbacks_listen {
            self.callbacks.listen = listen;
        }
    }

    fn validate(&self) -> Result<(), String> {
        TwilioConfig::validate(self)
    }

    fn bind(self) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send {
        bind(self)
    }
}
