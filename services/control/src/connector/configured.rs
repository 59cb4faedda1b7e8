//! A configured connector: its name and endpoint over its port, and the
//! last check (health and capabilities) that passed, reused for a short
//! while so that a dispatch does not pay for it every time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::availability::TargetAvailability;

use super::{
    AvailabilityQuery, CancelOutcome, ConnectorInfo, ConnectorPort, StartRefused, TransferEvents,
    TransferRequest, TransferUpdate, UpdateOutcome, chat,
};

/// Why a connector cannot take a transfer now.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorUnavailable {
    #[error("no connector named {0:?} is configured")]
    Unknown(String),
    #[error("connector {name:?} is not serving: {detail}")]
    NotServing { name: String, detail: String },
}

/// How long a connector's passed check (health and capabilities) stands
/// for later dispatches: checking on every dispatch made two of the three
/// calls each transfer costs a connector.
pub const CHECK_TTL: Duration = Duration::from_secs(1);

/// A check that passed: when, and the capabilities it found.
type Checked = (Instant, ConnectorInfo);

/// A configured connector: its name, where it is, its port, and its last
/// check that passed, reused for [`CHECK_TTL`] and forgotten at once when
/// a call fails.
#[derive(Debug, Clone)]
pub struct Connector {
    pub name: String,
    pub endpoint: String,
    port: Arc<dyn ConnectorPort>,
    last_check: Arc<Mutex<Option<Checked>>>,
}

impl Connector {
    pub fn new(
        name: impl Into<String>,
        endpoint: impl Into<String>,
        port: Arc<dyn ConnectorPort>,
    ) -> Self {
        Self {
            name: name.into(),
            endpoint: endpoint.into(),
            port,
            last_check: Arc::default(),
        }
    }

    /// Checks the connector's health, then fetches its capabilities.
    pub async fn check(&self) -> Result<ConnectorInfo, ConnectorUnavailable> {
        let not_serving = |detail: String| ConnectorUnavailable::NotServing {
            name: self.name.clone(),
            detail,
        };
        self.port.health().await.map_err(not_serving)?;
        self.port.info().await.map_err(not_serving)
    }

    /// The connector's capabilities from a check that passed within
    /// [`CHECK_TTL`], or from a new [`check`](Self::check); and whether
    /// they came from an earlier check.
    pub async fn recent_check(&self) -> Result<(ConnectorInfo, bool), ConnectorUnavailable> {
        if let Some((at, info)) = self.last_check().as_ref()
            && at.elapsed() < CHECK_TTL
        {
            return Ok((info.clone(), true));
        }
        let info = self.check().await?;
        *self.last_check() = Some((Instant::now(), info.clone()));
        Ok((info, false))
    }

    /// Makes the next [`recent_check`](Self::recent_check) check again:
    /// a call to the connector failed.
    pub fn forget_check(&self) {
        self.last_check().take();
    }

    fn last_check(&self) -> std::sync::MutexGuard<'_, Option<Checked>> {
        self.last_check.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn start_transfer(
        &self,
        request: TransferRequest,
    ) -> Result<TransferEvents, StartRefused> {
        self.port.start_transfer(request).await
    }

    pub async fn cancel_transfer(
        &self,
        tenant: &str,
        handoff_id: &str,
        attempt: u32,
    ) -> Result<CancelOutcome, String> {
        self.port.cancel_transfer(tenant, handoff_id, attempt).await
    }

    /// Gives a running transfer its newer context (see
    /// [`ConnectorPort::update_transfer`]).
    pub async fn update_transfer(&self, update: TransferUpdate) -> Result<UpdateOutcome, String> {
        self.port.update_transfer(update).await
    }

    /// Who is there at a target now (see [`ConnectorPort::availability`]).
    pub async fn availability(
        &self,
        query: AvailabilityQuery,
    ) -> Result<TargetAvailability, String> {
        self.port.availability(query).await
    }

    /// Opens the chat relay of a transfer (see [`ConnectorPort::converse`]).
    pub async fn converse(
        &self,
        open: chat::RelayOpen,
        outbound: tokio::sync::mpsc::Receiver<chat::ToConnector>,
    ) -> Result<chat::FromConnectorStream, chat::RelayRefused> {
        self.port.converse(open, outbound).await
    }
}
