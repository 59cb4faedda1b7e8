//! The event log of one transfer: appended by the connector through
//! [`TransferEvents`], read (and replayed) by every StartTransfer stream
//! that follows the transfer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::{StartTransferResponse, TransferEventKind};
use baton_proto::types::v1::FailureReason;
use tokio::sync::watch;

use crate::journal::{Journal, Key};

/// The most events one transfer's log holds, its terminal event included.
pub const MAX_EVENTS_PER_TRANSFER: usize = 1024;

/// The shared log; `length` wakes followers when it grows.
#[derive(Debug)]
pub(crate) struct EventLog {
    events: Mutex<Vec<StartTransferResponse>>,
    length: watch::Sender<usize>,
    /// Stamped on every event: a new value per run of a transfer, so that a
    /// control service can tell a replay from a restarted transfer.
    run_id: String,
    /// Where each event is made durable before followers see it, with the
    /// transfer's key; `None` without a journal.
    journal: Option<(Journal, Key)>,
    /// Serializes appends, so that the journal receives them in sequence.
    appending: tokio::sync::Mutex<()>,
}

impl EventLog {
    /// The log of a new run.
    pub(crate) fn new(journal: Option<(Journal, Key)>) -> Arc<Self> {
        Self::restored(uuid::Uuid::now_v7().to_string(), Vec::new(), journal)
    }

    /// The log of a journalled run, with its events so far.
    pub(crate) fn restored(
        run_id: String,
        events: Vec<StartTransferResponse>,
        journal: Option<(Journal, Key)>,
    ) -> Arc<Self> {
        Arc::new(Self {
            length: watch::channel(events.len()).0,
            events: Mutex::new(events),
            run_id,
            journal,
            appending: tokio::sync::Mutex::new(()),
        })
    }

    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StartTransferResponse>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event unless the log already ended; returns whether it
    /// did. With a journal, the event is journalled before any follower
    /// sees it, so that a restarted connector never knows less than the
    /// control service was told.
    pub(crate) async fn push(&self, mut event: StartTransferResponse) -> bool {
        let _appending = self.appending.lock().await;
        {
            let events = self.lock();
            if events.last().is_some_and(|e| is_terminal(e.kind)) {
                return false;
            }
            // Bounded: a connector that reports progress forever (queue
            // positions, say) keeps its first events and its outcome.
            if events.len() >= MAX_EVENTS_PER_TRANSFER - 1 && !is_terminal(event.kind) {
                tracing::warn!("transfer event dropped: the transfer's log is full");
                return false;
            }
            event.sequence = events.len() as u64 + 1;
        }
        event.run_id.clone_from(&self.run_id);
        event.time = Some(prost_types::Timestamp::from(SystemTime::now()));
        if let Some((journal, key)) = &self.journal
            && let Err(e) = journal.event(key, &event, is_terminal(event.kind)).await
        {
            // The transfer goes on (the customer is mid-transfer); only a
            // restart before its end would lose this event.
            tracing::error!(error = format!("{e:#}"), "transfer event not journalled");
        }
        let mut events = self.lock();
        events.push(event);
        let length = events.len();
        drop(events);
        self.length.send_replace(length);
        true
    }

    /// Journals the connector's note for a restart; nothing to do without
    /// a journal.
    pub(crate) async fn remember(&self, note: &str) {
        if let Some((journal, key)) = &self.journal
            && let Err(e) = journal.remember(key, note).await
        {
            tracing::error!(error = format!("{e:#}"), "transfer note not journalled");
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.lock().last().is_some_and(|e| is_terminal(e.kind))
    }

    /// The kind of the terminal event, once the transfer has ended.
    pub(crate) fn outcome(&self) -> Option<TransferEventKind> {
        self.lock()
            .last()
            .filter(|e| is_terminal(e.kind))
            .map(StartTransferResponse::kind)
    }

    pub(crate) fn was_connected(&self) -> bool {
        self.lock()
            .iter()
            .any(|e| e.kind == TransferEventKind::Connected as i32)
    }

    /// Events from index `from`, waiting until there is at least one.
    pub(crate) async fn read_from(&self, from: usize) -> Vec<StartTransferResponse> {
        let mut length = self.length.subscribe();
        loop {
            {
                let events = self.lock();
                if events.len() > from {
                    return events[from..].to_vec();
                }
            }
            if length.changed().await.is_err() {
                return Vec::new();
            }
        }
    }
}

pub(crate) fn is_terminal(kind: i32) -> bool {
    kind == TransferEventKind::Completed as i32
        || kind == TransferEventKind::Failed as i32
        || kind == TransferEventKind::Cancelled as i32
        || kind == TransferEventKind::HandedBack as i32
}

/// How a connector reports a transfer's progress. Events after the terminal
/// one are ignored, so a transfer ends exactly once.
#[derive(Debug, Clone)]
pub struct TransferEvents {
    log: Arc<EventLog>,
}

impl TransferEvents {
    pub(crate) fn new(log: Arc<EventLog>) -> Self {
        Self { log }
    }

    /// Events that no StartTransfer stream follows, read back through the
    /// returned receiver instead: for running another connector's transfer
    /// in-process (the queue delivers its voice leg through the SIP
    /// connector's library this way). Sequences and the single terminal
    /// event work as on the wire.
    pub fn channel() -> (Self, TransferEventReceiver) {
        let log = EventLog::new(None);
        (
            Self { log: log.clone() },
            TransferEventReceiver { log, read: 0 },
        )
    }

    fn event(kind: TransferEventKind, detail: &str) -> StartTransferResponse {
        StartTransferResponse {
            kind: kind as i32,
            detail: detail.to_owned(),
            ..Default::default()
        }
    }

    async fn push(&self, event: StartTransferResponse) {
        // A log line, and so an event on the transfer's span: one per step.
        tracing::info!(
            event = TransferEventKind::try_from(event.kind)
                .unwrap_or_default()
                .as_str_name(),
            "transfer event"
        );
        if !self.log.push(event).await {
            tracing::debug!("event after the transfer ended ignored");
        }
        // Let followers run: events are observed in order, not batched away.
        tokio::task::yield_now().await;
    }

    /// The customer waits in a queue at `position` (1-based).
    pub async fn queued(&self, position: u32, estimated_wait: Duration) {
        self.queued_with_detail(position, estimated_wait, "").await;
    }

    /// Like [`queued`](Self::queued), with a note for the AI runtime (e.g.
    /// that a callback is offered because the wait is long).
    pub async fn queued_with_detail(&self, position: u32, estimated_wait: Duration, detail: &str) {
        let mut event = Self::event(TransferEventKind::Queued, detail);
        event.queue_position = position;
        event.estimated_wait = prost_types::Duration::try_from(estimated_wait).ok();
        self.push(event).await;
    }

    pub async fn offered(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::Offered, detail))
            .await;
    }

    pub async fn ringing(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::Ringing, detail))
            .await;
    }

    pub async fn answered(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::Answered, detail))
            .await;
    }

    pub async fn context_delivered(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::ContextDelivered, detail))
            .await;
    }

    /// Attended transfer: the human answered a consult leg and is hearing
    /// the brief while the customer holds. Only after
    /// [`answered`](Self::answered).
    pub async fn consulting(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::Consulting, detail))
            .await;
    }

    /// Attended transfer: the human accepted after the brief; report
    /// [`connected`](Self::connected) once the customer is joined.
    pub async fn consult_accepted(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::ConsultAccepted, detail))
            .await;
    }

    /// Attended transfer: the human declined after the brief or hung up;
    /// report [`failed`](Self::failed) with
    /// [`FailureReason::Rejected`] next (or let a fallback follow).
    pub async fn consult_declined(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::ConsultDeclined, detail))
            .await;
    }

    /// A callback: the human took it and has the context, and the
    /// connector dials the customer now (once per attempt; say which in
    /// `detail`, never the number). The control service no longer honours
    /// a cancel from the first of these.
    pub async fn callback_dialing(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::CallbackDialing, detail))
            .await;
    }

    pub async fn connected(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::Connected, detail))
            .await;
    }

    /// Terminal: the connector's part is over after a connection.
    pub async fn completed(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::Completed, detail))
            .await;
    }

    /// Terminal, like [`completed`](Self::completed), with the human's
    /// wrap-up (disposition, notes and their judgements of the handoff),
    /// which the control service stores on the handoff.
    pub async fn completed_with_wrap_up(
        &self,
        detail: &str,
        wrap_up: baton_proto::types::v1::WrapUp,
    ) {
        let mut event = Self::event(TransferEventKind::Completed, detail);
        event.wrap_up = Some(wrap_up);
        self.push(event).await;
    }

    /// Terminal: the human handed the customer back to the AI runtime.
    /// `wrap_up` (disposition, notes and the instruction for the AI) goes
    /// to the runtime on its WatchHandoff stream; it is journalled like
    /// every event, so a restarted connector replays it. Only after
    /// [`connected`](Self::connected): the control service refuses a
    /// hand-back from a human who never had the customer.
    pub async fn handed_back(&self, detail: &str, wrap_up: baton_proto::types::v1::WrapUp) {
        let mut event = Self::event(TransferEventKind::HandedBack, detail);
        event.wrap_up = Some(wrap_up);
        self.push(event).await;
    }

    /// Terminal: no human was reached at this target.
    pub async fn failed(&self, reason: FailureReason, detail: &str) {
        let mut event = Self::event(TransferEventKind::Failed, detail);
        event.failure_reason = reason as i32;
        self.push(event).await;
    }

    /// Terminal: the transfer was cancelled (e.g. the caller hung up).
    pub async fn cancelled(&self, detail: &str) {
        self.push(Self::event(TransferEventKind::Cancelled, detail))
            .await;
    }

    /// Stores a short note that outlives a restart of the connector (with
    /// a journal, see [`ServeOptions::journal`](crate::ServeOptions::journal)):
    /// what a new process needs to clean up or take over this transfer,
    /// such as the SIP dialog it must end. After a restart the last note
    /// is given back as [`Transfer::remembered`](crate::Transfer::remembered)
    /// to [`Connector::resume`](crate::Connector::resume) and
    /// [`Connector::cancel`](crate::Connector::cancel). Returns once the
    /// note is journalled; without a journal it is not kept.
    pub async fn remember(&self, note: &str) {
        self.log.remember(note).await;
    }

    /// True once a terminal event was reported.
    pub fn is_ended(&self) -> bool {
        self.log.is_ended()
    }
}

/// Reads the events of a [`TransferEvents::channel`] in order.
#[derive(Debug)]
pub struct TransferEventReceiver {
    log: Arc<EventLog>,
    read: usize,
}

impl TransferEventReceiver {
    /// The next event, waiting until it is reported; None once the
    /// terminal event has been read. A transfer that never reports a
    /// terminal event keeps this waiting: drive it alongside.
    pub async fn recv(&mut self) -> Option<StartTransferResponse> {
        if self.log.is_ended() && self.read >= self.log.len() {
            return None;
        }
        let event = self.log.read_from(self.read).await.into_iter().next()?;
        self.read += 1;
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sequences_are_gapless_and_nothing_follows_the_terminal_event() {
        let log = EventLog::new(None);
        let events = TransferEvents::new(log.clone());
        events.ringing("").await;
        events.failed(FailureReason::Busy, "486").await;
        events.connected("").await;
        let all = log.read_from(0).await;
        assert_eq!(all.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(all[1].failure_reason, FailureReason::Busy as i32);
        assert!(events.is_ended());
    }

    #[tokio::test]
    async fn a_channel_yields_each_event_once_and_ends_after_the_terminal_one() {
        let (events, mut received) = TransferEvents::channel();
        let reporter = tokio::spawn(async move {
            events.ringing("").await;
            events.connected("").await;
            events.completed("").await;
            events.ringing("ignored").await;
        });
        let mut kinds = Vec::new();
        while let Some(event) = received.recv().await {
            kinds.push(event.kind);
        }
        reporter.await.expect("reporter");
        assert_eq!(
            kinds,
            [
                TransferEventKind::Ringing as i32,
                TransferEventKind::Connected as i32,
                TransferEventKind::Completed as i32
            ]
        );
        assert!(received.recv().await.is_none());
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[tokio::test]
    async fn a_log_keeps_its_first_events_and_its_outcome_when_full() {
        let log = EventLog::new(None);
        let events = TransferEvents::new(log.clone());
        for _ in 0..MAX_EVENTS_PER_TRANSFER + 10 {
            events.queued(1, Duration::from_secs(1)).await;
        }
        assert_eq!(log.len(), MAX_EVENTS_PER_TRANSFER - 1);
        events.completed("").await;
        assert_eq!(log.len(), MAX_EVENTS_PER_TRANSFER);
        assert!(log.is_ended());
    }
}
