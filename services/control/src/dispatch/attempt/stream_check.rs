//! The contract every transfer stream keeps, checked event by event: one
//! run, sequences 1, 2, 3… without gaps (a re-attached stream replays from
//! 1), and no endless events of kinds this service does not know.

use crate::connector::{TransferEvent, TransferEventKind};

/// The most events of kinds this control service does not know that one
/// stream may send: a connector of a newer contract sends a few, a broken
/// one sends them forever.
const MAX_UNKNOWN_EVENTS: u32 = 16;

/// What one transfer stream has shown so far.
#[derive(Debug, Default)]
pub(super) struct StreamCheck {
    run_id: Option<String>,
    /// Events received on this stream.
    seen: u64,
    unknown: u32,
}

impl StreamCheck {
    /// Whether no event has come yet.
    pub(super) fn is_silent(&self) -> bool {
        self.seen == 0
    }

    /// Takes the stream's next event; the error says what it breaks.
    pub(super) fn admit(&mut self, event: &TransferEvent) -> Result<(), String> {
        self.seen += 1;
        if event.run_id.is_empty() {
            return Err(format!("event {} has no run_id", event.sequence));
        }
        match &self.run_id {
            None => self.run_id = Some(event.run_id.clone()),
            Some(run) if *run != event.run_id => {
                return Err(format!(
                    "run_id changed within one stream ({run} then {})",
                    event.run_id
                ));
            }
            Some(_) => {}
        }
        if event.sequence != self.seen {
            return Err(format!(
                "event sequence {} where {} was due",
                event.sequence, self.seen
            ));
        }
        if let TransferEventKind::Unknown(_) = event.kind {
            self.unknown += 1;
            if self.unknown > MAX_UNKNOWN_EVENTS {
                return Err(format!(
                    "more than {MAX_UNKNOWN_EVENTS} events of unknown kinds"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(run: &str, sequence: u64, kind: TransferEventKind) -> TransferEvent {
        TransferEvent::new(run, sequence, kind)
    }

    #[test]
    fn one_run_numbered_from_one_without_gaps_passes() {
        let mut check = StreamCheck::default();
        assert!(check.is_silent());
        for (sequence, kind) in [
            TransferEventKind::Ringing,
            TransferEventKind::Connected,
            TransferEventKind::Completed,
        ]
        .into_iter()
        .enumerate()
        {
            check
                .admit(&event("run-1", sequence as u64 + 1, kind))
                .expect("in order");
        }
        assert!(!check.is_silent());
    }

    #[test]
    fn a_gap_a_second_run_or_no_run_breaks_the_contract() {
        let mut gap = StreamCheck::default();
        gap.admit(&event("a", 1, TransferEventKind::Ringing))
            .expect("first");
        let error = gap
            .admit(&event("a", 3, TransferEventKind::Connected))
            .expect_err("gap");
        assert_eq!(error, "event sequence 3 where 2 was due");

        let mut two_runs = StreamCheck::default();
        two_runs
            .admit(&event("a", 1, TransferEventKind::Ringing))
            .expect("first");
        let error = two_runs
            .admit(&event("b", 2, TransferEventKind::Connected))
            .expect_err("new run");
        assert!(error.starts_with("run_id changed"), "{error}");

        let error = StreamCheck::default()
            .admit(&event("", 1, TransferEventKind::Ringing))
            .expect_err("no run");
        assert_eq!(error, "event 1 has no run_id");
    }

    #[test]
    fn a_few_unknown_kinds_pass_and_an_endless_stream_of_them_does_not() {
        let mut check = StreamCheck::default();
        for sequence in 1..=u64::from(MAX_UNKNOWN_EVENTS) {
            check
                .admit(&event("a", sequence, TransferEventKind::Unknown(99)))
                .expect("within the bound");
        }
        let next = u64::from(MAX_UNKNOWN_EVENTS) + 1;
        check
            .admit(&event("a", next, TransferEventKind::Unknown(99)))
            .expect_err("past the bound");
    }
}
