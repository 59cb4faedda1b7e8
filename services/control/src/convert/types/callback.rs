//! Callbacks: masked for the API, in full for the connector that dials.

use baton_proto::handoff::v1 as api;
use baton_proto::types::v1 as pb;

use crate::convert::{ms_of, timestamp_of};
use crate::domain::HandoffState;
use crate::domain::callback::{Callback, CallbackState};

/// A handoff's callback as the API shows it: the number masked.
pub fn handoff_callback(callback: &Callback, handoff: HandoffState) -> api::HandoffCallback {
    use CallbackState as S;
    let state = match callback.state(handoff) {
        S::Scheduled => pb::CallbackState::Scheduled,
        S::Dialing => pb::CallbackState::Dialing,
        S::Connected => pb::CallbackState::Connected,
        S::Failed => pb::CallbackState::Failed,
    };
    api::HandoffCallback {
        masked_number: callback.masked_number(),
        window_start: callback.window_start_ms.map(timestamp_of),
        window_end: callback.window_end_ms.map(timestamp_of),
        state: state as i32,
        dial_attempts: callback.dial_attempts,
    }
}

/// A callback as the connector that dials it is told: the number in full.
pub fn callback(callback: &Callback) -> pb::Callback {
    pb::Callback {
        number: callback.number.clone(),
        window_start: callback.window_start_ms.map(timestamp_of),
        window_end: callback.window_end_ms.map(timestamp_of),
        consent: true,
    }
}

/// A create request's callback, checked by `validate_create`.
pub fn callback_from(callback: &pb::Callback) -> Callback {
    Callback {
        number: callback.number.clone(),
        window_start_ms: callback.window_start.as_ref().map(ms_of),
        window_end_ms: callback.window_end.as_ref().map(ms_of),
        dial_attempts: 0,
    }
}
