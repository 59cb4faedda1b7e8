//! The agent desktop's sign-in and tenant scope, end to end: two tenants
//! (acme and globex) share one `baton-connector-queue`, behind a
//! `baton-control` that requires API keys; accounts are made with
//! `baton desk account add`; acme's agent works in real headless Chromium.
//! Acme's agent gets a screen pop of acme's handoff and never sees
//! globex's, although both wait in a queue named `support`; a wrong
//! password, a change without the CSRF token and the supervisor stream
//! without a supervisor's session are refused; a signed-out session works
//! no more.

use std::path::Path;

use anyhow::{Context, bail};
use baton_tests::desk::{self, Desk, TenantDesk, anonymous_first_view};
use browser::Browser;

mod browser;

const ACME_SUMMARY: &str = "Acme customer: router keeps rebooting";
const GLOBEX_SUMMARY: &str = "Globex customer: wants to cancel the contract";

/// Runs the `baton` command with `stdin`; its stdout.
fn baton(args: &[&str], stdin: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(baton_tests::binary("baton"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "baton {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `baton desk account add`, the password on standard input.
fn add_account(file: &Path, name: &str, role: &str, tenant: &str) -> anyhow::Result<()> {
    let file = file.to_str().context("a UTF-8 path")?;
    let mut args = vec![
        "desk", "account", "add", "--file", file, "--name", name, "--role", role, "--tenant",
        tenant,
    ];
    if role == "agent" {
        args.extend(["--skill", "support"]);
    }
    baton(&args, &format!("{name}-pw\n"))?;
    Ok(())
}

/// The queue (one `support` queue, shared by every tenant), the control
/// service with an API key per tenant, and the desktop accounts: agents
/// ann (acme) and gil (globex), supervisor sue (acme).
async fn start() -> anyhow::Result<TenantDesk> {
    let dir = tempfile::tempdir()?;
    let accounts = dir.path().join("desk-accounts.toml");
    add_account(&accounts, "ann", "agent", "acme")?;
    add_account(&accounts, "gil", "agent", "globex")?;
    add_account(&accounts, "sue", "supervisor", "acme")?;
    let text = std::fs::read_to_string(&accounts)?;
    assert!(
        text.contains("$argon2id$") && !text.contains("ann-pw"),
        "hashes only: {text}"
    );

    let queue = desk::start_queue(dir.path(), &accounts, "").await?;
    TenantDesk::start(dir, queue).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_signs_in_with_a_password_and_sees_only_their_tenants_handoffs()
-> anyhow::Result<()> {
    let stack = start().await?;
    Browser::run_at(&stack, "desk-tenants-failure.png", async |browser| {
        flow(&stack, browser).await
    })
    .await
}

async fn flow(stack: &TenantDesk, browser: &Browser) -> anyhow::Result<()> {
    let base = stack.desktop();

    // Globex's agent is signed in but away: globex's customer waits in
    // globex's `support` queue, with acme's agent idle beside it.
    let gil = Desk::sign_in(&base, "gil", "gil-pw").await?;
    let away = serde_json::json!({ "state": "away" });
    let status = gil
        .change(reqwest::Method::PUT, "/api/agent/state", away)
        .await?;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let tenants = &stack.tenants;
    let globex_handoff = tenants
        .create(&tenants.globex_key, "globex-1", GLOBEX_SUMMARY)
        .await?;

    // A wrong password is refused; the right one signs in.
    browser.client.goto(&format!("{base}/")).await?;
    browser.fill("#agent-id", "ann").await?;
    browser.fill("#password", "gil-pw").await?;
    browser.click("#sign-in").await?;
    browser
        .wait_text("#signin-error", "wrong name or password")
        .await?;
    browser.fill("#password", "ann-pw").await?;
    browser.click("#sign-in").await?;
    browser
        .wait_text("#idle", "Ready for the next handoff")
        .await?;
    assert_eq!(
        browser.text("#waiting").await?,
        "0",
        "globex's waiting customer is not counted for ann"
    );

    // Acme's handoff pops on ann's desktop; globex's never does.
    let acme_handoff = tenants
        .create(&tenants.acme_key, "acme-1", ACME_SUMMARY)
        .await?;
    browser.wait_text("#pop-summary", ACME_SUMMARY).await?;
    let page = browser.client.source().await?;
    assert!(page.contains(&acme_handoff));
    assert!(
        !page.contains(GLOBEX_SUMMARY) && !page.contains(&globex_handoff),
        "globex's customer never reaches acme's agent"
    );
    browser.screenshot("desk-tenants-screen-pop.png").await?;

    // The same through the API: ann's view and acme's supervisor stream
    // know acme's handoff only; globex's agent, back, gets globex's.
    let ann = Desk::sign_in(&base, "ann", "ann-pw").await?;
    let view = ann.agent_view_until(|v| !v["offer"].is_null()).await?;
    assert_eq!(view["offer"]["handoff_id"], acme_handoff.as_str());
    let sue = Desk::sign_in(&base, "sue", "sue-pw").await?;
    let supervised = sue
        .first_view("/api/supervisor/events")
        .await?
        .map_err(|status| anyhow::anyhow!("supervisor stream refused: {status}"))?
        .to_string();
    assert!(supervised.contains(&acme_handoff), "{supervised}");
    assert!(
        !supervised.contains(&globex_handoff) && !supervised.contains("\"gil\""),
        "nothing of globex in acme's supervisor view: {supervised}"
    );
    let available = serde_json::json!({ "state": "available" });
    let status = gil
        .change(reqwest::Method::PUT, "/api/agent/state", available)
        .await?;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let view = gil.agent_view_until(|v| !v["offer"].is_null()).await?;
    assert_eq!(view["offer"]["handoff_id"], globex_handoff.as_str());
    assert_eq!(view["offer"]["summary"], GLOBEX_SUMMARY);

    // Another tenant's handoff cannot be acted on, a change without the
    // CSRF token is refused, and the supervisor stream needs a
    // supervisor's session.
    let accept_globex = format!("/api/handoffs/{globex_handoff}/accept");
    let status = ann
        .change(reqwest::Method::POST, &accept_globex, serde_json::json!({}))
        .await?;
    assert!(status.is_client_error(), "{status}");
    let accept_acme = format!("/api/handoffs/{acme_handoff}/accept");
    let status = ann
        .change_without_csrf(reqwest::Method::POST, &accept_acme, serde_json::json!({}))
        .await?;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "no CSRF token");
    let anonymous = anonymous_first_view(&base, "/api/supervisor/events").await?;
    assert_eq!(anonymous.err(), Some(reqwest::StatusCode::UNAUTHORIZED));
    let as_agent = ann.first_view("/api/supervisor/events").await?;
    assert_eq!(as_agent.err(), Some(reqwest::StatusCode::FORBIDDEN));

    // Signed out, a session no longer works, in the browser and outside.
    browser.click("#sign-out").await?;
    browser
        .client
        .find(fantoccini::Locator::Css("#signin-form"))
        .await?;
    let status = ann
        .change(
            reqwest::Method::DELETE,
            "/api/sessions",
            serde_json::json!({}),
        )
        .await?;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let after = ann.first_view("/api/agent/events").await?;
    assert_eq!(after.err(), Some(reqwest::StatusCode::UNAUTHORIZED));
    browser.client.refresh().await?;
    browser.wait_text("#signin-title", "Sign in").await?;
    Ok(())
}
