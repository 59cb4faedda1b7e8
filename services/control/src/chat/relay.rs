//! The relay between a conversation's log and the connector serving its
//! handoff (`ConverseTransfer`): at most one per conversation on a replica,
//! started by the runtime's stream, running until the ENDED entry has
//! reached the connector. On every (re)connect the connector says the last
//! sequence it has, and the relay sends the entries after it; the human's
//! messages are stored by their id, so a re-sent one is stored once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{CATCH_UP_BATCH, Hint, RECHECK, Room, settle_end};
use crate::connector::chat::{
    FromConnector, FromConnectorStream, RelayOpen, RelayRefused, ToConnector,
};
use crate::dispatch::Dispatcher;
use crate::domain::chat::{ChatAppend, ChatAuthor, draft_problems};
use crate::store::HandoffStore;

/// The wait before reconnecting to a connector that could not be reached.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What a relay needs.
pub struct Relay {
    pub store: Arc<dyn HandoffStore>,
    pub dispatcher: Arc<Dispatcher>,
    pub room: Arc<Room>,
    pub tenant: String,
    pub handoff_id: String,
    pub shutdown: CancellationToken,
}

/// How one connection of the relay ended.
enum Session {
    /// The connector has the ENDED entry: the relay is done.
    Delivered,
    /// Reconnect.
    Broken,
    /// The connector does not relay chat: the human has the screen pop only.
    Unsupported,
}

impl Relay {
    /// Starts the relay unless one runs for the conversation already.
    pub fn spawn(self) {
        if !self.room.claim_relay() {
            return;
        }
        tokio::spawn(async move {
            let room = self.room.clone();
            tokio::select! {
                () = self.run() => {}
                () = self.shutdown.cancelled() => {}
            }
            room.release_relay();
        });
    }

    async fn run(&self) {
        loop {
            match self.connect_once().await {
                Ok(Session::Delivered) => return,
                Ok(Session::Unsupported) => {
                    tracing::info!(handoff_id = %self.handoff_id, "the connector does not relay chat");
                    return;
                }
                Ok(Session::Broken) => {}
                Err(detail) => {
                    tracing::debug!(handoff_id = %self.handoff_id, %detail, "chat relay not connected");
                    // A connector that cannot be reached once the handoff
                    // has ended has let the transfer go: the end is in the
                    // log, and the runtime gets it from there.
                    if let Ok(Some(_)) =
                        settle_end(&*self.store, &self.tenant, &self.handoff_id).await
                    {
                        return;
                    }
                }
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    async fn connect_once(&self) -> Result<Session, String> {
        let handoff = self
            .store
            .get(&self.tenant, &self.handoff_id)
            .await
            .map_err(|e| e.to_string())?;
        let Some(attempt) = handoff.current_attempt else {
            return Err("no transfer yet".into());
        };
        let connector = self
            .dispatcher
            .connector(&attempt.planned.connector)
            .map_err(|e| e.to_string())?;
        let (outbound, receiver) = mpsc::channel(64);
        let open = RelayOpen {
            tenant: self.tenant.clone(),
            handoff_id: self.handoff_id.clone(),
            attempt: attempt.number,
        };
        match connector.converse(open, receiver).await {
            Ok(inbound) => self.follow(inbound, outbound).await,
            Err(RelayRefused::Unsupported(_)) => Ok(Session::Unsupported),
            Err(RelayRefused::UnknownTransfer(detail) | RelayRefused::Unavailable(detail)) => {
                Err(detail)
            }
        }
    }

    /// Carries one connection until it breaks or the end is delivered.
    async fn follow(
        &self,
        mut inbound: FromConnectorStream,
        outbound: mpsc::Sender<ToConnector>,
    ) -> Result<Session, String> {
        let mut last_sent = match inbound.next().await {
            Some(Ok(FromConnector::Opened { after_sequence })) => after_sequence,
            Some(Ok(other)) => return Err(format!("the connector began with {other:?}")),
            Some(Err(detail)) => return Err(detail),
            None => return Ok(Session::Broken),
        };
        let mut stored = self.room.watch_stored();
        let mut hints = self.room.customer_hints.subscribe();
        let mut recheck = tokio::time::interval(RECHECK);
        loop {
            // Whatever woke the relay, the log is the truth.
            if self.send_after(&mut last_sent, &outbound).await? {
                // The connector has the end: nothing more will come.
                return Ok(Session::Delivered);
            }
            tokio::select! {
                message = inbound.next() => match message {
                    Some(Ok(message)) => self.take(message).await?,
                    Some(Err(detail)) => return Err(detail),
                    None => return Ok(Session::Broken),
                },
                changed = stored.changed() => { changed.map_err(|e| e.to_string())?; }
                hint = hints.recv() => match hint {
                    Ok(Hint::Typing(active)) => { let _ = outbound.send(ToConnector::Typing(active)).await; }
                    Ok(Hint::Read(through)) => { let _ = outbound.send(ToConnector::Read(through)).await; }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ok(Session::Broken),
                },
                _ = recheck.tick() => {
                    settle_end(&*self.store, &self.tenant, &self.handoff_id)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }

    /// Sends the entries after `last_sent`; true once the ENDED one went.
    async fn send_after(
        &self,
        last_sent: &mut u64,
        outbound: &mpsc::Sender<ToConnector>,
    ) -> Result<bool, String> {
        loop {
            let entries = self
                .store
                .chat_after(&self.tenant, &self.handoff_id, *last_sent, CATCH_UP_BATCH)
                .await
                .map_err(|e| e.to_string())?;
            let full = entries.len() == CATCH_UP_BATCH;
            for entry in entries {
                *last_sent = entry.sequence;
                let ended = entry.ended.is_some();
                outbound
                    .send(ToConnector::Entry(entry))
                    .await
                    .map_err(|_| "the connector's stream closed".to_string())?;
                if ended {
                    return Ok(true);
                }
            }
            if !full {
                return Ok(false);
            }
        }
    }

    /// Stores a message of the human, or passes on a hint.
    async fn take(&self, message: FromConnector) -> Result<(), String> {
        match message {
            FromConnector::Message(draft) => {
                if let Some((field, problem)) = draft_problems(&draft).into_iter().next() {
                    // A connector's bad message is dropped, not the relay:
                    // the customer keeps the conversation.
                    tracing::warn!(handoff_id = %self.handoff_id, %field, %problem, "a human's chat message was refused");
                    return Ok(());
                }
                let appended = self
                    .store
                    .append_chat(&self.tenant, &self.handoff_id, ChatAuthor::Human, draft)
                    .await
                    .map_err(|e| e.to_string())?;
                if let ChatAppend::Stored(entry) = &appended {
                    self.room.stored(entry.sequence);
                }
            }
            FromConnector::Typing(active) => {
                let _ = self.room.human_hints.send(Hint::Typing(active));
            }
            FromConnector::Read(through) => {
                self.room.human_read(through);
                let _ = self.room.human_hints.send(Hint::Read(through));
            }
            FromConnector::Opened { .. } => {}
        }
        Ok(())
    }
}
