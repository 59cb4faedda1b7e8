//! Fan-out of recorded events to `WatchHandoff` streams. The store stays
//! the source of truth: a watcher that falls behind, or sees a gap,
//! re-reads the log instead of losing events.
//!
//! Events recorded by this replica are published directly. When replicas
//! share a store, the hub also follows the store's announcements
//! (`HandoffStore::listen`): for a handoff someone here watches, it reads
//! the announced events from the store, in order, and publishes them. A
//! channel remembers the last sequence it carried, so an event published
//! both ways reaches each watcher once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::domain::EventRecord;
use crate::store::{EventNotice, HandoffStore, Notice};

/// Events buffered per handoff for slow watchers before they must catch up
/// from the store.
const CAPACITY: usize = 64;

/// The most events read from the store for one announcement.
const READ_BATCH: usize = 64;

#[derive(Debug)]
pub struct EventHub {
    channels: Mutex<HashMap<String, Channel>>,
    /// One permit per open watch stream: each holds a buffer here and one
    /// toward its caller, so their number is bounded.
    watch_slots: Arc<Semaphore>,
}

/// The default most watch streams open at once on one replica.
pub const DEFAULT_MAX_WATCH_STREAMS: usize = 10_000;

impl Default for EventHub {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WATCH_STREAMS)
    }
}

#[derive(Debug)]
struct Channel {
    sender: broadcast::Sender<EventRecord>,
    /// The sequence of the last event sent; 0 before the first.
    last_sequence: u64,
}

impl EventHub {
    pub fn new(max_watch_streams: usize) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            // Clamped: a semaphore holds at most MAX_PERMITS.
            watch_slots: Arc::new(Semaphore::new(
                max_watch_streams.min(Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// A slot for one more watch stream, held while it is open; `None`
    /// when every slot is taken.
    pub fn watch_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.watch_slots.clone().try_acquire_owned().ok()
    }

    pub fn subscribe(&self, handoff_id: &str) -> broadcast::Receiver<EventRecord> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .entry(handoff_id.to_owned())
            .or_insert_with(|| Channel {
                sender: broadcast::channel(CAPACITY).0,
                last_sequence: 0,
            })
            .sender
            .subscribe()
    }

    /// Sends `record` to the handoff's watchers, unless an event at least
    /// as recent was already sent (watchers fill any gap from the log).
    pub fn publish(&self, record: &EventRecord) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = channels.get_mut(&record.handoff_id) {
            if record.sequence <= channel.last_sequence {
                return;
            }
            channel.last_sequence = record.sequence;
            // No watcher left, or nothing more to come: free the channel.
            if channel.sender.send(record.clone()).is_err() || record.state.is_terminal() {
                channels.remove(&record.handoff_id);
            }
        }
    }

    /// Frees a handoff's channel once no watcher is left, so that watching
    /// a handoff that records nothing more leaves nothing behind.
    pub fn release(&self, handoff_id: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if channels
            .get(handoff_id)
            .is_some_and(|channel| channel.sender.receiver_count() == 0)
        {
            channels.remove(handoff_id);
        }
    }

    /// Where the next read for a watched handoff starts, if it is watched
    /// and `sequence` is news to its channel.
    fn read_from(&self, handoff_id: &str, sequence: u64) -> Option<u64> {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let last = channels.get(handoff_id)?.last_sequence;
        if sequence <= last {
            return None;
        }
        // A fresh channel's watchers read the log themselves: the announced
        // event alone wakes them. Otherwise fill the gap since the last one.
        Some(if last == 0 { sequence - 1 } else { last })
    }

    fn watched(&self) -> Vec<String> {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.keys().cloned().collect()
    }

    /// Follows a shared store's announcements until the store stops
    /// sending them; events recorded by other replicas reach this
    /// replica's watchers.
    pub fn follow(
        self: &Arc<Self>,
        store: Arc<dyn HandoffStore>,
        mut notices: mpsc::Receiver<Notice>,
    ) -> JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            while let Some(notice) = notices.recv().await {
                match notice {
                    Notice::Recorded(notice) => hub.forward(store.as_ref(), &notice).await,
                    Notice::Missed => hub.reread(store.as_ref()).await,
                }
            }
        })
    }

    async fn forward(&self, store: &dyn HandoffStore, notice: &EventNotice) {
        let Some(after) = self.read_from(&notice.handoff_id, notice.sequence) else {
            return;
        };
        match store
            .events_after(&notice.tenant, &notice.handoff_id, after, READ_BATCH)
            .await
        {
            Ok(events) => {
                for event in &events {
                    self.publish(event);
                }
            }
            Err(error) => {
                tracing::warn!(handoff_id = %notice.handoff_id, %error, "cannot read announced events");
            }
        }
    }

    /// Announcements were lost: for every watched handoff, publish what is
    /// new in the store.
    async fn reread(&self, store: &dyn HandoffStore) {
        for handoff_id in self.watched() {
            // The watchers proved access to this handoff when they
            // subscribed; the id alone finds its tenant.
            match store.find_by_id(&handoff_id).await {
                Ok(handoff) => {
                    let notice = EventNotice {
                        tenant: handoff.tenant,
                        handoff_id,
                        sequence: handoff.last_sequence,
                    };
                    self.forward(store, &notice).await;
                }
                Err(error) => {
                    tracing::warn!(%handoff_id, %error, "cannot re-read a watched handoff");
                }
            }
        }
    }

    #[cfg(test)]
    fn channel_count(&self) -> usize {
        self.channels.lock().map(|c| c.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventKind, HandoffState};

    fn record(kind: EventKind, state: HandoffState, sequence: u64) -> EventRecord {
        EventRecord::new("h", sequence, kind, state, 0)
    }

    #[tokio::test]
    async fn watchers_receive_events_and_channels_are_freed_at_the_end() {
        let hub = EventHub::default();
        let mut watcher = hub.subscribe("h");
        hub.publish(&record(EventKind::TargetStarted, HandoffState::Routing, 2));
        hub.publish(&record(EventKind::Cancelled, HandoffState::Cancelled, 3));
        assert_eq!(watcher.recv().await.expect("event").sequence, 2);
        assert_eq!(watcher.recv().await.expect("event").sequence, 3);
        assert_eq!(hub.channel_count(), 0);
    }

    #[test]
    fn a_watch_that_saw_nothing_new_leaves_no_channel() {
        let hub = EventHub::default();
        let first = hub.subscribe("h");
        let second = hub.subscribe("h");
        drop(first);
        hub.release("h");
        assert_eq!(hub.channel_count(), 1, "a watcher is still there");
        drop(second);
        hub.release("h");
        assert_eq!(hub.channel_count(), 0);
    }

    /// A hub following a fresh embedded store, and a watcher of one
    /// handoff stored in it as another replica would have recorded it.
    struct Following {
        _dir: tempfile::TempDir,
        store: Arc<dyn HandoffStore>,
        handoff: crate::domain::Handoff,
        hub: Arc<EventHub>,
        notices: mpsc::Sender<Notice>,
        follower: JoinHandle<()>,
        watcher: broadcast::Receiver<EventRecord>,
    }

    async fn following() -> Following {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn HandoffStore> =
            Arc::new(crate::store::SqliteStore::open(dir.path()).expect("open"));
        let handoff = crate::domain::Handoff {
            id: uuid::Uuid::now_v7().to_string(),
            tenant: "acme".into(),
            request_id: "r".into(),
            request_fingerprint: "f".into(),
            plan: vec![crate::domain::PlannedTarget {
                connector: "c".into(),
                target: crate::domain::ConcreteTarget::SipUri {
                    uri: "sip:a@b".into(),
                },
            }],
            customer_message_language: "en".into(),
            created_at_ms: 1,
            updated_at_ms: 1,
            deadline_ms: i64::MAX,
            ..crate::domain::Handoff::default()
        };
        let created = store
            .create(handoff, None, None)
            .await
            .expect("create")
            .handoff;
        let hub = Arc::new(EventHub::default());
        let (notices, feed) = mpsc::channel(8);
        let follower = hub.follow(store.clone(), feed);
        let watcher = hub.subscribe(&created.id);
        Following {
            _dir: dir,
            store,
            handoff: created,
            hub,
            notices,
            follower,
            watcher,
        }
    }

    #[tokio::test]
    async fn announced_events_are_read_from_the_store_in_order_once() {
        let Following {
            _dir,
            store,
            handoff,
            hub: _hub,
            notices,
            follower,
            mut watcher,
        } = following().await;
        // Another replica records two events and announces them.
        let attempt = crate::domain::Attempt {
            number: 1,
            planned: handoff.plan[0].clone(),
        };
        for event in [
            crate::domain::NewEvent::new(EventKind::TargetStarted).attempt(attempt),
            crate::domain::NewEvent::new(EventKind::Cancelled),
        ] {
            store
                .append("acme", &handoff.id, event)
                .await
                .expect("append");
        }
        let notice = |sequence| {
            Notice::Recorded(EventNotice {
                tenant: "acme".into(),
                handoff_id: handoff.id.clone(),
                sequence,
            })
        };
        notices.send(notice(2)).await.expect("send");
        // The last one announced twice (as after a reconnection) reaches
        // the watcher once.
        notices.send(notice(3)).await.expect("send");
        notices.send(notice(3)).await.expect("send");
        let first = watcher.recv().await.expect("the first event");
        assert_eq!((first.sequence, first.kind), (2, EventKind::TargetStarted));
        let second = watcher.recv().await.expect("the second event");
        assert_eq!((second.sequence, second.kind), (3, EventKind::Cancelled));
        // A terminal event frees the channel: nothing more comes.
        assert!(matches!(
            watcher.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));
        drop(notices);
        follower.await.expect("the follower ends with its feed");
    }

    #[tokio::test]
    async fn after_missed_announcements_watched_handoffs_are_re_read() {
        let Following {
            _dir,
            store,
            handoff,
            hub,
            notices,
            follower: _follower,
            mut watcher,
        } = following().await;
        store
            .append(
                "acme",
                &handoff.id,
                crate::domain::NewEvent::new(EventKind::Cancelled),
            )
            .await
            .expect("append");
        // Its announcement was lost; the feed says so.
        notices.send(Notice::Missed).await.expect("send");
        let received = watcher.recv().await.expect("the re-read event");
        assert_eq!(received.sequence, 2);
        assert_eq!(hub.channel_count(), 0);
    }
}
