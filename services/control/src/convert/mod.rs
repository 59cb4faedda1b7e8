//! The edge between the domain's plain types and the generated protobuf
//! types: the API's messages here, the shared vocabulary in `types`, the
//! encoded conversation and context in `context`, and the envelope a
//! connector receives in `envelope`. Nothing in `domain` converts itself.

pub mod context;
pub mod envelope;
pub mod types;

use baton_proto::handoff::v1 as api;

use crate::domain::{Attempt, EventKind, EventRecord, Failure, Handoff, HandoffState, QueueStatus};

/// A protobuf timestamp as Unix milliseconds (saturating), the inverse of
/// [`timestamp_of`].
pub fn ms_of(at: &prost_types::Timestamp) -> i64 {
    at.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(at.nanos / 1_000_000))
}

/// Unix milliseconds as a protobuf timestamp.
pub fn timestamp_of(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub fn state(state: HandoffState) -> api::HandoffState {
    match state {
        HandoffState::Pending => api::HandoffState::Pending,
        HandoffState::Routing => api::HandoffState::Routing,
        HandoffState::Queued => api::HandoffState::Queued,
        HandoffState::Ringing => api::HandoffState::Ringing,
        HandoffState::Connected => api::HandoffState::Connected,
        HandoffState::Completed => api::HandoffState::Completed,
        HandoffState::Failed => api::HandoffState::Failed,
        HandoffState::Cancelled => api::HandoffState::Cancelled,
        HandoffState::HandedBack => api::HandoffState::HandedBack,
        HandoffState::Consulting => api::HandoffState::Consulting,
        HandoffState::CallingBack => api::HandoffState::CallingBack,
    }
}

pub fn state_from_proto(state: api::HandoffState) -> Option<HandoffState> {
    Some(match state {
        api::HandoffState::Unspecified => return None,
        api::HandoffState::Pending => HandoffState::Pending,
        api::HandoffState::Routing => HandoffState::Routing,
        api::HandoffState::Queued => HandoffState::Queued,
        api::HandoffState::Ringing => HandoffState::Ringing,
        api::HandoffState::Connected => HandoffState::Connected,
        api::HandoffState::Completed => HandoffState::Completed,
        api::HandoffState::Failed => HandoffState::Failed,
        api::HandoffState::Cancelled => HandoffState::Cancelled,
        api::HandoffState::HandedBack => HandoffState::HandedBack,
        api::HandoffState::Consulting => HandoffState::Consulting,
        api::HandoffState::CallingBack => HandoffState::CallingBack,
    })
}

fn event_kind(kind: EventKind) -> api::HandoffEventKind {
    match kind {
        EventKind::Created => api::HandoffEventKind::Created,
        EventKind::TargetStarted => api::HandoffEventKind::TargetStarted,
        EventKind::Queued => api::HandoffEventKind::Queued,
        EventKind::Offered => api::HandoffEventKind::Offered,
        EventKind::Ringing => api::HandoffEventKind::Ringing,
        EventKind::Answered => api::HandoffEventKind::Answered,
        EventKind::ContextDelivered => api::HandoffEventKind::ContextDelivered,
        EventKind::Connected => api::HandoffEventKind::Connected,
        EventKind::TargetFailed => api::HandoffEventKind::TargetFailed,
        EventKind::ContextUpdated => api::HandoffEventKind::ContextUpdated,
        EventKind::Completed => api::HandoffEventKind::Completed,
        EventKind::Failed => api::HandoffEventKind::Failed,
        EventKind::Cancelled => api::HandoffEventKind::Cancelled,
        EventKind::HandedBack => api::HandoffEventKind::HandedBack,
        EventKind::Consulting => api::HandoffEventKind::Consulting,
        EventKind::ConsultAccepted => api::HandoffEventKind::ConsultAccepted,
        EventKind::ConsultDeclined => api::HandoffEventKind::ConsultDeclined,
        EventKind::CallbackDialing => api::HandoffEventKind::CallbackDialing,
    }
}

fn attempt(attempt: &Attempt) -> api::TargetAttempt {
    api::TargetAttempt {
        attempt: attempt.number,
        connector: attempt.planned.connector.clone(),
        target: Some(types::target(&attempt.planned.target)),
    }
}

fn queue_status(status: &QueueStatus) -> api::QueueStatus {
    api::QueueStatus {
        position: status.position,
        estimated_wait: prost_types::Duration::try_from(status.estimated_wait).ok(),
    }
}

fn failure(failure: &Failure) -> api::Failure {
    api::Failure {
        reason: types::failure_reason(failure.reason),
        detail: failure.detail.clone(),
    }
}

pub fn handoff(handoff: &Handoff) -> api::Handoff {
    api::Handoff {
        id: handoff.id.clone(),
        request_id: handoff.request_id.clone(),
        state: state(handoff.state) as i32,
        conversation: Some(context::conversation(&handoff.conversation)),
        context: Some(context::context(&handoff.context)),
        target: Some(types::requested_target(&handoff.requested_target)),
        mode: types::mode(handoff.mode) as i32,
        customer_message: handoff.customer_message.clone(),
        customer_message_language: handoff.customer_message_language.clone(),
        create_time: Some(timestamp_of(handoff.created_at_ms)),
        update_time: Some(timestamp_of(handoff.updated_at_ms)),
        deadline: Some(timestamp_of(handoff.deadline_ms)),
        current_attempt: handoff.current_attempt.as_ref().map(attempt),
        queue_status: handoff.queue_status.as_ref().map(queue_status),
        failure: handoff.failure.as_ref().map(failure),
        last_sequence: handoff.last_sequence,
        decision: handoff.decision.as_ref().map(types::decision),
        wrap_up: handoff.wrap_up.as_ref().map(types::wrap_up),
        context_version: handoff.context_version,
        outcome: handoff.outcome().as_ref().map(types::outcome),
        callback: handoff
            .callback
            .as_ref()
            .map(|c| types::handoff_callback(c, handoff.state)),
    }
}

pub fn event(record: &EventRecord) -> api::HandoffEvent {
    api::HandoffEvent {
        handoff_id: record.handoff_id.clone(),
        sequence: record.sequence,
        kind: event_kind(record.kind) as i32,
        state: state(record.state) as i32,
        time: Some(timestamp_of(record.time_ms)),
        attempt: record.attempt.as_ref().map(attempt),
        queue_status: record.queue_status.as_ref().map(queue_status),
        failure: record.failure.as_ref().map(failure),
        detail: record.detail.clone(),
        wrap_up: record.wrap_up.as_ref().map(types::wrap_up),
        context_version: record.context_version.unwrap_or_default(),
    }
}

/// One ListHandoffs page: the handoffs it holds, and the id of the last one
/// when more follow.
#[derive(Debug)]
pub struct HandoffPage {
    pub handoffs: Vec<api::Handoff>,
    pub last_id: Option<String>,
}

/// A handoff too large for any response: raising the limit is the only way
/// to return it.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge {
    pub handoff_id: String,
    pub bytes: usize,
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "handoff {} is {} bytes encoded, more than a response may hold: the limit is limits.max_response_bytes = {}",
            self.handoff_id, self.bytes, self.limit
        )
    }
}

/// The room a page token takes in the response (field 2: a tag, a length
/// and at most 64 bytes of base64 of a UUID), kept free on every page.
const PAGE_TOKEN_BYTES: usize = 2 + 64;

/// Pages `handoffs` (as the store listed them, up to `page_size` + 1) by
/// count and by encoded size: at most `page_size` handoffs and
/// `max_response_bytes` in all, at least one handoff, so a page never
/// exceeds what the server may send. A first handoff that alone exceeds it
/// is an error naming the limit.
pub fn handoff_page(
    handoffs: &[Handoff],
    page_size: usize,
    max_response_bytes: usize,
) -> Result<HandoffPage, TooLarge> {
    let budget = max_response_bytes.saturating_sub(PAGE_TOKEN_BYTES);
    let mut page = Vec::new();
    let mut used = 0usize;
    for stored in handoffs.iter().take(page_size) {
        let item = handoff(stored);
        // Field 1 of ListHandoffsResponse, length-delimited.
        let bytes = prost::encoding::message::encoded_len(1, &item);
        if used + bytes > budget {
            if page.is_empty() {
                return Err(TooLarge {
                    handoff_id: stored.id.clone(),
                    bytes,
                    limit: max_response_bytes,
                });
            }
            break;
        }
        used += bytes;
        page.push(item);
    }
    let last_id = (page.len() < handoffs.len())
        .then(|| page.last().map(|h| h.id.clone()))
        .flatten();
    Ok(HandoffPage {
        handoffs: page,
        last_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_proto::types::v1 as pb;

    fn with_notes(bytes: usize) -> Handoff {
        Handoff {
            id: uuid::Uuid::now_v7().to_string(),
            tenant: "default".into(),
            request_id: "r".into(),
            request_fingerprint: "f".into(),
            context: context::encode_context(&pb::HandoffContext {
                summary: "s".into(),
                agent_notes: "n".repeat(bytes),
                ..Default::default()
            }),
            last_sequence: 1,
            ..Handoff::default()
        }
    }

    fn encoded(page: &HandoffPage) -> usize {
        use prost::Message;
        api::ListHandoffsResponse {
            handoffs: page.handoffs.clone(),
            next_page_token: "x".repeat(48),
        }
        .encoded_len()
    }

    #[test]
    fn a_page_stops_at_the_byte_budget_and_holds_at_least_one_handoff() {
        let limit = 278_528;
        let big = [with_notes(225_000), with_notes(225_000), with_notes(10)];
        let page = handoff_page(&big, 2, limit).expect("a page");
        assert_eq!(page.handoffs.len(), 1);
        assert_eq!(page.last_id.as_deref(), Some(big[0].id.as_str()));
        assert!(encoded(&page) <= limit);

        let page = handoff_page(&big[1..], 2, limit).expect("a page");
        assert_eq!(page.handoffs.len(), 2);
        assert_eq!(page.last_id, None, "nothing follows");
        assert!(encoded(&page) <= limit);

        // Small handoffs: the count bounds the page, a token says more follow.
        let small: Vec<Handoff> = (0..4).map(|_| with_notes(10)).collect();
        let page = handoff_page(&small[..3], 2, limit).expect("a page");
        assert_eq!(page.handoffs.len(), 2);
        assert_eq!(page.last_id.as_deref(), Some(small[1].id.as_str()));
    }

    #[test]
    fn a_handoff_larger_than_the_limit_is_an_error_naming_it() {
        let huge = [with_notes(300_000)];
        let error = handoff_page(&huge, 10, 278_528).expect_err("too large");
        assert_eq!(error.handoff_id, huge[0].id);
        assert!(
            error
                .to_string()
                .contains("limits.max_response_bytes = 278528"),
            "{error}"
        );
    }
}
