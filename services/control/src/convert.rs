//! Domain values to their `baton.handoff.v1` messages.

use baton_proto::handoff::v1 as api;

use crate::dispatch::timestamp_of;
use crate::domain::{Attempt, EventKind, EventRecord, Failure, Handoff, HandoffState, QueueStatus};

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
        EventKind::Completed => api::HandoffEventKind::Completed,
        EventKind::Failed => api::HandoffEventKind::Failed,
        EventKind::Cancelled => api::HandoffEventKind::Cancelled,
    }
}

fn attempt(attempt: &Attempt) -> api::TargetAttempt {
    api::TargetAttempt {
        attempt: attempt.number,
        connector: attempt.planned.connector.clone(),
        target: Some(attempt.planned.target.to_proto()),
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
        reason: failure.reason as i32,
        detail: failure.detail.clone(),
    }
}

pub fn handoff(handoff: &Handoff) -> api::Handoff {
    api::Handoff {
        id: handoff.id.clone(),
        request_id: handoff.request_id.clone(),
        state: state(handoff.state) as i32,
        conversation: Some(handoff.conversation.clone()),
        context: Some(handoff.context.clone()),
        target: Some(handoff.requested_target.clone()),
        mode: handoff.mode.to_proto() as i32,
        customer_message: handoff.customer_message.clone(),
        customer_message_language: handoff.customer_message_language.clone(),
        create_time: Some(timestamp_of(handoff.created_at_ms)),
        update_time: Some(timestamp_of(handoff.updated_at_ms)),
        deadline: Some(timestamp_of(handoff.deadline_ms)),
        current_attempt: handoff.current_attempt.as_ref().map(attempt),
        queue_status: handoff.queue_status.as_ref().map(queue_status),
        failure: handoff.failure.as_ref().map(failure),
        last_sequence: handoff.last_sequence,
        decision: handoff.decision.clone(),
        wrap_up: handoff.wrap_up.clone(),
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
        wrap_up: record.wrap_up.clone(),
    }
}
