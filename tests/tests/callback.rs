//! Callbacks through the embedded queue, end to end: the control service
//! and the queue connector as real processes, sipp as the agent's phone (at
//! the agent's contact address) and as the customer's phone (behind the
//! queue's trunk). In the first test the agent signs in, sees the callback
//! and accepts it in the desktop page in headless Chromium; the others
//! use the desktop's HTTP API with a signed-in session (cookie and CSRF
//! token, as the page sends them).
//!
//! A callback handoff waits in the queue (QUEUED "callback scheduled…"),
//! is offered only inside its window, and once the agent accepts: the
//! screen pop (CONTEXT_DELIVERED), the agent's phone rings with the handoff
//! in its INVITE and answers, the customer is dialed (CALLBACK_DIALING per
//! dial) and answers (CONNECTED), or never does (FAILED NO_ANSWER after
//! every dial, no fallback). The customer's number is shown masked and
//! written in no log line of either process.

mod browser;

use std::path::Path;
use std::time::{Duration, SystemTime};

use HandoffEventKind as K;
use anyhow::{Context, bail};
use baton_connector_queue::accounts::{Account, Role, add_account};
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::desk::{Desk, desktop_base};
use baton_tests::sipp::Sipp;
use baton_tests::{Service, control_with_connector, start_with_config};
use browser::Browser;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tonic::transport::Channel;

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(30);
/// The customer's number, and its digits as a log line would hold them.
const NUMBER: &str = "+15550100123";
const DIGITS: &str = "15550100123";
const MASKED: &str = "+•••••••0123";
/// Dials of the customer per callback (`[callback] attempts`).
const ATTEMPTS: usize = 2;

/// One of this file's scenarios, in `tests/scenarios`.
fn scenario(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.xml"))
}

/// The queue (voice on, the trunk to the customer's phone, quick
/// callbacks), the control service routing `support` to it, and the
/// desktop accounts: agent `ann` (phone at `agent_phone`) and supervisor
/// `sue`.
struct Stack {
    _dir: TempDir,
    queue: Service,
    control: Service,
}

impl Stack {
    async fn start(agent_phone: &str, trunk: &str) -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        let accounts = dir.path().join("desk-accounts.toml");
        let account = |name: &str, role, contact: &str| Account {
            name: name.into(),
            display_name: None,
            role,
            tenants: vec!["default".into()],
            skills: vec!["support".into()],
            contact: contact.into(),
            password: String::new(),
        };
        add_account(
            &accounts,
            account("ann", Role::Agent, agent_phone),
            "ann-pw",
        )
        .map_err(anyhow::Error::msg)?;
        add_account(&accounts, account("sue", Role::Supervisor, ""), "sue-pw")
            .map_err(anyhow::Error::msg)?;
        let config = format!(
            "offer_timeout = \"2m\"\n\n[server]\ngrpc_listen = \"127.0.0.1:0\"\n\
             http_listen = \"127.0.0.1:0\"\n\n[store]\ndata_dir = {data:?}\n\n\
             [desk]\naccounts_file = {accounts:?}\n\n\
             [voice]\nenabled = true\nring_timeout = \"10s\"\n\n\
             [voice.sip]\nbind = \"127.0.0.1:0\"\nt1 = \"100ms\"\n\n\
             [[voice.trunks]]\nname = \"pstn\"\nprefixes = [\"+1555\"]\nhost = {trunk:?}\n\n\
             [callback]\nattempts = {ATTEMPTS}\nretry_delay = \"500ms\"\n\
             customer_ring_timeout = \"2s\"\n",
            data = dir.path().join("queue").display().to_string(),
            accounts = accounts.display().to_string(),
        );
        let queue = start_with_config(
            "baton-connector-queue",
            dir.path(),
            "queue.toml",
            &config,
            &[],
        )
        .await?;
        let control =
            control_with_connector("queue", &queue.endpoint("grpc"), &[], dir.path()).await?;
        Ok(Stack {
            _dir: dir,
            queue,
            control,
        })
    }

    async fn client(&self) -> anyhow::Result<HandoffServiceClient<Channel>> {
        Ok(HandoffServiceClient::connect(self.control.endpoint("grpc")).await?)
    }

    async fn sign_in(&self, name: &str) -> anyhow::Result<Desk> {
        Desk::sign_in(&desktop_base(&self.queue), name, &format!("{name}-pw")).await
    }

    /// `name` signed in at the desktop and available for offers.
    async fn available(&self, name: &str) -> anyhow::Result<Desk> {
        let desk = self.sign_in(name).await?;
        desk.available().await?;
        Ok(desk)
    }

    /// Neither process wrote the customer's number in a log line.
    fn assert_number_never_logged(&self) {
        for service in [&self.queue, &self.control] {
            let logs = service.logs();
            assert!(
                !logs.contains(DIGITS),
                "{} logged the customer's number: {}",
                service.name,
                logs.lines()
                    .filter(|l| l.contains(DIGITS))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// A voice handoff to the queue `support` that asks for a callback at
/// `NUMBER` inside `window` (both ends unset: as soon as possible).
fn callback_request(
    request_id: &str,
    window: (Option<SystemTime>, Option<SystemTime>),
) -> CreateHandoffRequest {
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let mut request = baton_tests::sample_request(request_id, support);
    request.callback = Some(pb::Callback {
        number: NUMBER.into(),
        window_start: window.0.map(Into::into),
        window_end: window.1.map(Into::into),
        consent: true,
    });
    request
}

/// Creates the handoff and watches it from its first event: the handoff
/// as created, and its watch.
async fn create_watched(
    client: &mut HandoffServiceClient<Channel>,
    request: CreateHandoffRequest,
) -> anyhow::Result<(Handoff, Watch)> {
    let handoff = client
        .create_handoff(request)
        .await?
        .into_inner()
        .handoff
        .context("no handoff")?;
    let watch = Watch::open(client, &handoff.id).await?;
    Ok((handoff, watch))
}

/// Cancels the handoff `id` for `reason`, as the AI runtime does.
async fn cancel(
    client: &mut HandoffServiceClient<Channel>,
    id: &str,
    reason: &str,
) -> Result<(), tonic::Status> {
    client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: id.into(),
            reason: reason.into(),
        })
        .await?;
    Ok(())
}

/// A handoff's events as they come, from the first.
struct Watch {
    stream: tonic::Streaming<WatchHandoffResponse>,
    seen: Vec<HandoffEvent>,
}

impl Watch {
    async fn open(client: &mut HandoffServiceClient<Channel>, id: &str) -> anyhow::Result<Watch> {
        let stream = client
            .watch_handoff(WatchHandoffRequest {
                handoff_id: id.into(),
                after_sequence: 0,
            })
            .await?
            .into_inner();
        Ok(Watch {
            stream,
            seen: Vec::new(),
        })
    }

    /// Reads events until one of `kind`; that event.
    async fn until(&mut self, kind: K) -> anyhow::Result<HandoffEvent> {
        let read = baton_tests::read_until(&mut self.stream, WAIT, |e| e.kind() == kind)
            .await
            .with_context(|| format!("no {kind:?}; before: {:?}", self.kinds()))?;
        self.seen.extend(read);
        self.seen.last().cloned().context("the event read")
    }

    fn kinds(&self) -> Vec<K> {
        baton_tests::event_kinds(&self.seen)
    }

    fn count(&self, kind: K) -> usize {
        self.seen.iter().filter(|e| e.kind() == kind).count()
    }
}

/// The agent's view once the handoff `id` is offered to them.
async fn offered(agent: &Desk, id: &str) -> anyhow::Result<Value> {
    agent
        .agent_view_until(|v| {
            v["offers"]
                .as_array()
                .is_some_and(|o| o.iter().any(|p| p["handoff_id"] == id))
        })
        .await
}

async fn accept(agent: &Desk, id: &str) -> anyhow::Result<()> {
    let status = agent
        .change(
            Method::POST,
            &format!("/api/handoffs/{id}/accept"),
            json!({}),
        )
        .await?;
    if !status.is_success() {
        bail!("accept: {status}");
    }
    Ok(())
}

/// The supervisor's view of the handoff `id` once `wanted` holds of it
/// (`Value::Null` when `wanted` is about its absence).
async fn supervised(
    supervisor: &Desk,
    id: &str,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let view = supervisor
        .view_until("/api/supervisor/events", |v| wanted(&contact_in(v, id)))
        .await?;
    Ok(contact_in(&view, id))
}

fn contact_in(view: &Value, id: &str) -> Value {
    view["contacts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["handoff_id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Signs `ann` in at the desktop page, goes available, checks the
/// callback's pop (masked number, never the digits in the page) and
/// accepts it.
async fn accept_in_the_page(browser: &Browser, desktop: &str) -> anyhow::Result<()> {
    browser.client.goto(desktop).await?;
    browser.fill("#agent-id", "ann").await?;
    browser.fill("#password", "ann-pw").await?;
    browser.click("#sign-in").await?;
    // The state buttons are there before the sign-in ends, but not usable.
    let signed_in = tokio::time::Instant::now() + browser::WAIT;
    while let Err(error) = browser.click("#state-available").await {
        if tokio::time::Instant::now() > signed_in {
            return Err(error.context("the agent never got to going available"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.wait_text("#pop-title", "Callback request").await?;
    assert_eq!(browser.text("#callback-number").await?, MASKED);
    let page = browser.client.source().await?;
    assert!(!page.contains(DIGITS), "the page never holds the number");
    browser.screenshot("callback-offer.png").await?;
    browser.click("#accept").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_takes_the_callback_and_the_customer_answers() -> anyhow::Result<()> {
    let customer = Sipp::play(&scenario("callback_customer_answers"))
        .timeout(Duration::from_secs(60))
        .start();
    let agent_phone = Sipp::play(&scenario("callback_agent_phone"))
        .timeout(Duration::from_secs(60))
        .start();
    let stack = Stack::start(&agent_phone.uri("ann"), &customer.addr().to_string()).await?;
    let mut client = stack.client().await?;
    let (handoff, mut watch) = create_watched(
        &mut client,
        callback_request("callback-answered", (None, None)),
    )
    .await?;
    let id = handoff.id.clone();
    assert_eq!(
        handoff.callback.as_ref().map(|c| c.masked_number.as_str()),
        Some(MASKED)
    );
    let queued = watch.until(K::Queued).await?;
    assert!(
        queued.detail.contains("callback scheduled"),
        "{}",
        queued.detail
    );

    let supervisor = stack.sign_in("sue").await?;
    let shown = supervised(&supervisor, &id, |c| !c.is_null()).await?;
    assert_eq!(shown["callback"]["masked_number"], MASKED);

    // The agent, in the desktop page: the callback pops up with the
    // number masked (the page never holds it in full), and they accept.
    let browser = Browser::start(stack._dir.path()).await?;
    let accepted = accept_in_the_page(&browser, &desktop_base(&stack.queue)).await;
    if accepted.is_err() {
        let _ = browser.screenshot("callback-failure.png").await;
    }
    accepted?;

    watch.until(K::ContextDelivered).await?;
    watch.until(K::CallbackDialing).await?;
    let connected = watch.until(K::Connected).await?;
    assert!(
        baton_tests::in_order(
            &watch.kinds(),
            &[
                K::Queued,
                K::Offered,
                K::ContextDelivered,
                K::Ringing,
                K::Answered,
                K::CallbackDialing,
                K::Connected
            ]
        ),
        "{:?}",
        watch.kinds()
    );
    assert!(!connected.detail.contains(DIGITS), "{}", connected.detail);
    let now = baton_tests::get_handoff(&mut client, &id).await;
    assert_eq!(now.state(), HandoffState::Connected);
    let callback = now.callback.context("Handoff.callback")?;
    assert_eq!(callback.masked_number, MASKED);
    assert_eq!(callback.state(), pb::CallbackState::Connected);

    // The agent's phone was called with the handoff in its INVITE; the
    // customer's was dialed with the agent's SDP, answered and hung up,
    // and the queue hung up the agent's.
    let agent_messages = agent_phone
        .finish()
        .await
        .context("the agent's phone ran its part")?;
    assert!(
        agent_messages.contains(&format!("X-Baton-Handoff-Id: {id}")),
        "{agent_messages}"
    );
    customer
        .finish()
        .await
        .context("the customer's phone ran its part")?;

    browser
        .wait_text("#callback-state", "connected to the customer")
        .await?;
    browser.fill("#notes", "called back").await?;
    browser.click("#finish").await?;
    watch.until(K::Completed).await?;
    browser.client.clone().close().await?;
    // The contact, and the number with it, left the queue.
    supervised(&supervisor, &id, Value::is_null).await?;
    stack.assert_number_never_logged();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_never_answers_fails_the_callback_after_every_dial() -> anyhow::Result<()> {
    let customer = Sipp::play(&scenario("callback_customer_never_answers"))
        .calls(ATTEMPTS)
        .timeout(Duration::from_secs(60))
        .start();
    let agent_phone = Sipp::play(&scenario("callback_agent_phone_released"))
        .timeout(Duration::from_secs(60))
        .start();
    let stack = Stack::start(&agent_phone.uri("ann"), &customer.addr().to_string()).await?;
    let mut client = stack.client().await?;
    let agent = stack.available("ann").await?;
    let (handoff, mut watch) = create_watched(
        &mut client,
        callback_request("callback-unanswered", (None, None)),
    )
    .await?;
    let id = handoff.id;
    offered(&agent, &id).await?;
    accept(&agent, &id).await?;
    watch.until(K::CallbackDialing).await?;

    // Once the customer is being dialed, the handoff can no longer be
    // cancelled.
    let refused = cancel(&mut client, &id, "changed my mind")
        .await
        .expect_err("cancel refused while dialing");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );

    let failed = watch.until(K::Failed).await?;
    assert_eq!(
        failed.failure.as_ref().map(|f| f.reason()),
        Some(pb::FailureReason::NoAnswer),
        "{failed:?}"
    );
    assert_eq!(
        watch.count(K::CallbackDialing),
        ATTEMPTS,
        "{:?}",
        watch.kinds()
    );
    // No fallback: the one target, tried once.
    assert_eq!(watch.count(K::TargetStarted), 1, "{:?}", watch.kinds());
    let now = baton_tests::get_handoff(&mut client, &id).await;
    assert_eq!(now.state(), HandoffState::Failed);
    let callback = now.callback.context("Handoff.callback")?;
    assert_eq!(callback.state(), pb::CallbackState::Failed);

    customer.finish().await.context("every dial rang out")?;
    agent_phone
        .finish()
        .await
        .context("the agent's phone was answered, then hung up")?;
    // The agent is free again, nothing held.
    agent
        .agent_view_until(|v| v["connected"].as_array().is_some_and(Vec::is_empty))
        .await?;
    stack.assert_number_never_logged();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_callback_is_cancelled_and_leaves_the_desktop() -> anyhow::Result<()> {
    // Nobody is dialed: the trunk and the phone go nowhere.
    let stack = Stack::start("sip:ann@127.0.0.1:9", "127.0.0.1:9").await?;
    let mut client = stack.client().await?;
    let agent = stack.available("ann").await?;
    let start = SystemTime::now() + Duration::from_secs(3600);
    let end = start + Duration::from_secs(3600);
    let (handoff, mut watch) = create_watched(
        &mut client,
        callback_request("callback-cancelled", (Some(start), Some(end))),
    )
    .await?;
    let id = handoff.id;
    let queued = watch.until(K::Queued).await?;
    assert!(
        queued.detail.contains("callback scheduled"),
        "{}",
        queued.detail
    );

    let supervisor = stack.sign_in("sue").await?;
    let shown = supervised(&supervisor, &id, |c| !c.is_null()).await?;
    assert_eq!(shown["callback"]["masked_number"], MASKED);
    assert_eq!(shown["callback"]["state"], "scheduled");
    let start_ms = start.duration_since(SystemTime::UNIX_EPOCH)?.as_millis() as u64;
    assert_eq!(shown["callback"]["window_start"], start_ms);

    cancel(&mut client, &id, "the customer called in themselves").await?;
    watch.until(K::Cancelled).await?;
    assert_eq!(
        baton_tests::get_handoff(&mut client, &id).await.state(),
        HandoffState::Cancelled
    );
    supervised(&supervisor, &id, Value::is_null).await?;
    let view = agent.agent_view_until(|_| true).await?;
    assert_eq!(view["waiting"], 0, "{view}");
    stack.assert_number_never_logged();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_is_offered_only_once_its_window_opens() -> anyhow::Result<()> {
    let stack = Stack::start("sip:ann@127.0.0.1:9", "127.0.0.1:9").await?;
    let mut client = stack.client().await?;
    let agent = stack.available("ann").await?;
    let start = SystemTime::now() + Duration::from_secs(6);
    let end = start + Duration::from_secs(600);
    let start_ms = start.duration_since(SystemTime::UNIX_EPOCH)?.as_millis() as u64;
    let (handoff, mut watch) = create_watched(
        &mut client,
        callback_request("callback-later", (Some(start), Some(end))),
    )
    .await?;
    let id = handoff.id;
    let queued = watch.until(K::Queued).await?;
    assert!(queued.detail.contains("window opens"), "{}", queued.detail);

    // Before the window: waiting for this agent, not offered.
    let before = agent.agent_view_until(|v| v["waiting"] == 1).await?;
    let seen_at = before["now"].as_u64().context("the view's time")?;
    if seen_at >= start_ms {
        bail!("the first view came after the window opened; nothing was shown before it");
    }
    assert!(
        before["offers"].as_array().is_some_and(Vec::is_empty),
        "{before}"
    );
    let supervisor = stack.sign_in("sue").await?;
    let shown = supervised(&supervisor, &id, |c| !c.is_null()).await?;
    assert_eq!(shown["phase"], "waiting");

    // Once it opens: offered.
    let after = offered(&agent, &id).await?;
    let offered_at = after["now"].as_u64().context("the view's time")?;
    assert!(
        offered_at >= start_ms,
        "offered at {offered_at}, the window opens at {start_ms}"
    );
    watch.until(K::Offered).await?;

    cancel(&mut client, &id, "done").await?;
    watch.until(K::Cancelled).await?;
    agent
        .agent_view_until(|v| v["offers"].as_array().is_some_and(Vec::is_empty))
        .await?;
    Ok(())
}
