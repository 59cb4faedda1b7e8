//! In-process fan-out of recorded events to `WatchHandoff` streams. The
//! store stays the source of truth: a watcher that falls behind re-reads
//! the log instead of losing events.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::domain::EventRecord;

/// Events buffered per handoff for slow watchers before they must catch up
/// from the store.
const CAPACITY: usize = 64;

#[derive(Debug, Default)]
pub struct EventHub {
    channels: Mutex<HashMap<String, broadcast::Sender<EventRecord>>>,
}

impl EventHub {
    pub fn subscribe(&self, handoff_id: &str) -> broadcast::Receiver<EventRecord> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .entry(handoff_id.to_owned())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    pub fn publish(&self, record: &EventRecord) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = channels.get(&record.handoff_id) {
            // No watcher left, or nothing more to come: free the channel.
            if sender.send(record.clone()).is_err() || record.state.is_terminal() {
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
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(handoff_id);
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
        EventRecord {
            handoff_id: "h".into(),
            sequence,
            kind,
            state,
            time_ms: 0,
            attempt: None,
            queue_status: None,
            failure: None,
            detail: String::new(),
            wrap_up: None,
        }
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
}
