//! The Baton Twilio connector: transfers a live Twilio call by updating it
//! with TwiML — `<Dial><Number>` for phone numbers, `<Dial><Sip>` with the
//! context as `X-Baton-*` URI headers for SIP endpoints, `<Enqueue
//! workflowSid><Task>` with the context as TaskRouter task attributes for
//! queues (the Flex screen pop) — paced by the account's call-update rate
//! limit, and follows the transfer through status callbacks that must carry
//! a valid `X-Twilio-Signature`. Chat handoffs go to a Twilio Conversation
//! that a Flex agent takes through a TaskRouter chat task ([`chat`]).

pub mod api;
pub mod availability;
pub mod callbacks;
pub mod chat;
pub mod config;
pub mod connector;
pub mod conversations;
pub mod signature;
pub mod twiml;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::{
    BoundConnector, HttpSide, RunnableConnector, ServeOptions, SharedShutdown,
};

pub use config::TwilioConfig;
pub use connector::TwilioConnector;

/// The connector with its gRPC and callback listeners bound.
#[derive(Debug)]
pub struct Bound {
    /// The ConnectorService address.
    pub grpc_addr: SocketAddr,
    /// The callback endpoint's local address.
    pub callbacks_addr: SocketAddr,
    connector: BoundConnector<TwilioConnector>,
    callbacks_side: HttpSide,
    limits: baton_service_kit::http::HttpLimits,
    callbacks: Arc<callbacks::Callbacks>,
}

/// Validates `config` and binds both listeners (port 0 picks a free port);
/// `serve` prints one readiness line naming `grpc` and `callbacks`.
pub async fn bind(config: TwilioConfig) -> anyhow::Result<Bound> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    // Twilio signs its callbacks; it presents no client certificate.
    let callbacks_side = HttpSide::bind(
        "callbacks.listen",
        config.callbacks.listen,
        config.tls.as_ref(),
    )
    .await?;
    let callbacks_addr = callbacks_side.addr;
    let public_url = callbacks_side.url(config.callbacks.public_url.as_deref());
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
    tracing::info!(
        conversations_webhook_url = %callbacks.conversation_events_url(),
        "for chat handoffs, set this as the Conversations post-event webhook URL (onMessageAdded, onConversationStateUpdated)"
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
        callbacks_side,
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
        let shutdown = SharedShutdown::new(shutdown);
        self.callbacks_side
            .serve_beside(
                self.callbacks.router(),
                self.limits,
                self.connector,
                &shutdown,
            )
            .await
    }
}

baton_connector_sdk::serve_connector!(Bound);

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

    baton_connector_sdk::shared_sections!();

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
