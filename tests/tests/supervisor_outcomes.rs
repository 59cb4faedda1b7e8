//! The supervisor view's "Outcomes, last 24 hours" panel, end to end: the
//! real control service (API keys required) in front of the real queue
//! connector, whose desk reads `GetOutcomeMetrics` with a supervisor key
//! of its own (`[outcomes]`). One handoff is accepted and wrapped up with
//! the agent's judgements, another is cancelled while it waits; then a
//! supervisor signs in in headless Chromium and the panel counts them,
//! with the current hour's bar in the chart.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_connector_queue::accounts::{Account, Role, add_account};
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::auth::Client;
use baton_tests::desk::{Desk, desktop_base, start_queue};
use browser::Browser;
use fantoccini::Locator;
use reqwest::{Method, StatusCode};
use serde_json::json;

mod browser;

/// Every wait in this test is bounded by this.
const WAIT: Duration = Duration::from_secs(30);
const TENANT: &str = "acme";

/// Agent ann and supervisor sue of acme (passwords `<name>-pw`).
fn add_accounts(file: &Path) -> anyhow::Result<()> {
    for (name, role) in [("ann", Role::Agent), ("sue", Role::Supervisor)] {
        let account = Account {
            name: name.into(),
            display_name: None,
            role,
            tenants: vec![TENANT.into()],
            skills: if role == Role::Agent {
                vec!["support".into()]
            } else {
                Vec::new()
            },
            contact: String::new(),
            password: String::new(),
        };
        add_account(file, account, &format!("{name}-pw")).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// A port free now, for the control service: the queue's config names
/// the control service before the control service, which names the
/// queue, is started.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Follows a handoff's events until one of `kind` (bounded by [`WAIT`]).
async fn watch_until(client: &mut Client, id: &str, kind: HandoffEventKind) -> anyhow::Result<()> {
    let mut stream = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: id.into(),
            after_sequence: 0,
        })
        .await?
        .into_inner();
    baton_tests::read_until(&mut stream, WAIT, |event| event.kind() == kind).await?;
    Ok(())
}

async fn create(client: &mut Client, request_id: &str) -> anyhow::Result<String> {
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let mut request = baton_tests::sample_request(request_id, support);
    request.timeout = Some(Duration::from_secs(300).try_into()?);
    Ok(client
        .create_handoff(request)
        .await?
        .into_inner()
        .handoff
        .context("no handoff")?
        .id)
}

/// Waits until the element's text is exactly `expected`.
async fn wait_exact(browser: &Browser, css: &str, expected: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = browser.text(css).await.unwrap_or_default();
        if text.trim() == expected {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{css} never read {expected:?}; last {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_the_days_handoffs_their_judgements_and_the_hourly_chart()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("api-keys.toml");
    let runtime_key = baton_tests::auth::new_key(&keys, TENANT, &["ai_runtime"], "runtime");
    let desk_key = baton_tests::auth::new_key(&keys, TENANT, &["supervisor"], "desk");
    let desk_key_file = dir.path().join("desk-control-key");
    std::fs::write(&desk_key_file, format!("{desk_key}\n"))?;
    let accounts = dir.path().join("desk-accounts.toml");
    add_accounts(&accounts)?;

    let control_listen = format!("127.0.0.1:{}", free_port()?);
    let queue = start_queue(
        dir.path(),
        &accounts,
        &format!(
            "[outcomes]\ncontrol_endpoint = \"http://{control_listen}\"\n\
             api_key_file = {:?}\ntenant = \"{TENANT}\"\n",
            desk_key_file.display().to_string()
        ),
    )
    .await?;
    let keys_path = keys.to_str().context("a UTF-8 path")?;
    let control = baton_tests::control_with_connector(
        "queue",
        &queue.endpoint("grpc"),
        &[
            ("BATON_AUTH__MODE", "required"),
            ("BATON_AUTH__API_KEYS_FILE", keys_path),
            ("BATON_SERVER__GRPC_LISTEN", control_listen.as_str()),
        ],
        dir.path(),
    )
    .await?;
    assert_eq!(control.addr("grpc").to_string(), control_listen);
    let mut client = baton_tests::auth::client(&control, Some(&runtime_key)).await;
    let base = desktop_base(&queue);

    // The first handoff reaches ann; while she has it, the second waits
    // and its customer gives up.
    let ann = Desk::sign_in(&base, "ann", "ann-pw").await?;
    ann.available().await?;
    let served = create(&mut client, "outcomes-served").await?;
    ann.agent_view_until(|v| v["offer"]["handoff_id"] == served.as_str())
        .await?;
    let status = ann
        .change(
            Method::POST,
            &format!("/api/handoffs/{served}/accept"),
            json!({}),
        )
        .await?;
    assert!(status.is_success(), "accept: {status}");
    watch_until(&mut client, &served, HandoffEventKind::Connected).await?;

    let abandoned = create(&mut client, "outcomes-abandoned").await?;
    watch_until(&mut client, &abandoned, HandoffEventKind::Queued).await?;
    client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: abandoned.clone(),
            ..Default::default()
        })
        .await?;
    watch_until(&mut client, &abandoned, HandoffEventKind::Cancelled).await?;

    let status = ann
        .change(
            Method::POST,
            &format!("/api/handoffs/{served}/wrap-up"),
            json!({
                "disposition": "resolved",
                "notes": "refunded",
                "context_sufficient": true,
                "customer_repeated": false,
            }),
        )
        .await?;
    assert!(status.is_success(), "wrap-up: {status}");
    watch_until(&mut client, &served, HandoffEventKind::Completed).await?;

    // The figures are for supervisors: an agent is refused, a stranger too.
    let (status, _) = ann.read("/api/supervisor/outcomes").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let stranger = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("{base}/api/supervisor/outcomes"))
        .send()
        .await?;
    assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);

    // The JSON a supervisor's page reads.
    let sue = Desk::sign_in(&base, "sue", "sue-pw").await?;
    let (status, view) = sue.read("/api/supervisor/outcomes").await?;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["tenant"], TENANT);
    let total = &view["total"];
    assert_eq!(
        (
            &total["handoffs"],
            &total["reached_human"],
            &total["abandoned"],
            &total["failed"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(0)),
        "{view}"
    );
    assert_eq!(total["abandon_rate"], json!(0.5));
    assert_eq!(
        total["context_sufficient"],
        json!({"yes": 1, "no": 0, "rate": 1.0})
    );
    assert_eq!(
        total["customer_repeated"],
        json!({"yes": 0, "no": 1, "rate": 0.0})
    );
    assert_eq!(total["escalation_needed"]["rate"], serde_json::Value::Null);
    let hours = view["hours"].as_array().context("hours")?;
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23]["handoffs"], 2, "both in the current hour: {view}");
    assert_eq!(hours[23]["abandoned"], 1);
    let groups = view["groups"].as_array().context("groups")?;
    assert_eq!(groups.len(), 1, "{view}");
    assert_eq!(
        (&groups[0]["connector"], &groups[0]["trigger"]),
        (&json!("queue"), &json!("explicit_request"))
    );

    // The panel, in a real browser.
    Browser::run(
        dir.path(),
        "supervisor-outcomes-failure.png",
        &[],
        async |browser| panel(browser, &base).await,
    )
    .await
}

async fn panel(browser: &Browser, base: &str) -> anyhow::Result<()> {
    browser.client.goto(&format!("{base}/supervisor")).await?;
    browser.fill("#account", "sue").await?;
    browser.fill("#password", "sue-pw").await?;
    browser.click("#sign-in").await?;
    wait_exact(browser, "#outcomes-handoffs", "2").await?;
    wait_exact(browser, "#outcomes-reached-human", "1").await?;
    wait_exact(browser, "#outcomes-abandoned", "1").await?;
    wait_exact(browser, "#outcomes-failed", "0").await?;
    wait_exact(browser, "#outcomes-abandon-rate", "50%").await?;
    wait_exact(
        browser,
        "#outcomes-context-sufficient-rate",
        "100% (1 of 1)",
    )
    .await?;
    wait_exact(browser, "#outcomes-repeat-rate", "0% (0 of 1)").await?;
    wait_exact(browser, "#outcomes-escalation-needed-rate", "—").await?;
    assert_ne!(browser.text("#outcomes-time-p50").await?, "—");
    browser.wait_text("#outcomes-tenant", TENANT).await?;
    browser
        .wait_text("#outcomes-groups", "explicit request")
        .await?;

    // 24 bars; the last (this hour) holds both handoffs, the others none.
    let bars = browser
        .client
        .find_all(Locator::Css("#outcomes-chart rect.bar"))
        .await?;
    assert_eq!(bars.len(), 24);
    let mut counts = Vec::new();
    for bar in &bars {
        let handoffs = bar.attr("data-handoffs").await?.unwrap_or_default();
        counts.push(handoffs.parse::<u64>().context("data-handoffs")?);
    }
    assert_eq!(counts[23], 2, "{counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 2, "{counts:?}");
    let height: f64 = bars[23]
        .attr("height")
        .await?
        .unwrap_or_default()
        .parse()
        .context("height")?;
    assert!(height > 0.0, "the current hour's bar is drawn: {height}");
    let empty: f64 = bars[0]
        .attr("height")
        .await?
        .unwrap_or_default()
        .parse()
        .context("height")?;
    assert_eq!(empty, 0.0);
    let abandoned = browser
        .client
        .find_all(Locator::Css("#outcomes-chart rect.bar-abandoned"))
        .await?;
    let abandoned_height: f64 = abandoned[23]
        .attr("height")
        .await?
        .unwrap_or_default()
        .parse()
        .context("height")?;
    assert!(
        abandoned_height > 0.0 && abandoned_height < height,
        "half the bar is abandoned: {abandoned_height} of {height}"
    );
    // The text alternative says the same.
    assert!(
        browser
            .text("#outcomes-chart-summary")
            .await?
            .contains("2 handoffs over 24 hours")
    );
    browser.screenshot("supervisor-outcomes.png").await?;

    // Refresh reads the figures again (still the same).
    browser.click("#outcomes-refresh").await?;
    wait_exact(browser, "#outcomes-handoffs", "2").await?;
    Ok(())
}
