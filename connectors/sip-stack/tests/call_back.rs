//! Agent-first callbacks against real phones (sipp): the agent's phone is
//! called with the context, the customer's through a trunk without it, the
//! two are joined by a re-INVITE and a hang-up on one side is relayed to
//! the other; failures on either side end in one FAILED and leave no leg
//! up.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use baton_connector_sdk::{
    ContextEnvelope, ContextReference, FailureReason, Transfer, TransferEventReceiver,
    TransferEvents, TransferMode, TransferTarget,
};
use baton_proto::connector::v1::{StartTransferResponse, TransferEventKind};
use baton_sip_stack::{CallBack, UserAgentConfig, VoiceLegs};
use support::Sipp;

/// The customer's number, which the customer's scenario checks in the
/// Request-URI.
const CUSTOMER: &str = "+4930123456";
/// Bounds every callback: sipp's own timeout is shorter.
const CALL_BACK_BOUND: Duration = Duration::from_secs(40);

async fn voice_legs(trunk: SocketAddr) -> VoiceLegs {
    let config: UserAgentConfig = toml::from_str(&format!(
        r#"
        ring_timeout = "10s"
        [sip]
        bind = "127.0.0.1:0"
        t1 = "100ms"
        [[trunks]]
        name = "pstn"
        host = "{trunk}"
        "#
    ))
    .expect("configuration");
    VoiceLegs::bind(config).await.expect("binds")
}

fn call_back(agent: SocketAddr, attempts: u32, customer_ring_timeout: Duration) -> CallBack {
    CallBack {
        transfer: Transfer {
            tenant: "acme".into(),
            handoff_id: "h-callback".into(),
            attempt: 1,
            target: TransferTarget::SipUri(format!("sip:agent@{agent}")),
            mode: TransferMode::Warm,
            envelope: ContextEnvelope {
                reference: Some(ContextReference {
                    handoff_id: "h-callback".into(),
                    token: "baton.test.token".into(),
                    context_url: String::new(),
                    screen_pop_url: String::new(),
                }),
                ..Default::default()
            },
            deadline: std::time::SystemTime::now() + Duration::from_secs(60),
            remembered: None,
            disclosure: None,
            callback: None,
        },
        customer: CUSTOMER.into(),
        attempts,
        retry_delay: Duration::from_millis(100),
        customer_ring_timeout,
    }
}

/// The agent's and the customer's phones (sipp scenarios, the customer's
/// taking `customer_calls` calls) and the voice legs whose trunk is the
/// customer's phone.
async fn phones(agent: &str, customer: &str, customer_calls: usize) -> (Sipp, Sipp, VoiceLegs) {
    let agent = Sipp::start(agent, 1);
    let customer = Sipp::start(customer, customer_calls);
    let legs = voice_legs(customer.addr()).await;
    (agent, customer, legs)
}

/// The callback ended with one FAILED, last, for `reason` and `detail`.
fn assert_failed(events: &[StartTransferResponse], reason: FailureReason, detail: &str) {
    let failed = events.last().expect("a terminal event");
    assert_eq!(failed.kind(), TransferEventKind::Failed, "{events:?}");
    assert_eq!(failed.failure_reason(), reason, "{events:?}");
    assert_eq!(failed.detail, detail);
}

/// Runs the callback to its return and reads every event it reported.
async fn run(legs: &VoiceLegs, call: CallBack) -> Vec<StartTransferResponse> {
    let (events, mut receiver) = TransferEvents::channel();
    tokio::time::timeout(CALL_BACK_BOUND, legs.call_back(call, events))
        .await
        .expect("the callback returns");
    reported(&mut receiver).await
}

/// The events reported so far: CONNECTED is not terminal, so the receiver
/// is read until it has nothing more at once.
async fn reported(receiver: &mut TransferEventReceiver) -> Vec<StartTransferResponse> {
    let mut events = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(200), receiver.recv()).await
    {
        events.push(event);
    }
    events
}

fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    events.iter().map(StartTransferResponse::kind).collect()
}

fn details(events: &[StartTransferResponse], kind: TransferEventKind) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.kind() == kind)
        .map(|e| e.detail.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_answers_with_the_context_then_the_customer_and_a_hang_up_is_relayed() {
    let (agent, customer, legs) = phones(
        "callback_agent_joined",
        "callback_customer_answers_then_hangs_up",
        1,
    )
    .await;

    let events = run(&legs, call_back(agent.addr(), 3, Duration::from_secs(10))).await;

    use TransferEventKind::*;
    assert_eq!(
        kinds(&events),
        [
            Ringing,
            Answered,
            ContextDelivered,
            CallbackDialing,
            Connected
        ],
        "{events:?}"
    );
    assert_eq!(details(&events, Ringing), ["agent's phone ringing"]);
    assert_eq!(
        details(&events, CallbackDialing),
        ["dialing the customer, attempt 1 of 3"]
    );
    // The customer hangs up; the agent's scenario ends only once Baton
    // relayed the BYE to it.
    let customer_log = customer.finish().await;
    let agent_log = agent.finish().await;
    assert!(agent_log.contains("X-Baton-Handoff-Id: h-callback"));
    assert!(!customer_log.contains("X-Baton"));
    assert!(!customer_log.contains("User-to-User"));
    let detail: String = events.iter().map(|e| e.detail.clone()).collect();
    assert!(
        !detail.contains("30123456"),
        "no event names the customer's number"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_customer_on_every_attempt_fails_busy_and_the_agent_is_hung_up() {
    let (agent, customer, legs) = phones("callback_agent_hung_up", "callback_busy", 2).await;

    let events = run(&legs, call_back(agent.addr(), 2, Duration::from_secs(10))).await;

    use TransferEventKind::*;
    assert_eq!(
        kinds(&events),
        [
            Ringing,
            Answered,
            ContextDelivered,
            CallbackDialing,
            CallbackDialing,
            Failed
        ],
        "{events:?}"
    );
    assert_eq!(
        details(&events, CallbackDialing),
        [
            "dialing the customer, attempt 1 of 2",
            "dialing the customer, attempt 2 of 2"
        ]
    );
    assert_failed(
        &events,
        FailureReason::Busy,
        "the customer did not answer 2 callback attempts",
    );
    customer.finish().await;
    // The agent's scenario ends with the BYE Baton sent it.
    agent.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_who_never_answers_is_cancelled_and_fails_no_answer() {
    let (agent, customer, legs) =
        phones("callback_agent_hung_up", "callback_customer_rings", 1).await;

    let events = run(
        &legs,
        call_back(agent.addr(), 1, Duration::from_millis(300)),
    )
    .await;

    assert_failed(
        &events,
        FailureReason::NoAnswer,
        "the customer did not answer 1 callback attempt",
    );
    // The customer's scenario ends with the CANCEL, the agent's with the BYE.
    customer.finish().await;
    agent.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_hanging_up_while_the_customer_rings_cancels_the_customer() {
    let (agent, customer, legs) =
        phones("callback_agent_hangs_up", "callback_customer_rings", 1).await;

    let events = run(&legs, call_back(agent.addr(), 3, Duration::from_secs(10))).await;

    use TransferEventKind::*;
    assert_eq!(
        kinds(&events),
        [Answered, ContextDelivered, CallbackDialing, Failed],
        "{events:?}"
    );
    assert_failed(
        &events,
        FailureReason::Rejected,
        "the agent hung up before the customer answered",
    );
    agent.finish().await;
    // The customer's scenario ends with the CANCEL.
    customer.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_agent_fails_busy_and_the_customer_is_never_dialed() {
    let agent = Sipp::start("callback_busy", 1);
    // The trunk: a socket that would hear any customer dial.
    let trunk = UdpSocket::bind("127.0.0.1:0").expect("a trunk socket");
    trunk.set_nonblocking(true).expect("non-blocking");
    let legs = voice_legs(trunk.local_addr().expect("trunk address")).await;

    let events = run(&legs, call_back(agent.addr(), 3, Duration::from_secs(10))).await;

    assert_eq!(
        kinds(&events),
        [TransferEventKind::Failed],
        "no ringing, no customer dial: {events:?}"
    );
    let failed = &events[0];
    assert_eq!(failed.failure_reason(), FailureReason::Busy);
    assert!(
        failed.detail.starts_with("agent's phone: 486"),
        "{}",
        failed.detail
    );
    agent.finish().await;
    let mut buffer = [0u8; 2048];
    assert!(
        trunk.recv_from(&mut buffer).is_err(),
        "nothing was sent to the trunk"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_while_the_customer_rings_ends_both_legs() {
    let (agent, customer, legs) =
        phones("callback_agent_hung_up", "callback_customer_rings", 1).await;
    let legs = std::sync::Arc::new(legs);
    let call = call_back(agent.addr(), 3, Duration::from_secs(10));
    let transfer = call.transfer.clone();
    let (events, mut receiver) = TransferEvents::channel();
    let running = tokio::spawn({
        let legs = legs.clone();
        async move { legs.call_back(call, events).await }
    });
    // Cancel once the customer's phone rings (bounded: sipp's own timeout
    // fails the scenario otherwise).
    for _ in 0..200 {
        if customer.messages().contains("SIP/2.0 180 Ringing") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    legs.cancel(&transfer).await;
    tokio::time::timeout(CALL_BACK_BOUND, running)
        .await
        .expect("the callback returns")
        .expect("the callback's task");
    let events = reported(&mut receiver).await;
    assert_eq!(
        events.last().map(StartTransferResponse::kind),
        Some(TransferEventKind::Cancelled),
        "{events:?}"
    );
    // The customer's scenario ends with the CANCEL, the agent's with the BYE.
    customer.finish().await;
    agent.finish().await;
}
