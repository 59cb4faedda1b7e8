//! What the kit saw of one StartTransfer stream, and the rules every stream
//! must follow: sequences 1, 2, 3… without gaps, one run id, exactly one
//! terminal event and nothing after it. Plain data, checked without a
//! network.

use baton_proto::connector::v1::{StartTransferResponse, TransferEventKind};
use baton_proto::types::v1::FailureReason;
use tonic::Code;

/// How a stream stopped being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server closed the stream with OK.
    Closed,
    /// The server ended it with an error status.
    Status(Code, String),
    /// Nothing more arrived in the time the kit waited; still open.
    Open,
}

/// One StartTransfer stream as the kit saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// What the kit was doing, e.g. `kind QUEUE: queue "support" (warm)`.
    pub label: String,
    pub events: Vec<StartTransferResponse>,
    pub end: StreamEnd,
}

pub fn is_terminal(kind: i32) -> bool {
    kind == TransferEventKind::Completed as i32
        || kind == TransferEventKind::Failed as i32
        || kind == TransferEventKind::Cancelled as i32
        || kind == TransferEventKind::HandedBack as i32
}

pub fn kind_name(kind: i32) -> String {
    TransferEventKind::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("TRANSFER_EVENT_KIND_")
                .to_owned()
        })
        .unwrap_or_else(|_| format!("unknown kind {kind}"))
}

pub fn reason_name(reason: i32) -> String {
    FailureReason::try_from(reason)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("FAILURE_REASON_")
                .to_owned()
        })
        .unwrap_or_else(|_| format!("unknown reason {reason}"))
}

impl Observed {
    /// The terminal event, when the stream has one.
    pub fn terminal(&self) -> Option<&StartTransferResponse> {
        self.events.iter().find(|e| is_terminal(e.kind))
    }

    pub fn kinds(&self) -> Vec<i32> {
        self.events.iter().map(|e| e.kind).collect()
    }

    /// `RINGING, ANSWERED, CONNECTED, COMPLETED`, for messages.
    pub fn summary(&self) -> String {
        let mut text = self
            .events
            .iter()
            .map(|e| {
                if e.kind == TransferEventKind::Failed as i32 {
                    format!("FAILED({})", reason_name(e.failure_reason))
                } else {
                    kind_name(e.kind)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        if text.is_empty() {
            text.push_str("no events");
        }
        match &self.end {
            StreamEnd::Closed => text,
            StreamEnd::Status(code, message) => format!("{text}; then status {code:?}: {message}"),
            StreamEnd::Open => format!("{text}; stream still open"),
        }
    }

    pub fn connected(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.kind == TransferEventKind::Connected as i32)
    }
}

/// Sequences start at 1 and grow by one, without gaps.
pub fn check_sequence(observed: &Observed) -> Result<(), String> {
    for (index, event) in observed.events.iter().enumerate() {
        let expected = index as u64 + 1;
        if event.sequence != expected {
            let seen: Vec<u64> = observed.events.iter().map(|e| e.sequence).collect();
            return Err(format!(
                "{}: sequence {} where {expected} was due (sequences {seen:?})",
                observed.label, event.sequence
            ));
        }
    }
    Ok(())
}

/// A stream that ended closed has exactly one terminal event, last; an open
/// or failed stream has none or one, last; nothing follows a terminal event.
pub fn check_terminal(observed: &Observed) -> Result<(), String> {
    let terminals = observed
        .events
        .iter()
        .filter(|e| is_terminal(e.kind))
        .count();
    if terminals > 1 {
        return Err(format!(
            "{}: {terminals} terminal events ({})",
            observed.label,
            observed.summary()
        ));
    }
    if let Some(position) = observed.events.iter().position(|e| is_terminal(e.kind))
        && position + 1 != observed.events.len()
    {
        return Err(format!(
            "{}: events after the terminal one ({})",
            observed.label,
            observed.summary()
        ));
    }
    if let StreamEnd::Status(code, message) = &observed.end
        && !observed.events.is_empty()
        && *code != Code::Unavailable
    {
        return Err(format!(
            "{}: the stream broke off with {code:?} ({message}) after {} events instead of a terminal event (or UNAVAILABLE on shutdown)",
            observed.label,
            observed.events.len()
        ));
    }
    if terminals == 0 && observed.end == StreamEnd::Closed {
        return Err(format!(
            "{}: the stream closed without a terminal event ({})",
            observed.label,
            observed.summary()
        ));
    }
    if terminals == 1 && observed.end == StreamEnd::Open {
        return Err(format!(
            "{}: the stream stayed open after the terminal event ({})",
            observed.label,
            observed.summary()
        ));
    }
    Ok(())
}

/// Every event names its kind, time and run; the run is the same
/// throughout; FAILED says why and QUEUED says where; HANDED_BACK carries
/// the human's wrap-up and comes only after CONNECTED (a human who never
/// had the customer cannot hand them back).
pub fn check_fields(observed: &Observed) -> Result<(), String> {
    let run = observed.events.first().map(|e| e.run_id.as_str());
    let mut connected = false;
    for event in &observed.events {
        let at = format!(
            "{}: event {} ({})",
            observed.label,
            event.sequence,
            kind_name(event.kind)
        );
        match TransferEventKind::try_from(event.kind) {
            Ok(TransferEventKind::Unspecified) | Err(_) => {
                return Err(format!("{at}: kind is unspecified or unknown"));
            }
            _ => {}
        }
        if event.time.is_none() {
            return Err(format!("{at}: no time"));
        }
        if event.run_id.is_empty() {
            return Err(format!("{at}: no run_id"));
        }
        if Some(event.run_id.as_str()) != run {
            return Err(format!(
                "{at}: run_id {:?} differs from the first event's {:?} in the same stream",
                event.run_id,
                run.unwrap_or_default()
            ));
        }
        if event.kind == TransferEventKind::Failed as i32
            && matches!(
                FailureReason::try_from(event.failure_reason),
                Ok(FailureReason::Unspecified) | Err(_)
            )
        {
            return Err(format!("{at}: FAILED without a failure_reason"));
        }
        if event.kind == TransferEventKind::Queued as i32 && event.queue_position == 0 {
            return Err(format!("{at}: QUEUED without a queue_position"));
        }
        if event.kind == TransferEventKind::HandedBack as i32 {
            if event.wrap_up.is_none() {
                return Err(format!("{at}: HANDED_BACK without a wrap_up"));
            }
            if !connected {
                return Err(format!("{at}: HANDED_BACK before CONNECTED"));
            }
        }
        connected |= event.kind == TransferEventKind::Connected as i32;
    }
    Ok(())
}

/// Whether `replay` repeats `original`'s events (same sequence, kind, time
/// and run): a replay of the same run, not a second transfer. Checks the
/// events both have.
pub fn check_replay(original: &Observed, replay: &Observed) -> Result<(), String> {
    for (first, again) in original.events.iter().zip(&replay.events) {
        let same = first.sequence == again.sequence
            && first.kind == again.kind
            && first.time == again.time
            && first.run_id == again.run_id
            && first.failure_reason == again.failure_reason;
        if !same {
            return Err(format!(
                "event {} differs: first {} (run {:?}, time {:?}), then {} (run {:?}, time {:?}): a second transfer, not a replay",
                first.sequence,
                kind_name(first.kind),
                first.run_id,
                first.time,
                kind_name(again.kind),
                again.run_id,
                again.time
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sequence: u64, kind: TransferEventKind) -> StartTransferResponse {
        StartTransferResponse {
            sequence,
            kind: kind as i32,
            time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 + sequence as i64,
                nanos: 0,
            }),
            run_id: "run-1".into(),
            failure_reason: if kind == TransferEventKind::Failed {
                FailureReason::Busy as i32
            } else {
                0
            },
            queue_position: if kind == TransferEventKind::Queued {
                1
            } else {
                0
            },
            wrap_up: (kind == TransferEventKind::HandedBack).then(|| {
                baton_proto::types::v1::WrapUp {
                    instruction: "finish the address change".into(),
                    ..Default::default()
                }
            }),
            ..Default::default()
        }
    }

    fn observed(events: Vec<StartTransferResponse>, end: StreamEnd) -> Observed {
        Observed {
            label: "t".into(),
            events,
            end,
        }
    }

    use TransferEventKind as K;

    #[test]
    fn a_well_formed_stream_passes_every_rule() {
        let good = observed(
            vec![
                event(1, K::Queued),
                event(2, K::Ringing),
                event(3, K::Connected),
                event(4, K::Completed),
            ],
            StreamEnd::Closed,
        );
        assert_eq!(check_sequence(&good), Ok(()));
        assert_eq!(check_terminal(&good), Ok(()));
        assert_eq!(check_fields(&good), Ok(()));
        assert_eq!(check_replay(&good, &good), Ok(()));
        assert_eq!(good.summary(), "QUEUED, RINGING, CONNECTED, COMPLETED");
    }

    #[test]
    fn a_hand_back_is_terminal_after_connected_and_carries_its_wrap_up() {
        let back = observed(
            vec![
                event(1, K::Ringing),
                event(2, K::Connected),
                event(3, K::HandedBack),
            ],
            StreamEnd::Closed,
        );
        assert_eq!(check_terminal(&back), Ok(()));
        assert_eq!(check_fields(&back), Ok(()));
        assert_eq!(back.summary(), "RINGING, CONNECTED, HANDED_BACK");

        let mut bare = back.clone();
        bare.events[2].wrap_up = None;
        assert!(
            check_fields(&bare)
                .expect_err("bare")
                .contains("without a wrap_up")
        );
        let early = observed(
            vec![event(1, K::Ringing), event(2, K::HandedBack)],
            StreamEnd::Closed,
        );
        assert!(
            check_fields(&early)
                .expect_err("early")
                .contains("before CONNECTED")
        );
        let after = observed(
            vec![
                event(1, K::Connected),
                event(2, K::HandedBack),
                event(3, K::Completed),
            ],
            StreamEnd::Closed,
        );
        assert!(
            check_terminal(&after).is_err(),
            "nothing follows a hand-back"
        );
    }

    #[test]
    fn gaps_repeats_and_a_wrong_start_are_caught() {
        for sequences in [[1, 3], [1, 1], [0, 1], [2, 3]] {
            let stream = observed(
                sequences.iter().map(|s| event(*s, K::Ringing)).collect(),
                StreamEnd::Open,
            );
            assert!(check_sequence(&stream).is_err(), "{sequences:?}");
        }
    }

    #[test]
    fn terminal_rules() {
        let two = observed(
            vec![event(1, K::Completed), event(2, K::Failed)],
            StreamEnd::Closed,
        );
        assert!(
            check_terminal(&two)
                .expect_err("two")
                .contains("2 terminal")
        );
        let after = observed(
            vec![event(1, K::Failed), event(2, K::Ringing)],
            StreamEnd::Closed,
        );
        assert!(check_terminal(&after).expect_err("after").contains("after"));
        let none = observed(vec![event(1, K::Ringing)], StreamEnd::Closed);
        assert!(check_terminal(&none).is_err());
        let open = observed(vec![event(1, K::Completed)], StreamEnd::Open);
        assert!(check_terminal(&open).is_err());
        let unavailable = observed(
            vec![event(1, K::Ringing)],
            StreamEnd::Status(Code::Unavailable, "bye".into()),
        );
        assert_eq!(check_terminal(&unavailable), Ok(()));
        let broken = observed(
            vec![event(1, K::Ringing)],
            StreamEnd::Status(Code::Internal, "panic".into()),
        );
        assert!(
            check_terminal(&broken)
                .expect_err("broke off")
                .contains("Internal")
        );
        let refused = observed(
            Vec::new(),
            StreamEnd::Status(Code::Unimplemented, "no".into()),
        );
        assert_eq!(check_terminal(&refused), Ok(()));
    }

    #[test]
    fn field_rules() {
        let mut failed = event(1, K::Failed);
        failed.failure_reason = 0;
        assert!(check_fields(&observed(vec![failed], StreamEnd::Closed)).is_err());
        let mut unnamed = event(1, K::Ringing);
        unnamed.run_id.clear();
        assert!(check_fields(&observed(vec![unnamed], StreamEnd::Open)).is_err());
        let mut other_run = event(2, K::Connected);
        other_run.run_id = "run-2".into();
        assert!(
            check_fields(&observed(
                vec![event(1, K::Ringing), other_run],
                StreamEnd::Open
            ))
            .is_err()
        );
        let mut queued = event(1, K::Queued);
        queued.queue_position = 0;
        assert!(check_fields(&observed(vec![queued], StreamEnd::Open)).is_err());
    }

    #[test]
    fn a_new_run_is_not_a_replay() {
        let first = observed(vec![event(1, K::Ringing)], StreamEnd::Open);
        let mut again = first.clone();
        again.events[0].run_id = "run-2".into();
        assert!(check_replay(&first, &again).is_err());
        let mut later = first.clone();
        later.events[0].time = Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        });
        assert!(check_replay(&first, &later).is_err());
    }
}
