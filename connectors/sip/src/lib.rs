//! The Baton SIP connector: performs transfers in SIP so that the human's
//! phone or CTI gets the handoff context as the call arrives.
//!
//! - **Warm**: INVITE the human (User-to-User with the handoff
//!   token, Call-Info with the screen-pop URL, `X-Baton-*` headers), report
//!   ringing and answered, then REFER the caller's gateway with `Replaces`
//!   (RFC 5589) and follow the NOTIFY sipfrag to connected.
//! - **Attended**: as warm, with a consult leg between the answer and the
//!   REFER: the INVITE offers audio (PCMU, telephone-event), the human
//!   hears a brief of the handoff spoken by a local TTS (`[consult]`,
//!   `espeak-ng` by default) while the customer holds on the caller's
//!   gateway, and accepts with a key (RFC 4733 or SIP INFO; CONSULTING,
//!   CONSULT_ACCEPTED, then the REFER) or declines with another, by
//!   hanging up or by not deciding in time (CONSULT_DECLINED, BYE, FAILED
//!   REJECTED: the route's next target).
//! - **Blind**: an out-of-dialog REFER (RFC 3515) with `Target-Dialog`
//!   (RFC 4538) and `Referred-By` to the gateway holding the caller's leg.
//! - **Phone numbers** go through trunks chosen by prefix, with digest
//!   authentication (MD5, SHA-256).
//!
//! - **Restarts**: with `data_dir`, what each transfer holds on the wire
//!   is noted in the SDK's journal before it is sent
//!   ([`baton_sip_stack::leg`]); a new process ends it, never INVITEs twice
//!   ([`baton_sip_stack::restart`]). SIGTERM drains and hangs nothing up.
//!
//! The SIP user agent (transports, transactions, dialogs, the transfers
//! themselves) is the library `baton-sip-stack`, which the queue
//! connector's voice leg uses too; this crate is the connector around it:
//! its configuration ([`config`]), what it advertises ([`connector`]) and
//! its process ([`bind`], `main`).

pub mod config;
pub mod connector;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::{BoundConnector, RunnableConnector, ServeOptions};
use baton_sip_stack::Transfers;
use baton_sip_stack::stack::SipStack;

pub use config::SipConfig;
pub use connector::SipConnector;

/// The connector with its gRPC listener and SIP socket bound.
#[derive(Debug)]
pub struct Bound {
    /// The gRPC address of the connector service.
    pub grpc_addr: SocketAddr,
    /// The SIP (UDP) address.
    pub sip_addr: SocketAddr,
    /// The SIP over TLS listener's address (`sip.tls.bind`), if any.
    pub sips_addr: Option<SocketAddr>,
    connector: BoundConnector<SipConnector>,
    stack: Arc<SipStack>,
}

/// Validates `config`, binds the SIP socket and the gRPC listener (port 0
/// picks free ports) and opens the transfer journal (with
/// `store.data_dir`). `serve` then prints one readiness line with both
/// addresses: `{"ready":{"grpc":…,"sip":…}}`.
pub async fn bind(config: SipConfig) -> anyhow::Result<Bound> {
    config.server.check().map_err(anyhow::Error::msg)?;
    if let Some(hand_back) = &config.hand_back {
        hand_back.validate().map_err(anyhow::Error::msg)?;
    }
    config.consult.validate().map_err(anyhow::Error::msg)?;
    let structured_context_bytes = config.consult.structured_context_bytes;
    let transfers = Transfers::bind(config.user_agent())
        .await?
        .with_hand_back(config.hand_back.clone())
        .with_consult(config.consult.clone());
    let stack = transfers.stack().clone();
    let sip_addr = stack.local_addr();
    let sips_addr = stack.tls().and_then(|tls| tls.local_addr());
    let mut options = ServeOptions::configured(&config.server, config.tls.as_ref(), &config.store)
        .ready_endpoint("sip", sip_addr);
    if let Some(sips_addr) = sips_addr {
        options = options.ready_endpoint("sips", sips_addr);
    }
    let connector = SipConnector::new(transfers).with_structured_context(structured_context_bytes);
    let connector = baton_connector_sdk::bind(connector, options).await?;
    Ok(Bound {
        grpc_addr: connector.addr,
        sip_addr,
        sips_addr,
        connector,
        stack,
    })
}

impl Bound {
    /// Serves SIP and gRPC until `shutdown`, then drains: new transfers
    /// are refused, running ones go on (SIP is still received) until they
    /// end or `drain_timeout` passes. Nothing is hung up: the legs still
    /// held are left ringing or answered for the next process, which takes
    /// them over from the journal when the control service re-attaches
    /// (without `data_dir`, nobody does, and the human's phone rings until
    /// it gives up).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let receiver = tokio::spawn(self.stack.clone().run());
        let result = self.connector.serve(shutdown).await;
        receiver.abort();
        result
    }
}

baton_connector_sdk::serve_connector!(Bound);

/// The SIP connector's own flag.
#[derive(Debug, clap::Args)]
pub struct SipFlags {
    /// SIP (UDP and TCP) bind address (overrides `sip.bind`).
    #[arg(long)]
    sip_bind: Option<SocketAddr>,
}

impl RunnableConnector for SipConfig {
    const BINARY: &'static str = "baton-connector-sip";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ENV_PREFIX: &'static str = "BATON_SIP";
    const ABOUT: &'static str = "A Baton connector that transfers calls in SIP (warm with \
        REFER/Replaces, attended with a spoken brief on a consult leg and the human's accept by \
        DTMF, blind with REFER, phone numbers through trunks), carrying the handoff context in \
        User-to-User, Call-Info and X-Baton-* headers.";
    type Flags = SipFlags;
    type Bound = Bound;

    baton_connector_sdk::shared_sections!();

    fn apply_flags(&mut self, flags: SipFlags) {
        if let Some(bind) = flags.sip_bind {
            self.sip.bind = bind;
        }
    }

    fn validate(&self) -> Result<(), String> {
        SipConfig::validate(self)
    }

    fn bind(self) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send {
        bind(self)
    }
}
