//! The handoff state machine. A handoff changes state only through
//! [`HandoffState::after`], so an illegal transition cannot be written: the
//! store applies every event through it inside the same transaction that
//! records the event.

use serde::{Deserialize, Serialize};

/// Where a handoff stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    /// Where every handoff starts ([`HandoffState::INITIAL`]).
    #[default]
    Pending,
    Routing,
    Queued,
    Ringing,
    Connected,
    Completed,
    Failed,
    Cancelled,
    /// The human had the customer and gave them back to the AI runtime.
    HandedBack,
    /// Attended transfer: a human on a consult leg hears the brief while
    /// the customer holds.
    Consulting,
    /// A callback: the human has the context and the connector dials the
    /// customer. No cancel, and no fallback: another target would dial
    /// the same customer again.
    CallingBack,
}

/// What happened to a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    TargetStarted,
    Queued,
    Offered,
    Ringing,
    Answered,
    ContextDelivered,
    Connected,
    TargetFailed,
    /// The runtime updated the context (UpdateHandoff); the state stays.
    ContextUpdated,
    Completed,
    Failed,
    Cancelled,
    /// The human handed the customer back to the AI (with a wrap-up).
    HandedBack,
    /// Attended transfer: the human answered the consult leg.
    Consulting,
    /// Attended transfer: the human accepted after the brief.
    ConsultAccepted,
    /// Attended transfer: the human declined after the brief.
    ConsultDeclined,
    /// A callback: the connector dials the customer (once per attempt).
    CallbackDialing,
}

/// An event that the handoff's current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a handoff in state {from:?} cannot take event {event:?}")]
pub struct IllegalTransition {
    pub from: HandoffState,
    pub event: EventKind,
}

impl HandoffState {
    /// The state's name, as in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffState::Pending => "pending",
            HandoffState::Routing => "routing",
            HandoffState::Queued => "queued",
            HandoffState::Ringing => "ringing",
            HandoffState::Connected => "connected",
            HandoffState::Completed => "completed",
            HandoffState::Failed => "failed",
            HandoffState::Cancelled => "cancelled",
            HandoffState::HandedBack => "handed_back",
            HandoffState::Consulting => "consulting",
            HandoffState::CallingBack => "calling_back",
        }
    }

    /// The state of a handoff that has just been created.
    pub const INITIAL: HandoffState = HandoffState::Pending;

    /// True for completed, failed, cancelled and handed back: nothing
    /// happens after them.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::HandedBack
        )
    }

    /// True while a transfer to a target is under way.
    fn is_transferring(self) -> bool {
        matches!(
            self,
            Self::Routing | Self::Queued | Self::Ringing | Self::Consulting
        )
    }

    /// The state after `event`, or why `event` cannot happen now.
    pub fn after(self, event: EventKind) -> Result<HandoffState, IllegalTransition> {
        use EventKind as E;
        use HandoffState as S;
        let next = match (self, event) {
            (S::Pending | S::Routing, E::TargetStarted) => S::Routing,
            (from, E::Queued) if from.is_transferring() => S::Queued,
            (from, E::Offered | E::Ringing) if from.is_transferring() => S::Ringing,
            // The human answered or has the context; the customer is joined by
            // a later CONNECTED. After CONNECTED, late context confirmations
            // keep the handoff connected.
            (S::Consulting, E::Answered | E::ContextDelivered) => S::Consulting,
            (from, E::Answered | E::ContextDelivered) if from.is_transferring() => S::Ringing,
            // The consult leg: the human on the line hears the brief, then
            // accepts (CONNECTED follows once the customer is joined) or
            // declines (TARGET_FAILED follows).
            (S::Ringing | S::Consulting, E::Consulting) => S::Consulting,
            (S::Consulting, E::ConsultAccepted | E::ConsultDeclined) => S::Consulting,
            (S::Connected, E::Answered | E::ContextDelivered) => S::Connected,
            // A callback: the human took it (OFFERED, ANSWERED) and the
            // customer is dialed, perhaps more than once; the customer
            // answering connects, and the handoff's failure is final.
            (S::Ringing | S::CallingBack, E::CallbackDialing) => S::CallingBack,
            (S::CallingBack, E::Ringing | E::Answered | E::ContextDelivered) => S::CallingBack,
            (S::CallingBack, E::Connected) => S::Connected,
            (S::CallingBack, E::ContextUpdated) => S::CallingBack,
            (from, E::Connected) if from.is_transferring() => S::Connected,
            // A target failing sends the handoff back to routing for the next
            // one; once a human has the customer there is no fallback.
            (from, E::TargetFailed) if from.is_transferring() => S::Routing,
            (S::Connected, E::Completed) => S::Completed,
            // Only a human who had the customer can hand them back.
            (S::Connected, E::HandedBack) => S::HandedBack,
            // The context grows while nobody has the customer yet; once a
            // human has them, the human is the one talking.
            (from, E::ContextUpdated) if from == S::Pending || from.is_transferring() => from,
            (from, E::Failed) if !from.is_terminal() => S::Failed,
            (from, E::Cancelled) if !from.is_terminal() => S::Cancelled,
            (from, event) => return Err(IllegalTransition { from, event }),
        };
        Ok(next)
    }
}

impl EventKind {
    /// True for the events that end a handoff.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::HandedBack
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind as E;
    use HandoffState as S;

    const ALL_STATES: [S; 11] = [
        S::Pending,
        S::Routing,
        S::Queued,
        S::Ringing,
        S::Connected,
        S::Completed,
        S::Failed,
        S::Cancelled,
        S::HandedBack,
        S::Consulting,
        S::CallingBack,
    ];
    const ALL_EVENTS: [E; 18] = [
        E::Created,
        E::TargetStarted,
        E::Queued,
        E::Offered,
        E::Ringing,
        E::Answered,
        E::ContextDelivered,
        E::Connected,
        E::TargetFailed,
        E::Completed,
        E::Failed,
        E::Cancelled,
        E::HandedBack,
        E::ContextUpdated,
        E::Consulting,
        E::ConsultAccepted,
        E::ConsultDeclined,
        E::CallbackDialing,
    ];

    fn run(events: &[E]) -> Result<S, IllegalTransition> {
        events
            .iter()
            .try_fold(S::INITIAL, |state, &event| state.after(event))
    }

    #[test]
    fn a_warm_transfer_through_a_queue_reaches_completed() {
        let path = [
            E::TargetStarted,
            E::Queued,
            E::Queued,
            E::Offered,
            E::Answered,
            E::ContextDelivered,
            E::Connected,
            E::Completed,
        ];
        assert_eq!(run(&path), Ok(S::Completed));
    }

    #[test]
    fn a_failed_target_falls_back_to_routing_and_the_next_target_can_connect() {
        let path = [
            E::TargetStarted,
            E::Ringing,
            E::TargetFailed,
            E::TargetStarted,
            E::Ringing,
            E::Connected,
        ];
        assert_eq!(run(&path), Ok(S::Connected));
    }

    #[test]
    fn an_attended_transfer_consults_then_connects_or_falls_back() {
        let consult = [
            E::TargetStarted,
            E::Ringing,
            E::Answered,
            E::Consulting,
            E::ContextDelivered,
        ];
        assert_eq!(run(&consult), Ok(S::Consulting));
        let accepted = [
            &consult[..],
            &[E::ConsultAccepted, E::Connected, E::Completed],
        ]
        .concat();
        assert_eq!(run(&accepted), Ok(S::Completed));
        let declined = [
            &consult[..],
            &[E::ConsultDeclined, E::TargetFailed, E::TargetStarted],
        ]
        .concat();
        assert_eq!(run(&declined), Ok(S::Routing));
        // A consult needs a human on the line first, and ends with them.
        for state in [S::Pending, S::Routing, S::Queued, S::Connected] {
            assert!(state.after(E::Consulting).is_err(), "{state:?}");
        }
        for state in [S::Ringing, S::Connected] {
            assert!(state.after(E::ConsultAccepted).is_err(), "{state:?}");
            assert!(state.after(E::ConsultDeclined).is_err(), "{state:?}");
        }
    }

    #[test]
    fn a_callback_dials_until_the_customer_answers_and_never_falls_back() {
        let dialing = [
            E::TargetStarted,
            E::Queued,
            E::Offered,
            E::ContextDelivered,
            E::Ringing,
            E::Answered,
            E::CallbackDialing,
            E::CallbackDialing,
        ];
        assert_eq!(run(&dialing), Ok(S::CallingBack));
        let connected = [&dialing[..], &[E::Connected, E::Completed]].concat();
        assert_eq!(run(&connected), Ok(S::Completed));
        // Once dialed, a failure is the handoff's: no next target.
        assert!(S::CallingBack.after(E::TargetFailed).is_err());
        assert!(S::CallingBack.after(E::Queued).is_err());
        assert_eq!(S::CallingBack.after(E::Failed), Ok(S::Failed));
        // Nobody dials before a human took the callback.
        for state in [S::Pending, S::Routing, S::Queued, S::Connected] {
            assert!(state.after(E::CallbackDialing).is_err(), "{state:?}");
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for state in ALL_STATES.into_iter().filter(|s| s.is_terminal()) {
            for event in ALL_EVENTS {
                assert!(state.after(event).is_err(), "{state:?} took {event:?}");
            }
        }
    }

    #[test]
    fn only_a_connected_handoff_can_be_handed_back() {
        let path = [
            E::TargetStarted,
            E::Queued,
            E::Answered,
            E::Connected,
            E::HandedBack,
        ];
        assert_eq!(run(&path), Ok(S::HandedBack));
        for state in ALL_STATES.into_iter().filter(|s| *s != S::Connected) {
            assert!(state.after(E::HandedBack).is_err(), "{state:?}");
        }
    }

    #[test]
    fn created_is_never_a_transition() {
        for state in ALL_STATES {
            assert!(state.after(E::Created).is_err());
        }
    }

    #[test]
    fn no_fallback_and_no_completion_without_a_human() {
        assert!(S::Connected.after(E::TargetFailed).is_err());
        assert!(S::Ringing.after(E::Completed).is_err());
        assert!(S::Pending.after(E::Connected).is_err());
        assert!(S::Connected.after(E::TargetStarted).is_err());
    }

    #[test]
    fn every_live_state_can_be_cancelled_or_failed() {
        for state in ALL_STATES.into_iter().filter(|s| !s.is_terminal()) {
            assert_eq!(state.after(E::Cancelled), Ok(S::Cancelled));
            assert_eq!(state.after(E::Failed), Ok(S::Failed));
        }
    }

    #[test]
    fn terminal_events_lead_to_terminal_states() {
        for state in ALL_STATES {
            for event in ALL_EVENTS {
                if let Ok(next) = state.after(event) {
                    assert_eq!(
                        event.is_terminal(),
                        next.is_terminal(),
                        "{state:?} {event:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_context_can_be_updated_until_a_human_has_the_customer() {
        for state in [S::Pending, S::Routing, S::Queued, S::Ringing, S::Consulting] {
            assert_eq!(state.after(E::ContextUpdated), Ok(state), "{state:?}");
        }
        for state in ALL_STATES
            .into_iter()
            .filter(|s| *s == S::Connected || s.is_terminal())
        {
            assert!(state.after(E::ContextUpdated).is_err(), "{state:?}");
        }
    }
}
