//! WatchHandoff: a handoff's events as a stream, from any sequence on.
//! The log is replayed first, then live events follow, going back to the
//! log whenever the live channel falls behind, so that no event is missed or
//! sent twice. Streams are bounded per tenant and per replica, and end on
//! shutdown with a status that says where to resume.

use std::sync::Arc;

use baton_proto::handoff::v1::{WatchHandoffRequest, WatchHandoffResponse};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::HandoffApi;
use super::fields::parse_id;
use crate::convert;
use crate::domain::EventRecord;
use crate::error::ControlError;
use crate::metrics::metrics;
use crate::store::HandoffStore;

/// Events read from the store per catch-up query of a watch stream.
const REPLAY_BATCH: usize = 256;

/// What a watch stream carries: events, or one status that ends it.
pub type WatchStream = ReceiverStream<Result<WatchHandoffResponse, Status>>;

impl HandoffApi {
    pub(super) async fn watch(
        &self,
        tenant: String,
        request: WatchHandoffRequest,
    ) -> Result<WatchStream, ControlError> {
        parse_id(&request.handoff_id)?;
        // Sequences are stored as signed 64-bit integers.
        if i64::try_from(request.after_sequence).is_err() {
            return Err(ControlError::invalid_field(
                "after_sequence",
                "must be below 2^63 (a sequence of this handoff's events)",
            ));
        }
        let permit = self
            .watch_streams
            .try_acquire(&tenant)
            .map_err(ControlError::Limited)?;
        let Some(watch_slot) = self.hub.watch_slot() else {
            metrics().overloaded("watch");
            return Err(ControlError::WatchStreamsFull);
        };
        // Subscribe before reading the log, so that nothing recorded in
        // between is missed; duplicates are dropped by sequence.
        let live = self.hub.subscribe(&request.handoff_id);
        let handoff = match self.store.get(&tenant, &request.handoff_id).await {
            Ok(handoff) => handoff,
            Err(error) => {
                drop(live);
                self.hub.release(&request.handoff_id);
                return Err(error.into());
            }
        };
        let (sender, receiver) = mpsc::channel(16);
        let watch = Watch {
            store: self.store.clone(),
            tenant,
            ended: handoff.state.is_terminal(),
            handoff_id: handoff.id,
            last_sent: request.after_sequence,
            sender,
        };
        let shutdown = self.shutdown.clone();
        let hub = self.hub.clone();
        let open_stream = metrics().stream_opened();
        tokio::spawn(async move {
            let _open_stream = open_stream;
            let _permit = permit;
            let _watch_slot = watch_slot;
            let sender = watch.sender.clone();
            let handoff_id = watch.handoff_id.clone();
            let ended_by = tokio::select! {
                result = watch.run(live) => result.err(),
                // The caller went away while nothing happened: free its
                // slot and channel now rather than at the next event.
                () = sender.closed() => None,
                () = shutdown.cancelled() => Some(ControlError::ShuttingDown),
            };
            if let Some(error) = ended_by {
                let _ = sender.send(Err(error.to_status())).await;
            }
            // The live receiver is gone with the watch: free its channel.
            hub.release(&handoff_id);
        });
        Ok(ReceiverStream::new(receiver))
    }
}

/// One WatchHandoff stream: replays the log after `last_sent`, then follows
/// live events, going back to the log whenever it falls behind.
struct Watch {
    store: Arc<dyn HandoffStore>,
    tenant: String,
    handoff_id: String,
    /// The handoff had ended when the stream opened: nothing more will be
    /// recorded, so the stream ends once the log is replayed, also when
    /// `after_sequence` is at or past its last event.
    ended: bool,
    last_sent: u64,
    sender: mpsc::Sender<Result<WatchHandoffResponse, Status>>,
}

enum Progress {
    Open,
    Ended,
}

impl Watch {
    async fn run(mut self, mut live: broadcast::Receiver<EventRecord>) -> Result<(), ControlError> {
        if let Progress::Ended = self.catch_up().await? {
            return Ok(());
        }
        if self.ended {
            return Ok(());
        }
        loop {
            match live.recv().await {
                Ok(record) if record.sequence <= self.last_sent => {}
                Ok(record) if record.sequence == self.last_sent + 1 => {
                    if let Progress::Ended = self.send(&record).await {
                        return Ok(());
                    }
                }
                // A gap or a lag: the log has everything.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Progress::Ended = self.catch_up().await? {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The channel is freed after a terminal event.
                    self.catch_up().await?;
                    return Ok(());
                }
            }
        }
    }

    async fn catch_up(&mut self) -> Result<Progress, ControlError> {
        loop {
            let events = self
                .store
                .events_after(&self.tenant, &self.handoff_id, self.last_sent, REPLAY_BATCH)
                .await?;
            let full_batch = events.len() == REPLAY_BATCH;
            for record in &events {
                if let Progress::Ended = self.send(record).await {
                    return Ok(Progress::Ended);
                }
            }
            if !full_batch {
                return Ok(Progress::Open);
            }
        }
    }

    /// Sends one event; the stream ends after a terminal one or when the
    /// client has gone.
    async fn send(&mut self, record: &EventRecord) -> Progress {
        self.last_sent = record.sequence;
        let response = WatchHandoffResponse {
            event: Some(convert::event(record)),
        };
        if self.sender.send(Ok(response)).await.is_err() || record.state.is_terminal() {
            Progress::Ended
        } else {
            Progress::Open
        }
    }
}
