//! Callbacks in the queue's domain (a transfer's `callback`): the customer
//! is no longer on the line and is called back once an agent takes the
//! contact. A callback keeps its place in line like a call (it takes the
//! agent alone) but is offered only while its window is open; it waits
//! however long that takes, with nobody signed in too, and fails when its
//! window closes before an agent took it. Its number is saved with the
//! contact, so that a restart keeps the promise, and leaves with it.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Millis, Phase, Queues, Refusal};

/// What the customer asked for: the number to dial and when.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    /// E.164. The customer's: never logged (`Debug` shows its last digits
    /// only), shown masked.
    pub number: String,
    /// Not offered before this; `None`: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<Millis>,
    /// Not offered from this on, and the callback fails if nobody took it
    /// by then; `None`: until the transfer ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<Millis>,
    /// How far the dial went; saved, so that a restart never dials twice.
    #[serde(default)]
    pub dial: Dial,
}

impl std::fmt::Debug for CallbackRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackRequest")
            .field("number", &baton_connector_sdk::mask_number(&self.number))
            .field("window_start", &self.window_start)
            .field("window_end", &self.window_end)
            .field("dial", &self.dial)
            .finish()
    }
}

impl CallbackRequest {
    /// Whether the contact may be offered at `now`.
    pub fn is_open(&self, now: Millis) -> bool {
        self.window_start.is_none_or(|start| now >= start) && !self.has_closed(now)
    }

    /// Whether the window has ended at `now`.
    pub fn has_closed(&self, now: Millis) -> bool {
        self.window_end.is_some_and(|end| now >= end)
    }

    /// Whether the window has not opened yet at `now`.
    pub fn is_scheduled_later(&self, now: Millis) -> bool {
        self.window_start.is_some_and(|start| now < start)
    }
}

/// How far the dial of an accepted callback went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Dial {
    /// Not dialed yet (waiting, offered, or accepted with the agent's phone
    /// being called).
    #[default]
    NotYet,
    /// The customer's phone is being dialed: attempt `attempt` of `of`.
    Dialing { attempt: u32, of: u32 },
    /// The customer answered: the agent and the customer are talking.
    Connected,
}

/// Reads a contact's `callback`: state written before callbacks came from
/// the contract has `true`/`false` there (a free-text choice without a
/// number), which is no callback.
pub(super) fn stored_callback<'de, D>(deserializer: D) -> Result<Option<CallbackRequest>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Request(CallbackRequest),
        Legacy(#[allow(dead_code)] bool),
    }
    Ok(match Option::<Stored>::deserialize(deserializer)? {
        Some(Stored::Request(request)) => Some(request),
        _ => None,
    })
}

impl Queues {
    /// Records how far a callback's dial went; false when the handoff has
    /// no callback here.
    pub fn note_dial(&mut self, handoff_id: &str, dial: Dial) -> bool {
        match self
            .contacts
            .get_mut(handoff_id)
            .and_then(|c| c.callback.as_mut())
        {
            Some(callback) => {
                callback.dial = dial;
                true
            }
            None => false,
        }
    }

    /// Fails the callbacks nobody took before their window closed (an
    /// offer of one disappears).
    pub(super) fn close_callback_windows(&mut self, now: Millis) {
        for contact in self.contacts.values_mut() {
            let closed = contact.callback.as_ref().is_some_and(|c| c.has_closed(now));
            if closed && matches!(contact.phase, Phase::Waiting | Phase::Offered { .. }) {
                contact.phase = Phase::Failed {
                    refusal: Refusal::WindowClosed,
                    detail: "the callback window closed before an agent took it".into(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CallbackRequest, Dial};
    use crate::domain::tests::{
        SECOND, ann_away, callback_contact, contact, failed_with, offered_to, queues, restart,
        sign_in,
    };
    use crate::domain::{NewContact, Phase, Refusal};

    fn callback(id: &str, window: Option<(u64, u64)>) -> NewContact {
        let mut new = callback_contact(id);
        if let Some(request) = new.callback.as_mut() {
            request.window_start = window.map(|w| w.0);
            request.window_end = window.map(|w| w.1);
        }
        new
    }

    #[test]
    fn a_callback_is_taken_in_with_nobody_signed_in_and_offered_only_inside_its_window() {
        let mut q = queues();
        q.enqueue(callback("later", Some((10 * SECOND, 20 * SECOND))), 0)
            .expect("a callback waits for someone to sign in");
        sign_in(&mut q, "ann", &["support"], SECOND);
        q.route(2 * SECOND);
        assert_eq!(offered_to(&q, "later"), None, "its window has not opened");
        assert_eq!(q.standing("later").map(|s| s.position), Some(1));
        q.route(10 * SECOND);
        assert_eq!(offered_to(&q, "later").as_deref(), Some("ann"));
    }

    #[test]
    fn a_callback_nobody_took_before_its_window_closed_fails_and_its_offer_disappears() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        q.enqueue(callback("closing", Some((0, 5 * SECOND))), 0)
            .expect("enqueue");
        q.route(SECOND);
        assert_eq!(offered_to(&q, "closing").as_deref(), Some("ann"));
        q.route(5 * SECOND);
        assert_eq!(failed_with(&q, "closing"), Some(Refusal::WindowClosed));
    }

    #[test]
    fn a_callback_waits_beyond_the_maximum_and_outlives_a_restart_unheld_with_its_dial() {
        let mut q = ann_away();
        q.enqueue(callback("back", None), 0).expect("enqueue");
        q.route(3600 * SECOND);
        assert_eq!(q.contact("back").map(|c| &c.phase), Some(&Phase::Waiting));
        assert!(q.note_dial("back", Dial::Dialing { attempt: 1, of: 3 }));
        let q = restart(&q);
        let restored = q.contact("back").expect("restored");
        assert!(!restored.is_held(), "nobody is on a line to move elsewhere");
        let kept = restored.callback.as_ref().expect("callback");
        assert_eq!(kept.number, "+15550100123");
        assert_eq!(kept.dial, Dial::Dialing { attempt: 1, of: 3 });
    }

    #[test]
    fn the_number_never_shows_in_debug_and_old_state_reads_as_no_callback() {
        let request = CallbackRequest {
            number: "+15550100123".into(),
            window_start: None,
            window_end: None,
            dial: Dial::NotYet,
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("5550100"), "{shown}");
        assert!(shown.contains("0123"), "{shown}");
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        q.enqueue(contact("old", "support", 0), 0).expect("enqueue");
        let mut stored = serde_json::to_value(q.contact("old").expect("contact")).expect("json");
        stored["callback"] = serde_json::Value::Bool(true);
        let read: crate::domain::Contact = serde_json::from_value(stored).expect("reads");
        assert!(read.callback.is_none());
    }
}
