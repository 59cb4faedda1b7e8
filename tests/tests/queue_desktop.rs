//! The embedded queue and its agent desktop, end to end: real
//! `baton-connector-queue`, `baton-control` and `baton-connector-script`
//! processes on ephemeral loopback ports, and the desktop driven in real
//! headless Chromium through chromedriver (WebDriver).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use baton_connector_queue::accounts::{Account, Role, add_account};
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::Service;
use browser::Browser;
use fantoccini::Locator;
use tempfile::TempDir;
use tonic::transport::Channel;

mod browser;

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

const SUMMARY: &str = "Customer was charged twice for the March invoice";
const ACCOUNT: &str = "ACC-99887766";
/// A customer's words that would run script if the page used innerHTML.
const HOSTILE: &str = "<img src=x onerror=\"document.title='pwned'\"> charged twice!";
/// The AI runtime's trace, which the screen pop carries to the desktop.
const TRACE_ID: &str = "8a3c60f7d188f8fa79d48a391a778fa6";
/// Spans go to a port nobody listens on: propagation must not depend on a
/// collector being there.
const TRACING_ENV: &[(&str, &str)] = &[
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
];

/// The queue connector, a scripted fallback connector and the control
/// service routing `support` to the queue, then to the fallback.
struct Stack {
    dir: TempDir,
    queue: Service,
    _fallback: Service,
    control: Service,
}

impl Stack {
    async fn start() -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        let accounts = dir.path().join("desk-accounts.toml");
        add_desk_accounts(&accounts)?;
        let queue_config = dir.path().join("queue.toml");
        std::fs::write(
            &queue_config,
            format!(
                "grpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\
                 # Long enough for a browser under load; the time-out itself is unit-tested.\n\
                 offer_timeout = \"2m\"\n\n[desk]\naccounts_file = {:?}\n",
                path_str(&dir.path().join("queue"))?,
                path_str(&accounts)?,
            ),
        )?;
        let queue = Service::start_with_env(
            "baton-connector-queue",
            &["--config", path_str(&queue_config)?],
            TRACING_ENV,
            dir.path(),
        )
        .await?;

        let script_config = dir.path().join("fallback.toml");
        std::fs::write(
            &script_config,
            "name = \"fallback\"\nlisten = \"127.0.0.1:0\"\n\n[targets]\noverflow = [\"offered\", \"answered\", \"context_delivered\", \"connected\", \"hold\"]\n",
        )?;
        let fallback = Service::start(
            "baton-connector-script",
            &["--config", path_str(&script_config)?],
            dir.path(),
        )
        .await?;

        let sections = format!(
            r#"
[connectors.queue]
endpoint = "{queue}"

[connectors.fallback]
endpoint = "{fallback}"

# The desktop masks sensitive entities until an agent reveals one.
[data_policy.connectors.queue]
sensitive_entities = "clear"

[default_connectors]
queue = "queue"

[[routes]]
name = "support"
queues = ["support"]
targets = [{{ connector = "queue", queue = "support" }}, {{ connector = "fallback", queue = "overflow" }}]
"#,
            queue = queue.endpoint("grpc"),
            fallback = fallback.endpoint("grpc"),
        );
        let control = baton_tests::start_control(dir.path(), &sections, TRACING_ENV).await?;
        Ok(Stack {
            dir,
            queue,
            _fallback: fallback,
            control,
        })
    }

    async fn client(&self) -> anyhow::Result<HandoffServiceClient<Channel>> {
        Ok(HandoffServiceClient::connect(self.control.endpoint("grpc")).await?)
    }

    fn desktop_url(&self) -> String {
        format!("http://{}/", self.queue.addr("http"))
    }
}

/// Agent ann ("Ann Agent", password `ann-pw`) and supervisor sue
/// (`sue-pw`) of tenant `default`, the control service's tenant without
/// credentials.
fn add_desk_accounts(file: &Path) -> anyhow::Result<()> {
    let account = |name: &str, role, display_name: Option<&str>, skills: &[&str]| Account {
        name: name.into(),
        display_name: display_name.map(str::to_owned),
        role,
        tenants: vec!["default".into()],
        skills: skills.iter().map(|s| (*s).to_owned()).collect(),
        contact: if role == Role::Agent {
            format!("sip:{name}@127.0.0.1")
        } else {
            String::new()
        },
        password: String::new(),
    };
    let ann = account(
        "ann",
        Role::Agent,
        Some("Ann Agent"),
        &["support", "billing"],
    );
    add_account(file, ann, "ann-pw").map_err(anyhow::Error::msg)?;
    let sue = account("sue", Role::Supervisor, None, &[]);
    add_account(file, sue, "sue-pw").map_err(anyhow::Error::msg)
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("non-UTF-8 path")
}

/// The sample escalation to the `support` queue, with the summary, account
/// number and hostile customer turn this test looks for on the desktop.
fn handoff_request(request_id: &str) -> CreateHandoffRequest {
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let mut request = baton_tests::sample_request(request_id, support);
    let context = request.context.as_mut().expect("the sample has a context");
    context.summary = SUMMARY.into();
    context.entities[0].value = ACCOUNT.into();
    context.transcript[0].text = HOSTILE.into();
    request.timeout = Some(prost_types::Duration {
        seconds: 300,
        nanos: 0,
    });
    request
}

/// Follows a handoff's events until one matches `done`; returns them all.
async fn watch_until(
    client: &mut HandoffServiceClient<Channel>,
    handoff_id: &str,
    done: impl Fn(&HandoffEvent) -> bool,
) -> anyhow::Result<Vec<HandoffEvent>> {
    let mut stream = baton_tests::open_watch(client, handoff_id, 0).await;
    baton_tests::read_until(&mut stream, WAIT, done).await
}

fn is(kind: HandoffEventKind) -> impl Fn(&HandoffEvent) -> bool {
    move |event| event.kind == kind as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_the_screen_pop_accepts_and_the_handoff_connects() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    Browser::run(
        stack.dir.path(),
        "queue-desktop-failure.png",
        &[],
        async |browser| agent_flow(&stack, browser).await,
    )
    .await
}

async fn agent_flow(stack: &Stack, browser: &Browser) -> anyhow::Result<()> {
    browser
        .sign_in(&stack.desktop_url(), "ann", "ann-pw")
        .await?;
    assert_eq!(browser.text("#agent-label").await?, "Ann Agent");

    let mut client = stack.client().await?;
    let mut create = tonic::Request::new(handoff_request("queue-desktop-1"));
    create.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-53995c3f42cd8ad8-01").parse()?,
    );
    let handoff = client
        .create_handoff(create)
        .await?
        .into_inner()
        .handoff
        .context("no handoff")?;

    // The screen pop arrives by itself (Server-Sent Events).
    browser.wait_text("#pop-summary", SUMMARY).await?;
    assert!(
        browser
            .text("#pop-intent")
            .await?
            .contains("billing.dispute")
    );
    assert!(browser.text("#pop-intent").await?.contains("92%"));
    let account = browser
        .text("tr.entity[data-name=account_number] .entity-value")
        .await?;
    assert!(account.contains("••••••"), "masked: {account:?}");
    assert!(
        !browser.client.source().await?.contains(ACCOUNT),
        "the sensitive value never reaches the page before a reveal"
    );
    assert!(
        browser
            .text("tr.entity[data-name=issue_type] .entity-value")
            .await?
            .contains("double charge")
    );
    let transcript = browser.text("#transcript").await?;
    assert!(
        transcript.contains(HOSTILE),
        "shown as text: {transcript:?}"
    );
    assert!(transcript.contains("connecting you with a specialist"));
    // The desktop event continues the caller's trace.
    let traceparent = browser
        .client
        .find(Locator::Css("#pop"))
        .await?
        .attr("data-traceparent")
        .await?
        .unwrap_or_default();
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "{traceparent:?}"
    );
    assert!(
        browser
            .text("#pop-attempts")
            .await?
            .contains("looked up the invoice")
    );
    assert!(
        browser
            .text("#pop-escalation")
            .await?
            .contains("asked for a person")
    );
    assert_ne!(
        browser.client.title().await?,
        "pwned",
        "the customer's words never run"
    );
    let shot = browser.screenshot("queue-screen-pop.png").await?;
    assert!(std::fs::metadata(&shot)?.len() > 0);
    // At phone width the pop reflows to one column; the actions stay reachable.
    browser.client.set_window_size(390, 844).await?;
    browser.client.find(Locator::Css("#accept")).await?;
    browser.screenshot("queue-screen-pop-phone.png").await?;
    browser.client.set_window_size(1280, 1000).await?;

    // The AI runtime hears that it was offered.
    watch_until(&mut client, &handoff.id, is(HandoffEventKind::Offered)).await?;

    // Revealing the sensitive field shows it (and the reveal is audited).
    browser
        .click("tr.entity[data-name=account_number] button.reveal")
        .await?;
    browser
        .wait_text("tr.entity[data-name=account_number] .entity-value", ACCOUNT)
        .await?;

    browser.click("#accept").await?;
    let events = watch_until(&mut client, &handoff.id, is(HandoffEventKind::Connected)).await?;
    assert!(events.iter().any(is(HandoffEventKind::Answered)));
    assert!(events.iter().any(is(HandoffEventKind::ContextDelivered)));
    browser.wait_text("#pop-title", "Connected").await?;
    browser.screenshot("queue-connected.png").await?;

    // Wrap-up completes the handoff and frees the agent; the agent judges
    // the handoff with one click each (and leaves one unanswered).
    browser
        .fill("#notes", "Refunded the duplicate charge")
        .await?;
    browser.click("#context_sufficient-yes").await?;
    browser.click("#customer_repeated-no").await?;
    browser.click("#finish").await?;
    watch_until(&mut client, &handoff.id, is(HandoffEventKind::Completed)).await?;
    // The wrap-up is stored on the handoff.
    let stored = client
        .get_handoff(GetHandoffRequest {
            handoff_id: handoff.id.clone(),
        })
        .await?
        .into_inner()
        .handoff
        .and_then(|h| h.wrap_up)
        .ok_or_else(|| anyhow::anyhow!("no wrap-up on the handoff"))?;
    assert_eq!(stored.notes, "Refunded the duplicate charge");
    assert!(!stored.disposition.is_empty());
    assert_eq!(
        (
            stored.context_sufficient(),
            stored.customer_repeated(),
            stored.escalation_needed()
        ),
        (
            pb::Judgement::Yes,
            pb::Judgement::No,
            pb::Judgement::Unspecified
        )
    );
    browser
        .wait_text("#idle", "Ready for the next handoff")
        .await?;

    // The supervisor view (a supervisor's sign-in: an agent's session is
    // refused there) lists the agent and the audited reveal.
    browser
        .client
        .goto(&format!("{}supervisor", stack.desktop_url()))
        .await?;
    browser
        .wait_text("#signin-error", "for supervisors")
        .await?;
    browser.fill("#account", "sue").await?;
    browser.fill("#password", "sue-pw").await?;
    browser.click("#sign-in").await?;
    browser.wait_text("#agents", "Ann Agent").await?;
    browser.wait_text("#audit", "account_number").await?;
    // This desk has no [outcomes] section: the panel says so.
    browser
        .wait_text("#outcomes-status", "Outcomes are not configured")
        .await?;
    assert!(
        !browser
            .client
            .find(Locator::Css("#outcomes-body"))
            .await?
            .is_displayed()
            .await?
    );
    browser.screenshot("queue-supervisor.png").await?;

    // The queue's Prometheus endpoint counts the transfer it completed.
    browser
        .client
        .goto(&format!("{}metrics", stack.desktop_url()))
        .await?;
    let metrics = browser.client.source().await?;
    let completed = metrics.lines().find(|line| {
        line.starts_with("baton_connector_transfers_finished_total{")
            && line.contains("outcome=\"completed\"")
            && line.contains("target_kind=\"TARGET_KIND_QUEUE\"")
    });
    assert!(
        completed.is_some_and(|line| line.ends_with(" 1")),
        "{metrics}"
    );
    assert!(!metrics.contains(ACCOUNT) && !metrics.contains(SUMMARY));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nobody_signed_in_the_handoff_falls_back_to_the_next_target() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut client = stack.client().await?;
    let handoff = client
        .create_handoff(handoff_request("queue-nobody-1"))
        .await?
        .into_inner()
        .handoff
        .context("no handoff")?;
    let events = watch_until(&mut client, &handoff.id, |event| {
        event.kind == HandoffEventKind::TargetStarted as i32
            && event.attempt.as_ref().is_some_and(|a| a.attempt == 2)
    })
    .await?;
    let failed = events
        .iter()
        .find(|e| e.kind == HandoffEventKind::TargetFailed as i32)
        .context("no TARGET_FAILED before the fallback")?;
    assert_eq!(
        failed.failure.as_ref().map(|f| f.reason),
        Some(pb::FailureReason::NoAgents as i32),
        "{failed:?}"
    );
    let second = events
        .last()
        .and_then(|e| e.attempt.clone())
        .context("attempt")?;
    assert_eq!(second.connector, "fallback");
    Ok(())
}
