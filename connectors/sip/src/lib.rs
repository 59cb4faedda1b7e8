//! The Baton SIP connector: performs transfers in SIP so that the human's
//! phone or CTI gets the handoff context as the call arrives.
//!
//! - **Warm / attended**: INVITE the human (User-to-User with the handoff
//!   token, Call-Info with the screen-pop URL, `X-Baton-*` headers), report
//!   ringing and answered, then REFER the caller's gateway with `Replaces`
//!   (RFC 5589) and follow the NOTIFY sipfrag to connected.
//! - **Blind**: an out-of-dialog REFER (RFC 3515) with `Target-Dialog`
//!   (RFC 4538) and `Referred-By` to the gateway holding the caller's leg.
//! - **Phone numbers** go through trunks chosen by prefix, with digest
//!   authentication (MD5, SHA-256).
//!
//! Messages are parsed and built with `rsip`; transactions, timers and
//! dialogs are in [`stack`] and [`transfer`].
//!
//! [`VoiceLegs`] runs the same transfers in-process, for a connector that
//! delivers a call itself (the queue's voice leg to the accepting agent).

pub mod config;
pub mod digest;
pub mod message;
pub mod stack;
pub mod transfer;
pub mod voice;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::{BoundConnector, ServeOptions};

pub use config::SipConfig;
pub use transfer::SipConnector;
pub use voice::VoiceLegs;

/// The connector with its gRPC listener and SIP socket bound.
#[derive(Debug)]
pub struct Bound {
    /// The gRPC address of the connector service.
    pub grpc_addr: SocketAddr,
    /// The SIP (UDP) address.
    pub sip_addr: SocketAddr,
    connector: BoundConnector<SipConnector>,
    stack: Arc<stack::SipStack>,
    releaser: transfer::LegReleaser,
}

/// Validates `config`, binds the SIP socket and the gRPC listener (port 0
/// picks free ports). `serve` then prints one readiness line with both
/// addresses: `{"ready":{"grpc":…,"sip":…}}`.
pub async fn bind(config: SipConfig) -> anyhow::Result<Bound> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let stack = stack::SipStack::bind(
        config.sip.bind,
        config.sip.transport,
        config.sip.public_address.clone(),
        config.sip.user.clone(),
        config.sip.t1,
        config.sip.outbound_proxy.clone(),
    )
    .await?;
    let sip_addr = stack.local_addr();
    let options = ServeOptions::new(config.listen)
        .ready_endpoint("sip", sip_addr)
        .tls(config.tls.clone())
        .health_listen(config.health_listen);
    let connector = SipConnector::new(Arc::new(config), stack.clone());
    let releaser = connector.releaser();
    let connector = baton_connector_sdk::bind(connector, options).await?;
    Ok(Bound {
        grpc_addr: connector.addr,
        sip_addr,
        connector,
        stack,
        releaser,
    })
}

impl Bound {
    /// Serves SIP and gRPC until `shutdown`, then hangs up the legs still
    /// held (CANCEL or BYE), so that no phone keeps ringing for nobody.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let receiver = tokio::spawn(self.stack.clone().run());
        let result = self.connector.serve(shutdown).await;
        // The receiver still runs here, so the CANCEL/BYE responses are heard.
        self.releaser.release_all(self.stack.t1() * 4).await;
        receiver.abort();
        result
    }
}
