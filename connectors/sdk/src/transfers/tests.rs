use super::*;
use baton_proto::connector::v1::ContextEnvelope;
use baton_proto::types::v1::{QueueTarget, Target, TargetKind, TransferMode, target};

/// Rings and then holds until cancelled.
struct Holding;

impl Connector for Holding {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("holding", "0")
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm])
    }

    async fn start(&self, _transfer: Transfer, events: TransferEvents) {
        events.ringing("").await;
        std::future::pending::<()>().await;
    }
}

pub(super) fn request(handoff_id: &str) -> StartTransferRequest {
    StartTransferRequest {
        handoff_id: handoff_id.into(),
        attempt: 1,
        target: Some(Target {
            kind: Some(target::Kind::Queue(QueueTarget {
                name: "q".into(),
                ..Default::default()
            })),
        }),
        mode: TransferMode::Warm as i32,
        envelope: Some(ContextEnvelope::default()),
        deadline: Some((SystemTime::now() + Duration::from_secs(60)).into()),
    }
}

#[tokio::test]
async fn beyond_the_running_bound_new_transfers_are_refused_with_retry_info() {
    let transfers = Transfers::with_max_active(Arc::new(Holding), None, 2);
    transfers.start(request("a")).await.expect("first");
    transfers.start(request("b")).await.expect("second");
    let refused = transfers.start(request("c")).await.expect_err("full");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let details = tonic_types::StatusExt::get_error_details(&refused);
    assert!(details.retry_info().is_some());
    // Re-attaching to a running transfer is never refused.
    transfers.start(request("a")).await.expect("re-attach");
    // An ended transfer frees its place.
    assert_eq!(transfers.cancel("a", 1).await, CancelOutcome::Cancelled);
    for _ in 0..100 {
        if transfers.active() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    transfers.start(request("c")).await.expect("room again");
}
