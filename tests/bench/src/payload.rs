//! The payload of the API scenarios: the tests' sample escalation (context,
//! entities, transcript), to a queue.

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;

/// The sample escalation to `queue`, idempotency key `request_id`.
pub fn create_request(request_id: String, queue: &str) -> CreateHandoffRequest {
    baton_tests::sample_request(
        &request_id,
        pb::target::Kind::Queue(pb::QueueTarget {
            name: queue.into(),
            skills: vec![],
        }),
    )
}
