//! Chat handoffs' conversations on this replica: one [`Room`] per
//! conversation with an open stream, through which the runtime's streams
//! (`api::converse`) and the relay to the connector ([`relay`]) learn that
//! the log grew and pass each other's typing and read hints. The log itself
//! is the store's ([`crate::store::ChatLog`]): rooms only wake readers up,
//! and every reader also looks at the log now and then
//! ([`RECHECK`]), so that entries stored by another replica and the end of
//! the handoff are never missed.

pub mod relay;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::domain::chat::{ChatEndReason, ChatEntry};
use crate::store::{HandoffStore, StoreError};

/// How often a conversation's readers look at the log and the handoff's
/// state without being woken: what bounds the delay of an entry stored by
/// another replica, and of the end of the handoff.
pub const RECHECK: Duration = Duration::from_millis(500);

/// Entries read per catch-up query.
pub const CATCH_UP_BATCH: usize = 128;

/// A hint of one side for the other: not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    Typing(bool),
    Read(u64),
}

/// One conversation's meeting point on this replica.
#[derive(Debug)]
pub struct Room {
    /// The latest sequence this replica stored; readers wake on a change.
    appended: watch::Sender<u64>,
    /// The customer's hints, for the relay.
    pub customer_hints: broadcast::Sender<Hint>,
    /// The human's hints, for the runtime's streams.
    pub human_hints: broadcast::Sender<Hint>,
    /// The latest sequence the human has read.
    human_read_through: AtomicU64,
    /// A relay to the connector runs for this conversation.
    relay_running: AtomicBool,
}

impl Room {
    fn new() -> Self {
        Self {
            appended: watch::channel(0).0,
            customer_hints: broadcast::channel(32).0,
            human_hints: broadcast::channel(32).0,
            human_read_through: AtomicU64::new(0),
            relay_running: AtomicBool::new(false),
        }
    }

    /// Wakes the readers: `sequence` is stored.
    pub fn stored(&self, sequence: u64) {
        self.appended.send_if_modified(|latest| {
            let newer = sequence > *latest;
            *latest = (*latest).max(sequence);
            newer
        });
    }

    /// A receiver that wakes on every [`stored`](Self::stored).
    pub fn watch_stored(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn human_read(&self, through: u64) {
        self.human_read_through
            .fetch_max(through, Ordering::Relaxed);
    }

    pub fn human_read_through(&self) -> u64 {
        self.human_read_through.load(Ordering::Relaxed)
    }

    /// Claims the relay of this conversation; false when one runs already.
    pub fn claim_relay(&self) -> bool {
        !self.relay_running.swap(true, Ordering::AcqRel)
    }

    pub fn release_relay(&self) {
        self.relay_running.store(false, Ordering::Release);
    }
}

/// Every conversation with an open stream on this replica. A room lives
/// as long as a stream or a relay holds it.
#[derive(Debug, Default)]
pub struct ChatRooms {
    rooms: Mutex<HashMap<String, Weak<Room>>>,
}

impl ChatRooms {
    /// The room of `handoff_id`, opened if none is.
    pub fn room(&self, handoff_id: &str) -> Arc<Room> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(room) = rooms.get(handoff_id).and_then(Weak::upgrade) {
            return room;
        }
        rooms.retain(|_, room| room.strong_count() > 0);
        let room = Arc::new(Room::new());
        rooms.insert(handoff_id.to_string(), Arc::downgrade(&room));
        room
    }
}

/// The conversation's ENDED entry once its handoff has ended (stored now if
/// it was not yet); `None` while the handoff runs.
pub async fn settle_end(
    store: &dyn HandoffStore,
    tenant: &str,
    handoff_id: &str,
) -> Result<Option<ChatEntry>, StoreError> {
    let handoff = store.get(tenant, handoff_id).await?;
    match ChatEndReason::of(handoff.state) {
        Some(reason) => store.end_chat(tenant, handoff_id, reason).await.map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_lives_while_held_and_one_relay_claims_it() {
        let rooms = ChatRooms::default();
        let room = rooms.room("h");
        assert!(Arc::ptr_eq(&room, &rooms.room("h")));
        assert!(room.claim_relay());
        assert!(!room.claim_relay());
        room.release_relay();
        assert!(room.claim_relay());
        drop(room);
        let fresh = rooms.room("h");
        assert!(fresh.claim_relay(), "a new room after the last holder left");
    }

    #[test]
    fn readers_wake_only_for_newer_sequences() {
        let room = Room::new();
        let mut stored = room.watch_stored();
        room.stored(2);
        assert!(stored.has_changed().expect("open"));
        stored.mark_unchanged();
        room.stored(1);
        assert!(!stored.has_changed().expect("open"));
        assert_eq!(*stored.borrow(), 2);
    }
}
