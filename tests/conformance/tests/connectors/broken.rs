//! A deliberately broken connector, written straight on tonic (the SDK
//! would not let it break these rules): it accepts anything, skips a
//! sequence number, sends two terminal events, stamps no run id, starts a
//! new run on every repeat, ignores cancels and deadlines, and serves
//! neither health nor reflection. The kit must fail exactly the checks
//! these breakages concern, and still pass the rest.

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use baton_conformance::Subject;
use baton_proto::connector::v1::connector_service_server::{
    ConnectorService, ConnectorServiceServer,
};
use baton_proto::connector::v1::*;
use baton_proto::types::v1::{FailureReason, TargetKind, TransferMode, target};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::common::{check, profile};

struct Broken;

fn event(sequence: u64, kind: TransferEventKind) -> Result<StartTransferResponse, Status> {
    Ok(StartTransferResponse {
        sequence,
        kind: kind as i32,
        time: Some(prost_types::Timestamp::from(SystemTime::now())),
        failure_reason: if kind == TransferEventKind::Failed {
            FailureReason::Busy as i32
        } else {
            0
        },
        // No run_id: a caller cannot tell a replay from a new run.
        ..Default::default()
    })
}

type Events = Pin<Box<dyn Stream<Item = Result<StartTransferResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConnectorService for Broken {
    async fn get_connector_info(
        &self,
        _request: Request<GetConnectorInfoRequest>,
    ) -> Result<Response<GetConnectorInfoResponse>, Status> {
        Ok(Response::new(GetConnectorInfoResponse {
            name: "broken".into(),
            version: "0.1.0".into(),
            target_kinds: vec![TargetKind::Queue as i32],
            transfer_modes: vec![TransferMode::Warm as i32],
            context_capabilities: Vec::new(),
            ..Default::default()
        }))
    }

    type StartTransferStream = Events;

    /// No validation at all; a new "transfer" on every call.
    async fn start_transfer(
        &self,
        request: Request<StartTransferRequest>,
    ) -> Result<Response<Events>, Status> {
        use TransferEventKind as K;
        let holds = matches!(
            request.into_inner().target.and_then(|t| t.kind),
            Some(target::Kind::Queue(queue)) if queue.name == "hold"
        );
        let stream: Events = if holds {
            // Rings until the caller hangs up: cancel and deadline ignored.
            Box::pin(tokio_stream::iter([event(1, K::Ringing)]).chain(tokio_stream::pending()))
        } else {
            // Sequence 2 skipped; COMPLETED then FAILED.
            Box::pin(tokio_stream::iter([
                event(1, K::Ringing),
                event(3, K::Connected),
                event(4, K::Completed),
                event(5, K::Failed),
            ]))
        };
        Ok(Response::new(stream))
    }

    async fn cancel_transfer(
        &self,
        _request: Request<CancelTransferRequest>,
    ) -> Result<Response<CancelTransferResponse>, Status> {
        Ok(Response::new(CancelTransferResponse {
            cancelled: false,
            ..Default::default()
        }))
    }

    type ConverseTransferStream =
        Pin<Box<dyn Stream<Item = Result<ConverseTransferResponse, Status>> + Send>>;

    async fn update_transfer(
        &self,
        _request: Request<UpdateTransferRequest>,
    ) -> Result<Response<UpdateTransferResponse>, Status> {
        Err(Status::unimplemented("broken"))
    }

    async fn converse_transfer(
        &self,
        _request: Request<tonic::Streaming<ConverseTransferRequest>>,
    ) -> Result<Response<Self::ConverseTransferStream>, Status> {
        Err(Status::unimplemented("broken does not relay chat"))
    }

    async fn get_availability(
        &self,
        _request: Request<GetAvailabilityRequest>,
    ) -> Result<Response<GetAvailabilityResponse>, Status> {
        Err(Status::unimplemented("broken does not report availability"))
    }
}

use tokio_stream::StreamExt as _;

#[tokio::test]
async fn a_broken_connector_fails_the_checks_it_breaks() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ConnectorServiceServer::new(Broken))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let profile = profile("broken", &[]);
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        check(Subject::Address(format!("http://{address}")), &profile),
    )
    .await
    .expect("the kit ends even against a connector that hangs");

    let mut failed = report.failed();
    failed.sort_unstable();
    let mut expected = vec![
        "health.serving",
        "health.connector_service_serving",
        "reflection.services_listed",
        "reflection.connector_service_described",
        // Accepts what it does not advertise.
        "capabilities.kind.phone_number.refused",
        "capabilities.kind.sip_uri.refused",
        "capabilities.mode.blind.refused",
        "capabilities.mode.attended.refused",
        // Accepts malformed requests.
        "invalid.missing_handoff_id",
        "invalid.missing_attempt",
        "invalid.missing_target",
        "invalid.route_target",
        "invalid.unspecified_mode",
        "invalid.missing_deadline",
        "invalid.missing_tenant",
        // Another tenant re-attaches to and cancels a transfer.
        "tenants.isolated",
        // A repeat is a new run (new times), not a replay.
        "idempotency.replay_while_running",
        "idempotency.replay_after_end",
        // Cancels are ignored.
        "cancel.at_stage.start",
        "cancel.at_stage.ringing",
        "cancel.any_attempt",
        // Deadlines are ignored.
        "deadline.expires",
        "deadline.already_passed",
        // The stream rules.
        "events.sequence_gapless",
        "events.one_terminal_last",
        "events.fields",
    ];
    expected.sort_unstable();
    assert_eq!(failed, expected, "\n{}", report.render_text());
    // What it does right is not failed: the kit is not failing everything.
    for passed in [
        "identity.info",
        "capabilities.kind.queue.works",
        "capabilities.mode.warm.works",
        "cancel.unknown_transfer",
    ] {
        assert!(
            crate::common::is_pass(&report, passed),
            "{passed}\n{}",
            report.render_text()
        );
    }
    // It advertises no context limits, and without a launched process
    // there is no restart or shutdown to check.
    assert_eq!(
        report.skipped(),
        [
            "context.at_limits_accepted",
            "context.oversize_refused",
            "restart.recovers_from_journal",
            "shutdown.drains"
        ]
    );
    let reason = report
        .get("events.one_terminal_last")
        .expect("ran")
        .outcome
        .text()
        .to_owned();
    assert!(reason.contains("2 terminal events"), "{reason}");
}
