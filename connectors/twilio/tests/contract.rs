//! The Twilio connector against a local server that implements the part of
//! Twilio's REST API and call behaviour it uses, as Twilio documents it:
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, HTTP
//!   Basic auth with the account SID and auth token or an API key SID and
//!   secret (401, error 20003, otherwise), form-encoded parameters of the
//!   Calls resource only, `Twiml` of at most 4000 characters; 404 with
//!   error 20404 for an unknown call, 400 with 21220 for a call no longer in
//!   progress, 400 with 12100 for TwiML that does not parse or uses verbs,
//!   nouns or attributes Twilio does not have; 429 with 20429 beyond the
//!   account's rate limit. Errors carry Twilio's JSON error body.
//! - then it plays the call as Twilio would: the `<Number>`/`<Sip>` status
//!   callbacks for the events asked for, Dial's `action`, or Enqueue's
//!   `action` with the `QueueResult`, each POSTed form-encoded with a valid
//!   `X-Twilio-Signature`, and checks the TwiML the connector answers.
//!   SIP URI header problems Twilio reports as warnings (13252 header name,
//!   21227 headers part of 1024 characters or more) are recorded.
//! - `GET /v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics`
//!   and `…/CumulativeStatistics` (GetAvailability), Basic auth, only the
//!   documented query parameters, a TaskChannel the workspace has, 404
//!   (20404) for a workspace or TaskQueue it does not have; see
//!   `common/statistics.rs`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_connector_sdk::testing::{
    self, availability, completed_after_rate_limit_waits, connector_info, kinds,
};
use baton_connector_twilio::signature;
use baton_proto::connector::v1::{StartTransferResponse, TransferEventKind};
use baton_proto::types::v1::{
    Availability, AvailabilityBasis, Channel, FailureReason, WaitEstimateMethod, target,
};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_queue_transfer_enqueues_a_flex_task_with_the_context_and_connects_when_bridged() {
    let call = call_sid(1);
    let (twilio, api) = serve_call(&call, &[]).await;
    let (grpc, callbacks) = start_connector_with_callbacks(config(api)).await;
    *twilio.event_callback_url.lock().expect("lock") =
        Some(format!("http://{callbacks}/v1/taskrouter/events"));

    let events = transfer(grpc, request("h-queue", &call, queue("billing"))).await;
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::Queued,
            TransferEventKind::Offered,
            TransferEventKind::Answered,
            TransferEventKind::ContextDelivered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    let updates = twilio.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].call_sid, call);
    let Instruction::Enqueue {
        workflow_sid,
        attributes,
        priority,
        ..
    } = &updates[0].instruction
    else {
        panic!("not an Enqueue: {}", updates[0].twiml);
    };
    assert_eq!(workflow_sid, WORKFLOW_SID);
    assert_eq!(*priority, 7);
    assert_eq!(attributes["summary"], "Charged twice in March");
    assert_eq!(attributes["baton_handoff_id"], "h-queue");
    assert_eq!(attributes["queue"], "billing");
    assert_eq!(attributes["skills"], json!(["disputes"]));
    assert!(
        attributes["baton_screen_pop_url"]
            .as_str()
            .expect("screen pop")
            .contains("/screen-pop")
    );
    assert!(
        !updates[0].twiml.contains("+14155550123"),
        "the caller's number is sensitive"
    );
    // The agent's acceptance connected the transfer, not the call's end.
    let connected = events
        .iter()
        .find(|e| e.kind == TransferEventKind::Connected as i32)
        .expect("connected");
    assert!(
        connected.detail.contains("bridged to the agent"),
        "{}",
        connected.detail
    );
    // The call ends after the bridged conversation instead of holding.
    let delivered = twilio.delivered_at_least(4).await;
    assert_eq!(delivered.len(), 4);
    assert!(delivered.iter().all(|d| d.status == 200), "{delivered:?}");
    assert!(
        delivered[3].body.contains("<Hangup/>"),
        "{}",
        delivered[3].body
    );
    // The wait request's figures, and TwiML fit for a waiting caller.
    let queued = &events[0];
    assert_eq!(queued.queue_position, 2);
    assert_eq!(
        queued.estimated_wait,
        Some(prost_types::Duration {
            seconds: 45,
            nanos: 0
        })
    );
    assert!(matches!(
        parse_twiml(&delivered[0].body, &Mutex::default()),
        Ok(Instruction::Other)
    ));
}

#[tokio::test]
async fn a_sip_transfer_carries_context_headers_and_follows_every_progress_callback() {
    let call = call_sid(2);
    let (twilio, api) = serve_call(&call, &[]).await;
    let mut config = config(api);
    // The auth token, not an API key.
    config.credentials.api_key_sid = None;
    config.credentials.api_key_secret = None;
    let grpc = start_connector(config).await;

    let target = target::Kind::SipUri("sip:agent@pbx.example.com;transport=tls".into());
    let events = transfer(grpc, request("h-sip", &call, target)).await;
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::Offered,
            TransferEventKind::Ringing,
            TransferEventKind::Answered,
            TransferEventKind::ContextDelivered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    let updates = twilio.updates();
    let Instruction::Dial { target, events, .. } = &updates[0].instruction else {
        panic!("not a Dial: {}", updates[0].twiml);
    };
    assert!(
        target.starts_with("sip:agent@pbx.example.com;transport=tls?"),
        "{target}"
    );
    for header in [
        "X-Baton-Handoff-Id=h-sip",
        "X-Baton-Token=signed.token",
        "X-Baton-Intent=billing.dispute",
        "X-Baton-Reason=explicit_request",
        // "signed.token" in hex, then ;encoding=hex;purpose=isdn-uui escaped.
        "User-to-User=7369676e65642e746f6b656e%3Bencoding%3Dhex%3Bpurpose%3Disdn-uui",
    ] {
        assert!(target.contains(header), "{header} missing from {target}");
    }
    assert_eq!(events, &["initiated", "ringing", "answered", "completed"]);
    assert!(twilio.warnings.lock().expect("lock").is_empty());
    let delivered = twilio.delivered_at_least(5).await;
    assert!(delivered.iter().all(|d| d.status == 200), "{delivered:?}");
}

#[tokio::test]
async fn a_busy_or_unanswered_number_fails_and_the_caller_holds_for_the_next_target() {
    for (n, number, outcome, reason) in [
        (3, "+14155550111", Outcome::Busy, FailureReason::Busy),
        (
            4,
            "+14155550112",
            Outcome::NoAnswer,
            FailureReason::NoAnswer,
        ),
    ] {
        let call = call_sid(n);
        let (twilio, api) = serve_call(&call, &[(number, outcome)]).await;
        let grpc = start_connector(config(api)).await;

        let target = target::Kind::PhoneNumber(number.into());
        let events = transfer(grpc, request("h-unreached", &call, target)).await;
        assert_eq!(
            kinds(&events),
            [
                TransferEventKind::Offered,
                TransferEventKind::Ringing,
                TransferEventKind::Failed
            ],
            "{outcome:?}"
        );
        assert_eq!(events[2].failure_reason, reason as i32, "{outcome:?}");
        let updates = twilio.updates();
        assert!(
            matches!(&updates[0].instruction, Instruction::Dial { target, .. } if target == number)
        );
        // Dial's action is answered with TwiML that keeps the caller on the line.
        let action = twilio
            .delivered_at_least(4)
            .await
            .into_iter()
            .find(|d| d.params.iter().any(|(k, _)| k == "DialCallStatus"))
            .expect("Dial's action was requested");
        assert!(action.url.ends_with("/dial"), "{}", action.url);
        assert!(action.body.contains("<Pause"), "{}", action.body);
        parse_twiml(&action.body, &Mutex::default()).expect("valid TwiML");
    }
}

#[tokio::test]
async fn twilio_refusals_fail_the_transfer_cleanly_with_twilios_error() {
    let ended = call_sid(5);
    let twilio = twilio(&[(ended.clone(), "completed")], &[], None);
    let api = start_twilio(twilio.clone()).await;
    let grpc = start_connector(config(api)).await;

    let number = || target::Kind::PhoneNumber("+14155550100".into());
    // Each ends with one FAILED (a QUEUED may precede it: the requests
    // follow each other faster than the account's rate).
    let failed = |events: &[StartTransferResponse]| {
        assert_eq!(
            kinds(events).last(),
            Some(&TransferEventKind::Failed),
            "{events:?}"
        );
        assert!(
            kinds(events)[..events.len() - 1]
                .iter()
                .all(|k| *k == TransferEventKind::Queued)
        );
        events.last().expect("terminal").clone()
    };
    let unknown = failed(&transfer(grpc, request("h-unknown", &call_sid(4), number())).await);
    assert_eq!(unknown.failure_reason, FailureReason::Unreachable as i32);
    assert!(unknown.detail.contains("20404"), "{}", unknown.detail);

    let gone = failed(&transfer(grpc, request("h-ended", &ended, number())).await);
    assert_eq!(gone.failure_reason, FailureReason::Unreachable as i32);
    assert!(gone.detail.contains("21220"), "{}", gone.detail);

    let no_call = failed(&transfer(grpc, request("h-nocall", "not-a-call-sid", number())).await);
    assert_eq!(no_call.failure_reason, FailureReason::Unsupported as i32);

    // Wrong credentials: Twilio's 401 with 20003.
    let mut wrong = config(api);
    wrong.credentials.api_key_secret = Some("not-the-secret".into());
    let grpc = start_connector(wrong).await;
    let call = call_sid(6);
    twilio
        .calls
        .lock()
        .expect("lock")
        .insert(call.clone(), "in-progress");
    let refused = failed(&transfer(grpc, request("h-auth", &call, number())).await);
    assert_eq!(refused.failure_reason, FailureReason::ConnectorError as i32);
    assert!(refused.detail.contains("20003"), "{}", refused.detail);
    assert!(twilio.updates().is_empty());
}

#[tokio::test]
async fn the_contract_server_refuses_requests_twilio_would_refuse() {
    let call = call_sid(7);
    let (twilio, api) = serve_call(&call, &[("+14155550100", Outcome::Silent)]).await;
    let url = format!("http://{api}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call}.json");
    let client = reqwest::Client::new();
    let send = |body: String, content_type: &'static str, auth: bool| {
        let mut request = client
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if auth {
            request = request.basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN));
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let body: Value = serde_json::from_str(&response.text().await.expect("body"))
                .expect("Twilio error JSON");
            (status, body["code"].as_u64().unwrap_or_default())
        }
    };
    let form = |twiml: &str| serde_urlencoded::to_string([("Twiml", twiml)]).expect("form");
    let good = "<Response><Dial><Number>+14155550100</Number></Dial></Response>";
    assert_eq!(
        send(form(good), "application/x-www-form-urlencoded", false).await,
        (401, 20003)
    );
    assert_eq!(
        send(form(good), "application/json", true).await,
        (400, 20001)
    );
    assert_eq!(
        send(
            format!("{}&Color=blue", form(good)),
            "application/x-www-form-urlencoded",
            true
        )
        .await,
        (400, 20001)
    );
    for bad in [
        "<Response><Dial><Number>+14155550100</Number></Dial>",
        "<Response><Transfer>+14155550100</Transfer></Response>",
        "<Response><Dial><Number>0800 FLOWERS</Number></Dial></Response>",
        "<Response><Dial timeout=\"2\"><Number>+14155550100</Number></Dial></Response>",
        "<Response><Enqueue><Task>{\"a\":1}</Task></Enqueue></Response>",
        "<Response><Dial><Number statusCallbackEvent=\"bridged\">+14155550100</Number></Dial></Response>",
    ] {
        assert_eq!(
            send(form(bad), "application/x-www-form-urlencoded", true).await,
            (400, 12100),
            "{bad}"
        );
    }
    let too_long = format!("<Response><Say>{}</Say></Response>", "a".repeat(4000));
    assert_eq!(
        send(form(&too_long), "application/x-www-form-urlencoded", true).await,
        (400, 20001)
    );
    assert_eq!(
        send(form(good), "application/x-www-form-urlencoded", true)
            .await
            .0,
        200
    );
    assert_eq!(twilio.updates().len(), 1);
}

#[tokio::test]
async fn unsigned_and_forged_callbacks_are_refused_and_change_nothing() {
    let call = call_sid(8);
    let (twilio, api) = serve_call(&call, &[("vip", Outcome::Silent)]).await;
    let grpc = start_connector(config(api)).await;
    let running = tokio::spawn(transfer(grpc, request("h-forged", &call, queue("vip"))));

    // The update arrived; its Enqueue action is the connector's callback URL.
    let mut action = None;
    for _ in 0..200 {
        if let Some(Update {
            instruction: Instruction::Enqueue {
                action: Some(url), ..
            },
            ..
        }) = twilio.updates().first()
        {
            action = Some(url.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let action = action.expect("the call was updated");
    let params = form(&[
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", &call),
        ("QueueResult", "bridged"),
    ]);
    let client = reqwest::Client::new();
    let body = serde_urlencoded::to_string(&params).expect("form");
    let post = |signature: Option<String>, body: String| {
        let mut request = client
            .post(&action)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-twilio-signature", signature);
        }
        async move { request.send().await.expect("answers").status().as_u16() }
    };
    assert_eq!(post(None, body.clone()).await, 403, "unsigned");
    let forged = signature::sign("not-the-auth-token", &action, &params);
    assert_eq!(
        post(Some(forged), body.clone()).await,
        403,
        "signed with another key"
    );
    let valid = signature::sign(AUTH_TOKEN, &action, &params);
    let tampered = body.replace("bridged", "hangup");
    assert_eq!(
        post(Some(valid.clone()), tampered).await,
        403,
        "parameters changed after signing"
    );
    // The workspace's TaskRouter events are verified the same way.
    let events_url = format!(
        "{}/v1/taskrouter/events",
        action.split("/v1/calls/").next().expect("base")
    );
    let accepted = form(&[
        ("EventType", "reservation.accepted"),
        (
            "TaskAttributes",
            &twilio.updates()[0].instruction_attributes(),
        ),
    ]);
    let unsigned_event = client
        .post(&events_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&accepted).expect("form"))
        .send()
        .await
        .expect("answers");
    assert_eq!(unsigned_event.status(), 403, "unsigned TaskRouter event");
    assert!(!running.is_finished(), "forged callbacks changed nothing");

    // Twilio's own, correctly signed callback moves the transfer on.
    assert_eq!(post(Some(valid), body).await, 200);
    let events = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("ends")
        .expect("transfer task");
    assert_eq!(kinds(&events).last(), Some(&TransferEventKind::Completed));
}

/// Transfers arrive at twice the account's call-update rate: they queue
/// (QUEUED with the wait) and Twilio never throttles.
#[tokio::test]
async fn a_burst_at_twice_the_rate_limit_queues_and_is_never_throttled() {
    // Low enough that scheduling stalls on a loaded machine do not bunch
    // the paced requests.
    const RATE: f64 = 5.0;
    const TRANSFERS: u32 = 12;
    let calls: Vec<(String, &'static str)> = (100..100 + TRANSFERS)
        .map(|n| (call_sid(n), "in-progress"))
        .collect();
    // Twilio's limit: RATE per second with a bucket of 2.
    let twilio = twilio(&calls, &[], Some((RATE, 2.0)));
    let api = start_twilio(twilio.clone()).await;
    let mut config = config(api);
    config.rate_per_second = RATE;
    let grpc = start_connector(config).await;

    let mut tasks = Vec::new();
    for (i, (call, _)) in calls.iter().enumerate() {
        tokio::time::sleep(Duration::from_secs_f64(1.0 / (2.0 * RATE))).await;
        let request = request(
            &format!("h-soak-{i}"),
            call,
            target::Kind::PhoneNumber("+14155550100".into()),
        );
        tasks.push(tokio::spawn(transfer(grpc, request)));
    }
    let mut queued = 0;
    for task in tasks {
        let events = task.await.expect("transfer task");
        queued += completed_after_rate_limit_waits(&events).len();
    }
    assert_eq!(
        *twilio.throttled.lock().expect("lock"),
        0,
        "Twilio never throttled"
    );
    assert_eq!(twilio.updates().len(), TRANSFERS as usize);
    assert!(queued > 0, "the backlog is reported as QUEUED");
}

#[tokio::test]
async fn a_cancelled_dial_puts_the_caller_on_hold_for_the_next_target() {
    let call = call_sid(9);
    let (twilio, api) = serve_call(&call, &[("sip:agent@pbx.example.com", Outcome::Silent)]).await;
    let grpc = start_connector(config(api)).await;
    let target = target::Kind::SipUri("sip:agent@pbx.example.com".into());
    let running = tokio::spawn(transfer(grpc, request("h-cancel", &call, target)));
    twilio.wait_for_updates(1).await;

    let cancelled = testing::client(grpc)
        .await
        .cancel_transfer(baton_proto::connector::v1::CancelTransferRequest {
            handoff_id: "h-cancel".into(),
            attempt: 1,
            tenant: "acme".into(),
        })
        .await
        .expect("CancelTransfer")
        .into_inner();
    assert!(cancelled.cancelled);
    let events = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("ends")
        .expect("transfer task");
    assert_eq!(kinds(&events).last(), Some(&TransferEventKind::Cancelled));
    let updates = twilio.wait_for_updates(2).await;
    assert_eq!(updates[1].call_sid, call);
    assert_eq!(updates[1].instruction, Instruction::Other);
    assert!(updates[1].twiml.contains("<Pause"), "{}", updates[1].twiml);
}

/// The real control service in front: the context it renders for the
/// TASK_ATTRIBUTES mechanism becomes the Flex task's attributes, without
/// sensitive values, and the handoff completes when the call is bridged.
/// Needs `baton-control` built (CI builds every binary first).
#[tokio::test]
async fn a_handoff_through_the_control_service_becomes_a_flex_task() {
    use baton_proto::types::v1 as pb;

    let call = call_sid(200);
    let (twilio, api) = serve_call(&call, &[]).await;
    let (grpc, callbacks) = start_connector_with_callbacks(config(api)).await;
    *twilio.event_callback_url.lock().expect("lock") =
        Some(format!("http://{callbacks}/v1/taskrouter/events"));

    let dir = tempfile::tempdir().expect("tempdir");
    let control =
        baton_tests::control_with_connector("twilio", &format!("http://{grpc}"), &[], dir.path())
            .await
            .expect("the control service starts (build it first: cargo build -p baton-control)");
    let mut client = baton_tests::handoff_client(&control).await;
    // The sample escalation of a live Twilio call, with a priority and
    // the skills the Flex task must carry.
    let mut request = baton_tests::sample_request(
        "twilio-e2e-1",
        pb::target::Kind::Queue(pb::QueueTarget {
            name: "billing".into(),
            skills: vec!["disputes".into()],
        }),
    );
    request.conversation = Some(pb::Conversation {
        channel: pb::Channel::Voice as i32,
        language: "en-US".into(),
        call: Some(pb::CallReference {
            platform_contact_id: call.clone(),
            caller_number: "+14155550123".into(),
            ..Default::default()
        }),
    });
    if let Some(context) = request.context.as_mut() {
        context.priority = 4;
    }
    let handoff_id = baton_tests::create_handoff(&mut client, request).await;
    baton_tests::expect_completed(&mut client, &handoff_id, 400, &[&control]).await;

    let updates = twilio.updates();
    assert_eq!(updates.len(), 1);
    let Instruction::Enqueue {
        attributes,
        priority,
        ..
    } = &updates[0].instruction
    else {
        panic!("not an Enqueue: {}", updates[0].twiml);
    };
    assert_eq!(*priority, 4);
    assert_eq!(
        attributes["summary"],
        "Customer was charged twice for the March invoice"
    );
    assert_eq!(attributes["baton_handoff_id"], handoff_id.as_str());
    assert_eq!(attributes["skills"], json!(["disputes"]));
    assert!(
        !updates[0].twiml.contains("ACC-99887766"),
        "{}",
        updates[0].twiml
    );
    assert!(
        !updates[0].twiml.contains("+14155550123"),
        "{}",
        updates[0].twiml
    );
}

const BILLING_TASK_QUEUE: &str = "WQ00000000000000000000000000000001";
const VIP_TASK_QUEUE: &str = "WQ00000000000000000000000000000002";
/// Configured, but the workspace has no such TaskQueue.
const GONE_TASK_QUEUE: &str = "WQ000000000000000000000000000000ff";

/// A connector whose `billing`, `vip` and `gone` queues have TaskQueues
/// (`gone`'s unknown to Twilio), against a workspace whose billing
/// TaskQueue has a busy voice channel and a free chat channel, and whose
/// vip TaskQueue accepted no task lately.
async fn availability_setup() -> (Arc<Twilio>, std::net::SocketAddr) {
    let (twilio, api) = serve_call(&call_sid(20), &[]).await;
    twilio.task_queue(
        BILLING_TASK_QUEUE,
        &[
            (
                "voice",
                QueueStatistics {
                    eligible_workers: 6,
                    available_workers: 1,
                    pending: 3,
                    reserved: 1,
                    assigned: 4,
                    wrapping: 1,
                    reservations_accepted: 12,
                    avg_task_acceptance_time: 95,
                },
            ),
            (
                "chat",
                QueueStatistics {
                    eligible_workers: 2,
                    available_workers: 1,
                    ..Default::default()
                },
            ),
        ],
    );
    twilio.task_queue(
        VIP_TASK_QUEUE,
        &[(
            "voice",
            QueueStatistics {
                eligible_workers: 1,
                pending: 2,
                assigned: 1,
                ..Default::default()
            },
        )],
    );
    let mut config = config(api);
    for (queue, sid) in [
        ("billing", BILLING_TASK_QUEUE),
        ("vip", VIP_TASK_QUEUE),
        ("gone", GONE_TASK_QUEUE),
    ] {
        config.task_queues.insert(queue.into(), sid.into());
    }
    config.validate().expect("valid configuration");
    (twilio, start_connector(config).await)
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    form(pairs)
}

#[tokio::test]
async fn availability_is_taskrouters_real_time_statistics_of_the_queues_task_queue() {
    let (twilio, grpc) = availability_setup().await;
    let info = connector_info(grpc).await;
    assert!(info.availability);

    // Voice: every worker is needed for the tasks ahead, so the wait is
    // TaskRouter's average time to acceptance over the last 15 minutes.
    let voice = availability(grpc, queue("billing"), Channel::Voice)
        .await
        .expect("voice availability");
    assert_eq!(
        voice,
        Availability {
            basis: AvailabilityBasis::Reported as i32,
            agents_signed_in: Some(6),
            agents_available: Some(1),
            contacts_waiting: Some(4),
            position: Some(5),
            estimated_wait: Some(prost_types::Duration {
                seconds: 95,
                nanos: 0
            }),
            wait_estimate: WaitEstimateMethod::PlatformStatistic as i32,
        }
    );
    // Chat: a worker is free and nothing waits; nothing more is asked.
    let chat = availability(grpc, queue("billing"), Channel::Chat)
        .await
        .expect("chat availability");
    assert_eq!(
        chat,
        Availability {
            basis: AvailabilityBasis::Reported as i32,
            agents_signed_in: Some(2),
            agents_available: Some(1),
            contacts_waiting: Some(0),
            position: Some(1),
            estimated_wait: Some(prost_types::Duration::default()),
            wait_estimate: WaitEstimateMethod::PlatformStatistic as i32,
        }
    );
    // No task accepted lately: TaskRouter's average of nothing is 0, which
    // would promise no wait; the estimate is left unset.
    let vip = availability(grpc, queue("vip"), Channel::Unspecified)
        .await
        .expect("vip availability");
    assert_eq!(
        vip,
        Availability {
            basis: AvailabilityBasis::Reported as i32,
            agents_signed_in: Some(1),
            agents_available: Some(0),
            contacts_waiting: Some(2),
            position: Some(3),
            estimated_wait: None,
            wait_estimate: WaitEstimateMethod::Unspecified as i32,
        }
    );
    // Exactly the requests TaskRouter documents, and nothing else: the
    // contract server refuses any other and the answers above would fail.
    assert_eq!(
        twilio.statistics_requests(),
        [
            StatisticsRequest {
                task_queue_sid: BILLING_TASK_QUEUE.into(),
                resource: "RealTimeStatistics",
                query: query(&[("TaskChannel", "voice")]),
            },
            StatisticsRequest {
                task_queue_sid: BILLING_TASK_QUEUE.into(),
                resource: "CumulativeStatistics",
                query: query(&[("TaskChannel", "voice"), ("Minutes", "15")]),
            },
            StatisticsRequest {
                task_queue_sid: BILLING_TASK_QUEUE.into(),
                resource: "RealTimeStatistics",
                query: query(&[("TaskChannel", "chat")]),
            },
            StatisticsRequest {
                task_queue_sid: VIP_TASK_QUEUE.into(),
                resource: "RealTimeStatistics",
                query: query(&[("TaskChannel", "voice")]),
            },
            StatisticsRequest {
                task_queue_sid: VIP_TASK_QUEUE.into(),
                resource: "CumulativeStatistics",
                query: query(&[("TaskChannel", "voice"), ("Minutes", "15")]),
            },
        ]
    );
    // Asking changed nothing: no call updated, no task created.
    assert!(twilio.updates().is_empty());
    assert!(twilio.tasks().is_empty());
}

#[tokio::test]
async fn availability_without_a_task_queue_is_not_found_and_other_targets_unimplemented() {
    let (twilio, grpc) = availability_setup().await;
    let unmapped = availability(grpc, queue("unmapped"), Channel::Voice)
        .await
        .expect_err("no TaskQueue for the queue");
    assert_eq!(unmapped.code(), tonic::Code::NotFound);
    assert!(
        unmapped.message().contains("\"unmapped\"") && unmapped.message().contains("task_queues"),
        "{}",
        unmapped.message()
    );
    assert!(twilio.statistics_requests().is_empty());

    // Configured, but Twilio answers 404 (20404) for the TaskQueue.
    let gone = availability(grpc, queue("gone"), Channel::Voice)
        .await
        .expect_err("TaskRouter has no such TaskQueue");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    assert!(
        gone.message().contains(GONE_TASK_QUEUE) && gone.message().contains("20404"),
        "{}",
        gone.message()
    );

    let number = availability(
        grpc,
        target::Kind::PhoneNumber("+14155550100".into()),
        Channel::Voice,
    )
    .await
    .expect_err("numbers have no statistics");
    assert_eq!(number.code(), tonic::Code::Unimplemented);
    assert!(twilio.statistics_requests().is_empty());

    // Without any TaskQueue configured the connector does not advertise
    // availability, and the SDK refuses the question.
    let (_, api) = serve_call(&call_sid(21), &[]).await;
    let plain = start_connector(config(api)).await;
    let info = connector_info(plain).await;
    assert!(!info.availability);
    let refused = availability(plain, queue("billing"), Channel::Voice)
        .await
        .expect_err("not advertised");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn the_contract_server_refuses_statistics_requests_taskrouter_would_refuse() {
    let (twilio, api) = serve_call(&call_sid(22), &[]).await;
    twilio.task_queue(BILLING_TASK_QUEUE, &[]);
    let client = reqwest::Client::new();
    let get = |path: String, auth: bool| {
        let mut request = client.get(format!("http://{api}{path}"));
        if auth {
            request = request.basic_auth(API_KEY_SID, Some(API_KEY_SECRET));
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let body: Value =
                serde_json::from_str(&response.text().await.expect("body")).expect("Twilio JSON");
            (status, body["code"].as_u64().unwrap_or_default())
        }
    };
    let real_time = |workspace: &str, task_queue: &str, query: &str| {
        format!("/v1/Workspaces/{workspace}/TaskQueues/{task_queue}/RealTimeStatistics{query}")
    };
    let cumulative = |query: &str| {
        format!(
            "/v1/Workspaces/{WORKSPACE_SID}/TaskQueues/{BILLING_TASK_QUEUE}/CumulativeStatistics{query}"
        )
    };
    let good = real_time(WORKSPACE_SID, BILLING_TASK_QUEUE, "?TaskChannel=voice");
    assert_eq!(get(good.clone(), false).await, (401, 20003));
    for (path, refusal) in [
        (
            real_time(WORKSPACE_SID, BILLING_TASK_QUEUE, "?Channel=voice"),
            (400, 20001),
        ),
        (
            real_time(
                WORKSPACE_SID,
                BILLING_TASK_QUEUE,
                "?TaskChannel=voice&TaskChannel=chat",
            ),
            (400, 20001),
        ),
        (
            real_time(WORKSPACE_SID, BILLING_TASK_QUEUE, "?TaskChannel=VOICE"),
            (400, 20001),
        ),
        (
            real_time(
                WORKSPACE_SID,
                BILLING_TASK_QUEUE,
                "?TaskChannel=voice&Minutes=15",
            ),
            (400, 20001),
        ),
        (
            real_time("WS000000000000000000000000000000ff", BILLING_TASK_QUEUE, ""),
            (404, 20404),
        ),
        (real_time(WORKSPACE_SID, GONE_TASK_QUEUE, ""), (404, 20404)),
        (real_time(WORKSPACE_SID, "billing", ""), (404, 20404)),
        (cumulative("?Minutes=0"), (400, 20001)),
        (cumulative("?Minutes=50000"), (400, 20001)),
        (cumulative("?Since=15"), (400, 20001)),
    ] {
        assert_eq!(get(path.clone(), true).await, refusal, "{path}");
    }
    assert!(twilio.statistics_requests().is_empty());
    assert_eq!(get(good, true).await.0, 200);
    assert_eq!(
        get(cumulative("?TaskChannel=chat&Minutes=15"), true)
            .await
            .0,
        200
    );
    assert_eq!(twilio.statistics_requests().len(), 2);
}
