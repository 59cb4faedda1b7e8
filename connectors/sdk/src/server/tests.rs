use std::time::Duration;

use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::types::v1::{FailureReason, Target, TargetKind, TransferMode, target};
use tokio::sync::{Notify, oneshot};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::*;
use crate::{Transfer, TransferEvents, testing};

/// Rings, then connects and completes once released; records cancels.
struct Gated {
    release: Arc<Notify>,
    cancels: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Connector for Gated {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("gated", "0")
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm])
    }

    async fn start(&self, _transfer: Transfer, events: TransferEvents) {
        events.ringing("").await;
        self.release.notified().await;
        events.connected("").await;
        events.completed("").await;
    }

    async fn cancel(&self, transfer: &Transfer) {
        let mut cancels = self.cancels.lock().expect("cancels");
        cancels.push(transfer.handoff_id.clone());
    }
}

fn gated() -> (Gated, Arc<Notify>, Arc<std::sync::Mutex<Vec<String>>>) {
    let release = Arc::new(Notify::new());
    let cancels = Arc::default();
    let connector = Gated {
        release: release.clone(),
        cancels: Arc::clone(&cancels),
    };
    (connector, release, cancels)
}

fn request(handoff_id: &str) -> StartTransferRequest {
    testing::transfer_request(
        handoff_id,
        testing::queue("q", &[]),
        ContextEnvelope::default(),
    )
}

/// Serves `connector` on a free loopback port until the returned sender
/// fires (or is dropped).
async fn serving(
    connector: impl Connector,
    options: ServeOptions,
) -> (
    ConnectorServiceClient<Channel>,
    Channel,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let bound = bind(connector, options).await.expect("binds");
    let channel = Channel::from_shared(format!("http://{}", bound.addr))
        .expect("uri")
        .connect_lazy();
    let (stop, stopped) = oneshot::channel();
    let served = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    (
        ConnectorServiceClient::new(channel.clone()),
        channel,
        stop,
        served,
    )
}

/// Starts `request`, which the server must accept; its stream of events.
async fn started(
    client: &mut ConnectorServiceClient<Channel>,
    request: StartTransferRequest,
) -> tonic::Streaming<StartTransferResponse> {
    client
        .start_transfer(request)
        .await
        .expect("started")
        .into_inner()
}

/// CancelTransfer of `handoff_id` on behalf of `tenant`, which the server
/// must answer; its answer.
async fn answered_cancel(
    client: &mut ConnectorServiceClient<Channel>,
    tenant: &str,
    handoff_id: &str,
    attempt: u32,
) -> CancelTransferResponse {
    client
        .cancel_transfer(cancel_of(tenant, handoff_id, attempt))
        .await
        .expect("answered")
        .into_inner()
}

fn cancel_of(tenant: &str, handoff_id: &str, attempt: u32) -> CancelTransferRequest {
    CancelTransferRequest {
        handoff_id: handoff_id.into(),
        attempt,
        tenant: tenant.into(),
    }
}

fn options() -> ServeOptions {
    ServeOptions::new("127.0.0.1:0".parse().expect("address"))
}

async fn wait_not_serving(channel: Channel) {
    let mut health = HealthClient::new(channel);
    for _ in 0..500 {
        let status = health
            .check(HealthCheckRequest {
                service: SERVICE_NAME.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        if status == ServingStatus::NotServing as i32 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still serving");
}

async fn next(
    stream: &mut tonic::Streaming<StartTransferResponse>,
) -> Result<Option<StartTransferResponse>, Status> {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event in time")
}

#[tokio::test]
async fn a_draining_connector_refuses_new_transfers_and_serves_running_ones_to_their_end() {
    let (connector, release, cancels) = gated();
    let (mut client, channel, stop, served) =
        serving(connector, options().drain_timeout(Duration::from_secs(30))).await;
    let mut running = started(&mut client, request("a")).await;
    let ringing = next(&mut running).await.expect("ok").expect("ringing");
    assert_eq!(ringing.kind(), TransferEventKind::Ringing);

    stop.send(()).expect("stops");
    wait_not_serving(channel).await;
    let refused = client
        .start_transfer(request("b"))
        .await
        .expect_err("draining");
    assert_eq!(refused.code(), Code::Unavailable);
    // Re-attaching to a running transfer is still served.
    let mut again = started(&mut client, request("a")).await;
    assert_eq!(next(&mut again).await.expect("ok"), Some(ringing));

    release.notify_one();
    for stream in [&mut running, &mut again] {
        let mut kinds = Vec::new();
        while let Some(event) = next(stream).await.expect("ok") {
            kinds.push(event.kind());
        }
        assert_eq!(
            kinds.last(),
            Some(&TransferEventKind::Completed),
            "{kinds:?}"
        );
    }
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("stops once the last transfer ended, before the drain timeout")
        .expect("task")
        .expect("served");
    assert!(cancels.lock().expect("cancels").is_empty());
}

#[tokio::test]
async fn after_the_drain_timeout_running_transfers_are_handed_over_through_the_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transfers.sqlite3");
    let (connector, _release, cancels) = gated();
    let (mut client, _channel, stop, served) = serving(
        connector,
        options()
            .journal(&path)
            .drain_timeout(Duration::from_millis(200)),
    )
    .await;
    let mut running = started(&mut client, request("a")).await;
    let ringing = next(&mut running).await.expect("ok").expect("ringing");
    stop.send(()).expect("stops");
    let ended = next(&mut running).await.expect_err("ends unavailable");
    assert_eq!(ended.code(), Code::Unavailable);
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("stops after the drain timeout")
        .expect("task")
        .expect("served");
    assert!(
        cancels.lock().expect("cancels").is_empty(),
        "handed over, not cancelled"
    );

    // The next process resumes it when the control service re-attaches.
    let (connector, _release, cancels) = gated();
    let (mut client, _channel, _stop, _served) = serving(connector, options().journal(&path)).await;
    let mut resumed = started(&mut client, request("a")).await;
    let failed = next(&mut resumed).await.expect("ok").expect("failed");
    assert_eq!(failed.kind(), TransferEventKind::Failed);
    assert_eq!(failed.failure_reason(), FailureReason::Interrupted);
    assert_ne!(failed.run_id, ringing.run_id);
    assert_eq!(*cancels.lock().expect("cancels"), ["a"]);
    let outcome = answered_cancel(&mut client, "acme", "a", 0).await;
    assert_eq!(outcome.outcome(), CancelOutcome::AlreadyEnded);
    assert!(!outcome.cancelled);
    let outcome = answered_cancel(&mut client, "acme", "unknown", 1).await;
    assert_eq!(outcome.outcome(), CancelOutcome::Unknown);
}

#[tokio::test]
async fn bind_refuses_an_empty_journal_file_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transfers.sqlite3");
    std::fs::write(&path, b"").expect("written");
    let (connector, _, _) = gated();
    let error = bind(connector, options().journal(&path))
        .await
        .expect_err("refused");
    let error = format!("{error:#}");
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("empty"), "{error}");
}

fn of_tenant(tenant: &str, handoff_id: &str) -> StartTransferRequest {
    StartTransferRequest {
        tenant: tenant.into(),
        ..request(handoff_id)
    }
}

fn field_of(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_dedicated_connector_refuses_other_tenants_before_the_connector_sees_them() {
    let (connector, release, cancels) = gated();
    let (mut client, _channel, _stop, _served) =
        serving(connector, options().tenants(vec!["acme".into()])).await;

    for (tenant, handoff_id) in [("globex", "g"), ("", "none")] {
        let refused = client
            .start_transfer(of_tenant(tenant, handoff_id))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{tenant:?}");
        assert_eq!(field_of(&refused), ["tenant"], "{tenant:?}");
        let refused = client
            .cancel_transfer(cancel_of(tenant, handoff_id, 0))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{tenant:?}");
    }

    let mut accepted = started(&mut client, of_tenant("acme", "a")).await;
    assert_eq!(
        next(&mut accepted)
            .await
            .expect("ok")
            .expect("ringing")
            .kind(),
        TransferEventKind::Ringing
    );
    release.notify_one();
    assert!(cancels.lock().expect("cancels").is_empty());
}

#[tokio::test]
async fn a_shared_connector_keeps_each_tenants_transfers_to_that_tenant() {
    let (connector, _release, cancels) = gated();
    let (mut client, _channel, _stop, _served) = serving(connector, options()).await;
    let mut running = started(&mut client, of_tenant("acme", "a")).await;
    next(&mut running).await.expect("ok").expect("ringing");

    // Another tenant naming the same handoff and attempt neither
    // re-attaches to it nor cancels it.
    let refused = client
        .start_transfer(of_tenant("globex", "a"))
        .await
        .expect_err("another tenant's transfer");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(field_of(&refused), ["tenant"]);
    let outcome = answered_cancel(&mut client, "globex", "a", 0).await;
    assert_eq!(outcome.outcome(), CancelOutcome::Unknown);
    assert!(cancels.lock().expect("cancels").is_empty());

    // Its own tenant still cancels it.
    let outcome = answered_cancel(&mut client, "acme", "a", 0).await;
    assert_eq!(outcome.outcome(), CancelOutcome::Cancelled);
    assert_eq!(*cancels.lock().expect("cancels"), ["a"]);
}

/// Reports availability for the queues it knows: "support" of tenant
/// acme, with two agents of whom one is free.
struct Staffed {
    advertised: bool,
}

impl Connector for Staffed {
    fn info(&self) -> ConnectorInfo {
        let info = ConnectorInfo::new("staffed", "0")
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm]);
        if self.advertised {
            info.availability()
        } else {
            info
        }
    }

    async fn start(&self, _transfer: Transfer, events: TransferEvents) {
        events
            .failed(FailureReason::Rejected, "not in this test")
            .await;
    }

    async fn availability(
        &self,
        query: crate::AvailabilityQuery,
    ) -> Result<crate::Availability, Status> {
        match (&query.tenant[..], &query.target) {
            ("acme", crate::TransferTarget::Queue { name, .. }) if name == "support" => {
                Ok(crate::Availability {
                    basis: crate::AvailabilityBasis::Exact as i32,
                    agents_signed_in: Some(2),
                    agents_available: Some(1),
                    contacts_waiting: Some(0),
                    position: Some(1),
                    estimated_wait: Some(prost_types::Duration::default()),
                    wait_estimate: crate::WaitEstimateMethod::HandleTimes as i32,
                })
            }
            _ => Err(Status::not_found("no such queue")),
        }
    }
}

fn availability_of(tenant: &str, kind: target::Kind) -> GetAvailabilityRequest {
    GetAvailabilityRequest {
        target: Some(Target { kind: Some(kind) }),
        tenant: tenant.into(),
        language: "en".into(),
        channel: 0,
    }
}

#[tokio::test]
async fn availability_is_asked_only_of_a_connector_that_advertises_it() {
    let (mut client, _channel, _stop, _served) =
        serving(Staffed { advertised: false }, options()).await;
    let info = client
        .get_connector_info(GetConnectorInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert!(!info.availability);
    let refused = client
        .get_availability(availability_of("acme", testing::queue("support", &[])))
        .await
        .expect_err("not advertised");
    assert_eq!(refused.code(), Code::Unimplemented);
}

#[tokio::test]
async fn availability_checks_the_tenant_and_the_target_before_the_connector_answers() {
    let (mut client, _channel, _stop, _served) = serving(
        Staffed { advertised: true },
        options().tenants(vec!["acme".into()]),
    )
    .await;
    let info = client
        .get_connector_info(GetConnectorInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert!(info.availability);

    let answer = client
        .get_availability(availability_of("acme", testing::queue("support", &[])))
        .await
        .expect("answered")
        .into_inner()
        .availability
        .expect("availability");
    assert_eq!(answer.basis(), crate::AvailabilityBasis::Exact);
    assert_eq!(
        (
            answer.agents_signed_in,
            answer.agents_available,
            answer.position
        ),
        (Some(2), Some(1), Some(1))
    );

    let unknown = client
        .get_availability(availability_of("acme", testing::queue("billing", &[])))
        .await
        .expect_err("unknown queue");
    assert_eq!(unknown.code(), Code::NotFound);

    for tenant in ["globex", ""] {
        let refused = client
            .get_availability(availability_of(tenant, testing::queue("support", &[])))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{tenant:?}");
        assert_eq!(field_of(&refused), ["tenant"], "{tenant:?}");
    }

    let route = target::Kind::Route("sales".into());
    let refused = client
        .get_availability(availability_of("acme", route))
        .await
        .expect_err("a route");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(field_of(&refused), ["target.route"]);

    let phone = target::Kind::PhoneNumber("+14155550100".into());
    let refused = client
        .get_availability(availability_of("acme", phone))
        .await
        .expect_err("a kind not served");
    assert_eq!(refused.code(), Code::Unimplemented);
}
