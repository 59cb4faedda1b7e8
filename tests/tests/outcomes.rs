//! Did the handoffs work? Through the real binaries (the control service
//! and the scripted connector): a runtime records the judgements of a
//! human Baton cannot ask at wrap-up (once; only after a human had the
//! customer and the handoff ended), and GetOutcomeMetrics counts the
//! window's handoffs: who reached a human and how fast, who gave up
//! waiting, who failed, and the humans' answers, per route, trigger and
//! connector.

mod common;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::sample_request;
use common::{Stack, bad_fields, queue, watch_until};
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Records, for `id`, whether the context was sufficient (the customer
/// did not repeat; the escalation was needed): the outcome stored, or the
/// refusal.
async fn record(
    client: &mut HandoffServiceClient<Channel>,
    id: &str,
    context_sufficient: pb::Judgement,
) -> Result<Outcome, tonic::Status> {
    let request = RecordOutcomeRequest {
        handoff_id: id.to_owned(),
        context_sufficient: context_sufficient as i32,
        customer_repeated: pb::Judgement::No as i32,
        escalation_needed: pb::Judgement::Yes as i32,
    };
    let handoff = client.record_outcome(request).await?.into_inner().handoff;
    Ok(handoff.and_then(|h| h.outcome).expect("the outcome"))
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

#[tokio::test]
async fn runtimes_record_outcomes_and_supervisors_read_what_the_handoffs_achieved() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    async fn create(
        client: &mut HandoffServiceClient<Channel>,
        request_id: &str,
        target: pb::target::Kind,
    ) -> String {
        client
            .create_handoff(sample_request(request_id, target))
            .await
            .expect("create")
            .into_inner()
            .handoff
            .expect("handoff")
            .id
    }
    // Reaches a human on the route's second target, the first being busy.
    let connected = create(
        &mut client,
        "outcome-connected",
        pb::target::Kind::Route("fallback".into()),
    )
    .await;
    // Fails: the only target is busy.
    let failed = create(&mut client, "outcome-failed", queue("busy")).await;
    // Rings until the runtime gives up.
    let abandoned = create(&mut client, "outcome-abandoned", queue("hold")).await;
    watch_until(&mut client, &connected, HandoffEventKind::Completed).await;
    watch_until(&mut client, &failed, HandoffEventKind::Failed).await;
    watch_until(&mut client, &abandoned, HandoffEventKind::Ringing).await;

    // Nobody judges a handoff no human had, nor one still under way.
    for id in [&abandoned, &failed] {
        let refused = record(&mut client, id, pb::Judgement::Yes)
            .await
            .expect_err("not judgeable");
        assert_eq!(
            refused.code(),
            tonic::Code::FailedPrecondition,
            "{refused:?}"
        );
        assert_eq!(reason(&refused), "NOT_JUDGEABLE");
    }
    client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: abandoned.clone(),
            ..Default::default()
        })
        .await
        .expect("cancel");

    // A judgement answers at least one question.
    let empty = client
        .record_outcome(RecordOutcomeRequest {
            handoff_id: connected.clone(),
            ..Default::default()
        })
        .await
        .expect_err("nothing answered");
    assert_eq!(bad_fields(&empty), ["context_sufficient"]);

    let outcome = record(&mut client, &connected, pb::Judgement::Yes)
        .await
        .expect("record");
    assert_eq!(outcome.source(), OutcomeSource::Recorded);
    assert_eq!(outcome.context_sufficient(), pb::Judgement::Yes);
    assert_eq!(outcome.customer_repeated(), pb::Judgement::No);
    assert_eq!(outcome.escalation_needed(), pb::Judgement::Yes);
    // A retry is the same judgement; other answers are refused.
    let retried = record(&mut client, &connected, pb::Judgement::Yes).await;
    assert_eq!(retried.expect("retry"), outcome);
    let changed = record(&mut client, &connected, pb::Judgement::No)
        .await
        .expect_err("judged already");
    assert_eq!(changed.code(), tonic::Code::AlreadyExists, "{changed:?}");
    assert_eq!(reason(&changed), "OUTCOME_RECORDED");
    let read = client
        .get_handoff(GetHandoffRequest {
            handoff_id: connected.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .handoff
        .expect("handoff");
    assert_eq!(read.outcome, Some(outcome));

    let metrics = client
        .get_outcome_metrics(GetOutcomeMetricsRequest::default())
        .await
        .expect("metrics")
        .into_inner();
    assert!(!metrics.truncated);
    let total = metrics.total.expect("total");
    assert_eq!(
        (
            total.handoffs,
            total.reached_human,
            total.abandoned,
            total.failed
        ),
        (3, 1, 1, 1),
        "{total:?}"
    );
    assert_eq!(total.abandon_rate, Some(1.0 / 3.0));
    assert!(total.time_to_human_p50.is_some() && total.time_to_human_p95.is_some());
    let sufficient = total.context_sufficient.expect("counts");
    assert_eq!(
        (sufficient.yes, sufficient.no, sufficient.rate),
        (1, 0, Some(1.0))
    );
    let repeated = total.customer_repeated.expect("counts");
    assert_eq!(
        (repeated.yes, repeated.no, repeated.rate),
        (0, 1, Some(0.0))
    );

    let by_route: Vec<(String, i32, String, u64)> = metrics
        .groups
        .iter()
        .map(|g| {
            let figures = g.figures.as_ref().expect("figures");
            (
                g.route.clone(),
                g.trigger,
                g.connector.clone(),
                figures.handoffs,
            )
        })
        .collect();
    let explicit = pb::EscalationKind::ExplicitRequest as i32;
    assert_eq!(by_route.len(), 2, "{by_route:?}");
    assert_eq!(by_route[0], (String::new(), explicit, "script".into(), 2));
    assert_eq!(
        by_route[1],
        ("fallback".into(), explicit, "script".into(), 1)
    );
    let fallback = metrics.groups[1].figures.as_ref().expect("figures");
    assert_eq!(fallback.reached_human, 1);
    assert_eq!(fallback.abandon_rate, Some(0.0));

    // A window before any handoff counts none; a backwards one is refused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let empty = client
        .get_outcome_metrics(GetOutcomeMetricsRequest {
            since: Some(prost_types::Timestamp {
                seconds: now - 7200,
                nanos: 0,
            }),
            until: Some(prost_types::Timestamp {
                seconds: now - 3600,
                nanos: 0,
            }),
        })
        .await
        .expect("metrics")
        .into_inner();
    let nothing = empty.total.expect("total");
    assert_eq!((nothing.handoffs, nothing.abandon_rate), (0, None));
    let backwards = client
        .get_outcome_metrics(GetOutcomeMetricsRequest {
            since: Some(prost_types::Timestamp {
                seconds: now,
                nanos: 0,
            }),
            until: Some(prost_types::Timestamp {
                seconds: now - 60,
                nanos: 0,
            }),
        })
        .await
        .expect_err("backwards");
    assert_eq!(bad_fields(&backwards), ["since"]);
}
