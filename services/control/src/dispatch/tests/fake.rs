//! A scripted, in-memory [`ConnectorPort`]: each StartTransfer takes the
//! next call of its script, and every start and cancel is written to a
//! journal shared by all the fakes of a test, so that a test can say in
//! which order things reached which connector.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::connector::{
    CancelOutcome, Connector, ConnectorInfo, ConnectorPort, Reach, StartRefused, StreamError,
    TransferEvent, TransferEventKind, TransferEvents, TransferRequest, TransferUpdate,
    UpdateOutcome,
};
use crate::domain::{FailureReason, TargetKind, TransferMode};

/// What reached the fakes, in order: `"<connector> start <attempt>"`,
/// `"<connector> cancel <attempt>"` and `"<connector> update <attempt>
/// v<context version>"`.
pub type Journal = Arc<Mutex<Vec<String>>>;

/// How a scripted stream ends after its events.
#[derive(Debug, Clone, Copy)]
pub enum End {
    /// The connector ends the stream.
    Close,
    /// The stream breaks (the connector went away).
    Break,
    /// Bytes that are not the contract's messages.
    Malformed,
    /// The stream stays open, silent, until dropped.
    Hold,
}

/// What one StartTransfer call does.
#[derive(Debug, Clone)]
pub enum Call {
    Refuse(StartRefused),
    Stream(Vec<TransferEvent>, End),
}

impl Call {
    /// Accepts the call and sends events of `run`, numbered from 1.
    pub fn events(run: &str, kinds: &[TransferEventKind], end: End) -> Self {
        let events = (1..)
            .zip(kinds)
            .map(|(sequence, kind)| TransferEvent::new(run, sequence, *kind))
            .collect();
        Self::Stream(events, end)
    }

    /// The connection is refused: the connector is down.
    pub fn down() -> Self {
        Self::Refuse(StartRefused::Unavailable {
            detail: "connection refused".into(),
            reach: Reach::Refused,
        })
    }
}

/// A failed transfer event.
pub fn failed(run: &str, sequence: u64, reason: FailureReason) -> TransferEvent {
    TransferEvent {
        failure_reason: reason,
        ..TransferEvent::new(run, sequence, TransferEventKind::Failed)
    }
}

#[derive(Debug)]
pub struct ScriptedConnector {
    name: String,
    info: ConnectorInfo,
    script: Mutex<VecDeque<Call>>,
    /// Health answers NOT_SERVING while set.
    down: AtomicBool,
    journal: Journal,
    /// When set, a transfer's stream yields nothing until it is notified:
    /// the connector has the request but has not registered the transfer.
    gate: Option<Arc<Notify>>,
    /// Whether a gated transfer passed its gate.
    registered: Arc<AtomicBool>,
}

impl ScriptedConnector {
    /// A connector serving `kinds` in every mode; once its script is used
    /// up, its calls are refused as if it were down.
    pub fn new(
        name: &str,
        kinds: &[TargetKind],
        script: impl IntoIterator<Item = Call>,
        journal: &Journal,
    ) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            info: ConnectorInfo {
                version: "test".into(),
                target_kinds: kinds.to_vec(),
                transfer_modes: vec![
                    TransferMode::Warm,
                    TransferMode::Blind,
                    TransferMode::Attended,
                ],
                context_capabilities: vec![],
                context_updates: false,
                availability: false,
                callbacks: false,
            },
            script: Mutex::new(script.into_iter().collect()),
            down: AtomicBool::new(false),
            journal: journal.clone(),
            gate: None,
            registered: Arc::default(),
        })
    }

    /// A connector like [`new`](Self::new)'s that takes context updates and
    /// whose streams start only once `gate` is notified.
    pub fn gated_taking_updates(
        name: &str,
        kinds: &[TargetKind],
        script: impl IntoIterator<Item = Call>,
        journal: &Journal,
        gate: Arc<Notify>,
    ) -> Arc<Self> {
        let mut connector = Arc::into_inner(Self::new(name, kinds, script, journal))
            .expect("a new connector has one owner");
        connector.info.context_updates = true;
        connector.gate = Some(gate);
        Arc::new(connector)
    }

    /// The connector as the registry holds it.
    pub fn connector(self: &Arc<Self>) -> Connector {
        let port: Arc<dyn ConnectorPort> = self.clone();
        Connector::new(&self.name, format!("memory://{}", self.name), port)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Adds calls to the end of the script.
    pub fn then(&self, calls: impl IntoIterator<Item = Call>) {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(calls);
    }

    fn note(&self, what: &str, attempt: u32) {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{} {what} {attempt}", self.name));
    }
}

#[async_trait]
impl ConnectorPort for ScriptedConnector {
    async fn health(&self) -> Result<(), String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("health is NotServing".into());
        }
        Ok(())
    }

    async fn info(&self) -> Result<ConnectorInfo, String> {
        Ok(self.info.clone())
    }

    async fn start_transfer(
        &self,
        request: TransferRequest,
    ) -> Result<TransferEvents, StartRefused> {
        self.note("start", request.attempt);
        let call = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or_else(Call::down);
        let (events, end) = match call {
            Call::Refuse(refused) => return Err(refused),
            Call::Stream(events, end) => (events, end),
        };
        let events: TransferEvents = match self.gate.clone() {
            None => Box::pin(tokio_stream::iter(events.into_iter().map(Ok))),
            Some(gate) => {
                let (sender, receiver) = tokio::sync::mpsc::channel(events.len().max(1));
                let registered = self.registered.clone();
                tokio::spawn(async move {
                    gate.notified().await;
                    registered.store(true, Ordering::SeqCst);
                    for event in events {
                        let _ = sender.send(Ok(event)).await;
                    }
                });
                Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
            }
        };
        let ending: TransferEvents = match end {
            End::Close => Box::pin(tokio_stream::empty()),
            End::Break => Box::pin(tokio_stream::once(Err(StreamError::Broken(
                "connection reset".into(),
            )))),
            End::Malformed => Box::pin(tokio_stream::once(Err(StreamError::Malformed(
                "invalid wire type".into(),
            )))),
            End::Hold => Box::pin(tokio_stream::pending()),
        };
        Ok(Box::pin(tokio_stream::StreamExt::chain(events, ending)))
    }

    async fn cancel_transfer(
        &self,
        _tenant: &str,
        _handoff_id: &str,
        attempt: u32,
    ) -> Result<CancelOutcome, String> {
        self.note("cancel", attempt);
        Ok(CancelOutcome::Cancelled)
    }

    /// As a real connector answers: a transfer it has not registered yet
    /// is unknown to it.
    async fn update_transfer(&self, update: TransferUpdate) -> Result<UpdateOutcome, String> {
        if !self.registered.load(Ordering::SeqCst) {
            return Ok(UpdateOutcome::Unknown);
        }
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!(
                "{} update {} v{}",
                self.name, update.attempt, update.context_version
            ));
        Ok(UpdateOutcome::Applied)
    }
}
