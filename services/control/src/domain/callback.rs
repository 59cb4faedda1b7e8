//! A callback the customer chose instead of waiting on the line: where it
//! stands, and the rules the control service applies to it. The number is
//! the customer's: `Debug` and every view but the connector's masks it.

use serde::{Deserialize, Serialize};

use super::HandoffState;

/// A handoff's callback as stored: the number in full (the connector that
/// dials needs it), the window, and how many dials were made.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    pub number: String,
    /// No dial before this; `None`: as soon as a human is free.
    pub window_start_ms: Option<i64>,
    /// No dial after this; the handoff's deadline when set.
    pub window_end_ms: Option<i64>,
    /// CALLBACK_DIALING events recorded so far.
    #[serde(default)]
    pub dial_attempts: u32,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("number", &self.masked_number())
            .field("window_start_ms", &self.window_start_ms)
            .field("window_end_ms", &self.window_end_ms)
            .field("dial_attempts", &self.dial_attempts)
            .finish()
    }
}

/// How far a callback went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackState {
    /// No dial was made (the handoff's state says whether it still waits).
    Scheduled,
    Dialing,
    Connected,
    Failed,
}

/// Why a callback's window cannot be taken as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowRefused {
    #[error("has already passed")]
    Passed,
    #[error("ends more than {0} days from now")]
    TooFar(u64),
}

/// How long the dials of a callback may go on after its window ends.
pub const CALLBACK_DIAL_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How far ahead a callback may be scheduled: a promise to call next month
/// is a task for a CRM, not a live handoff.
pub const MAX_CALLBACK_HORIZON_DAYS: u64 = 7;

impl Callback {
    pub fn masked_number(&self) -> String {
        crate::domain::validate::mask_number(&self.number)
    }

    /// How far the callback went, from its dials and the handoff's state.
    pub fn state(&self, handoff: HandoffState) -> CallbackState {
        match handoff {
            _ if self.dial_attempts == 0 => CallbackState::Scheduled,
            HandoffState::CallingBack => CallbackState::Dialing,
            HandoffState::Connected | HandoffState::Completed | HandoffState::HandedBack => {
                CallbackState::Connected
            }
            _ => CallbackState::Failed,
        }
    }

    /// Checks the window against `now_ms`: it must end in the future and
    /// within [`MAX_CALLBACK_HORIZON_DAYS`].
    pub fn check_window(&self, now_ms: i64) -> Result<(), WindowRefused> {
        let Some(end) = self.window_end_ms else {
            return Ok(());
        };
        if end <= now_ms {
            return Err(WindowRefused::Passed);
        }
        let horizon = i64::try_from(MAX_CALLBACK_HORIZON_DAYS * 86_400_000).unwrap_or(i64::MAX);
        if end - now_ms > horizon {
            return Err(WindowRefused::TooFar(MAX_CALLBACK_HORIZON_DAYS));
        }
        Ok(())
    }

    /// The handoff's deadline: the window's end, plus the time the dials
    /// take (a dial started just before the end is not cut off); `None`
    /// for a callback as soon as possible, which keeps the request's.
    pub fn deadline_ms(&self) -> Option<i64> {
        let grace = i64::try_from(CALLBACK_DIAL_GRACE.as_millis()).unwrap_or(i64::MAX);
        self.window_end_ms.map(|end| end.saturating_add(grace))
    }

    /// When business hours are judged: the window's start, or now.
    pub fn judged_at(&self, now_ms: i64) -> i64 {
        self.window_start_ms
            .map_or(now_ms, |start| start.max(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(start: Option<i64>, end: Option<i64>) -> Callback {
        Callback {
            number: "+15550100123".into(),
            window_start_ms: start,
            window_end_ms: end,
            dial_attempts: 0,
        }
    }

    #[test]
    fn debug_never_shows_the_whole_number() {
        let shown = format!("{:?}", callback(None, None));
        assert!(!shown.contains("5550100123"), "{shown}");
        assert!(shown.contains("0123"), "{shown}");
    }

    #[test]
    fn the_window_must_end_ahead_and_within_the_horizon() {
        let now = 1_900_000_000_000;
        assert_eq!(callback(None, None).check_window(now), Ok(()));
        assert_eq!(
            callback(Some(now - 10), Some(now + 3_600_000)).check_window(now),
            Ok(())
        );
        assert_eq!(
            callback(None, Some(now)).check_window(now),
            Err(WindowRefused::Passed)
        );
        assert_eq!(
            callback(None, Some(now + 8 * 86_400_000)).check_window(now),
            Err(WindowRefused::TooFar(7))
        );
        // The dials may go on for 15 minutes after the window's end.
        assert_eq!(
            callback(None, Some(now + 10)).deadline_ms(),
            Some(now + 10 + 15 * 60_000)
        );
        assert_eq!(callback(None, None).deadline_ms(), None);
        assert_eq!(callback(Some(now + 5), None).judged_at(now), now + 5);
        assert_eq!(callback(Some(now - 5), None).judged_at(now), now);
    }

    #[test]
    fn the_state_follows_the_dials_and_the_handoff() {
        let mut c = callback(None, None);
        assert_eq!(c.state(HandoffState::Queued), CallbackState::Scheduled);
        assert_eq!(c.state(HandoffState::Cancelled), CallbackState::Scheduled);
        c.dial_attempts = 2;
        assert_eq!(c.state(HandoffState::CallingBack), CallbackState::Dialing);
        assert_eq!(c.state(HandoffState::Completed), CallbackState::Connected);
        assert_eq!(c.state(HandoffState::Failed), CallbackState::Failed);
    }
}
