//! Callbacks at the desk: how the desktop and the supervisor view show one
//! (the number masked, to everyone: Baton dials, so nobody needs it), and
//! the dial's progress recorded as the connector reports it.

use serde::Serialize;

use super::Desk;
use crate::domain::{CallbackRequest, Dial, Millis};

/// A callback as the desktop and the supervisor view show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackView {
    /// All but the last four digits replaced by `•`.
    pub masked_number: String,
    pub window_start: Option<Millis>,
    pub window_end: Option<Millis>,
    /// `scheduled` (its window has not opened), `due` (waiting for, or
    /// with, an agent), `dialing` (the customer's phone), `connected`.
    pub state: &'static str,
    /// While dialing: the attempt, 1-based, and how many there may be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_attempts: Option<u32>,
}

impl CallbackView {
    pub fn of(request: &CallbackRequest, now: Millis) -> Self {
        let (state, dial_attempt, dial_attempts) = match request.dial {
            Dial::NotYet if request.is_scheduled_later(now) => ("scheduled", None, None),
            Dial::NotYet => ("due", None, None),
            Dial::Dialing { attempt, of } => ("dialing", Some(attempt), Some(of)),
            Dial::Connected => ("connected", None, None),
        };
        Self {
            masked_number: baton_connector_sdk::mask_number(&request.number),
            window_start: request.window_start,
            window_end: request.window_end,
            state,
            dial_attempt,
            dial_attempts,
        }
    }
}

impl Desk {
    /// Records how far a callback's dial went (saved, so that a restart
    /// never dials twice) and updates the desktops.
    pub fn note_dial(&self, handoff_id: &str, dial: Dial) {
        let mut inner = self.lock();
        if inner.queues.note_dial(handoff_id, dial) {
            self.commit(&mut inner);
        }
    }
}

/// Milliseconds since the Unix epoch of `time` (0 before it).
pub fn millis_of(time: std::time::SystemTime) -> Millis {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The callback of a transfer, as the queue keeps it.
pub fn request_of(callback: &baton_connector_sdk::Callback) -> CallbackRequest {
    CallbackRequest {
        number: callback.number.clone(),
        window_start: callback.window_start.map(millis_of),
        window_end: callback.window_end.map(millis_of),
        dial: Dial::NotYet,
    }
}

#[cfg(test)]
mod tests {
    use super::super::now_millis;
    use super::super::tests::{agent_account, envelope, new_contact, supervisor};
    use super::*;
    use crate::QueueConfig;
    use crate::domain::{AgentState, NewContact};

    fn callback(id: &str, window_start: Option<Millis>) -> NewContact {
        NewContact {
            callback: Some(CallbackRequest {
                number: "+15550100123".into(),
                window_start,
                window_end: None,
                dial: Dial::NotYet,
            }),
            ..new_contact(id, 1)
        }
    }

    #[test]
    fn a_callback_waits_for_its_window_shows_its_number_masked_and_a_cancel_withdraws_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let desk = Desk::open(&QueueConfig::ephemeral(dir.path())).expect("open");
        let token = desk
            .open_session(&agent_account("ann"))
            .expect("sign in")
            .session_id;
        let in_an_hour = now_millis() + 3_600_000;
        desk.enqueue(callback("later", Some(in_an_hour)), envelope())
            .expect("enqueue");
        let view = desk.agent_view(&token).expect("view");
        assert!(view.offer.is_none(), "not before its window");
        let summary = desk.supervisor_view(&supervisor()).contacts;
        let shown = summary[0].callback.as_ref().expect("a callback");
        assert_eq!(shown.masked_number, "+•••••••0123");
        assert_eq!(
            (shown.state, shown.window_start),
            ("scheduled", Some(in_an_hour))
        );
        // The customer no longer wants it: the control service cancels.
        desk.release("later", 1);
        assert!(desk.contact_status("later").is_none());
        assert!(desk.supervisor_view(&supervisor()).contacts.is_empty());

        desk.enqueue(callback("now", None), envelope())
            .expect("enqueue");
        let offer = desk
            .agent_view(&token)
            .and_then(|v| v.offer)
            .expect("offered");
        let shown = offer.callback.expect("a callback");
        assert_eq!(
            (shown.masked_number.as_str(), shown.state),
            ("+•••••••0123", "due")
        );
        desk.accept("ann", "now").expect("accept");
        desk.note_dial("now", Dial::Dialing { attempt: 2, of: 3 });
        let held = desk
            .agent_view(&token)
            .and_then(|v| v.active)
            .expect("connected");
        let shown = held.callback.expect("a callback");
        assert_eq!(
            (shown.state, shown.dial_attempt, shown.dial_attempts),
            ("dialing", Some(2), Some(3))
        );
        let json = serde_json::to_string(&desk.supervisor_view(&supervisor())).expect("json");
        assert!(!json.contains("5550100123"), "{json}");
        desk.set_state("ann", AgentState::Away)
            .expect_err("on a contact");
    }
}
