//! Requests for connector tests (the `test-support` feature, and this
//! crate's own tests): the fields every test sets the same way written
//! once, so that a test names only what it is about.

use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::{ContextEnvelope, ContextReference, StartTransferRequest};
use baton_proto::types::v1::{QueueTarget, Target, TransferMode, target};

/// The tenant of every request built here.
pub const TENANT: &str = "acme";

/// A first attempt of `handoff_id` (tenant [`TENANT`]), warm, to `target`,
/// carrying `envelope`, due a minute from now.
pub fn transfer_request(
    handoff_id: &str,
    target: target::Kind,
    envelope: ContextEnvelope,
) -> StartTransferRequest {
    StartTransferRequest {
        tenant: TENANT.into(),
        handoff_id: handoff_id.into(),
        attempt: 1,
        target: Some(Target { kind: Some(target) }),
        mode: TransferMode::Warm as i32,
        envelope: Some(envelope),
        deadline: Some((SystemTime::now() + Duration::from_secs(60)).into()),
        disclosure: None,
    }
}

/// The queue `name`, asking for `skills`.
pub fn queue(name: &str, skills: &[&str]) -> target::Kind {
    target::Kind::Queue(QueueTarget {
        name: name.into(),
        skills: skills.iter().map(|skill| (*skill).into()).collect(),
    })
}

/// The reference to `handoff_id`'s context as the control service at
/// `base` (e.g. `https://baton.example`) would issue it with `token`.
pub fn context_reference(base: &str, handoff_id: &str, token: &str) -> ContextReference {
    ContextReference {
        handoff_id: handoff_id.into(),
        token: token.into(),
        context_url: format!("{base}/v1/handoffs/{handoff_id}/context?token=t"),
        screen_pop_url: format!("{base}/v1/handoffs/{handoff_id}/screen-pop?token=t"),
    }
}
