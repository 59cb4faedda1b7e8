//! The queue connector with real agents on its desktop API: one who accepts
//! and wraps up every offer (queue `sales` connects), one who never answers
//! (queue `support` holds at OFFERED), and a queue nobody staffs
//! (`nobody` fails with NO_AGENTS).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_conformance::Subject;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{assert_report, check, launch, profile, with_config, write_config};

/// One HTTP/1.1 request to the desktop API; the status and body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    session: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let authorization = session
        .map(|s| format!("Authorization: Bearer {s}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{authorization}\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await??;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status line in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Signs an agent in with `skills` and makes them available.
async fn sign_in(addr: SocketAddr, id: &str, skills: &[&str]) -> anyhow::Result<String> {
    let body = serde_json::json!({ "agent_id": id, "skills": skills }).to_string();
    let (status, body) = http(addr, "POST", "/api/sessions", None, &body).await?;
    if status != 200 {
        bail!("sign-in answered {status}: {body}");
    }
    let session = serde_json::from_str::<serde_json::Value>(&body)?["session"]
        .as_str()
        .context("no session")?
        .to_owned();
    let (status, body) = http(
        addr,
        "PUT",
        "/api/agent/state",
        Some(&session),
        r#"{"state":"available"}"#,
    )
    .await?;
    if status != 204 {
        bail!("going available answered {status}: {body}");
    }
    Ok(session)
}

/// The signed-in agent's `action` (accept, wrap-up…) on handoff `id`.
async fn act_on(
    addr: SocketAddr,
    session: &str,
    id: &str,
    action: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let path = format!("/api/handoffs/{id}/{action}");
    http(addr, "POST", &path, Some(session), body).await
}

/// The agent who answers: follows their desktop's live view (Server-Sent
/// Events), accepts each offer and wraps up each active contact.
async fn answer_everything(addr: SocketAddr, session: String) -> anyhow::Result<()> {
    // Bounded: a few reconnections if the view stream drops.
    for _ in 0..20 {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET /api/agent/events?session={session} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut lines = BufReader::new(stream).lines();
        while let Some(line) = lines.next_line().await? {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let Ok(view) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                continue;
            };
            // Best effort: what failed shows again in the next view.
            if let Some(id) = view["offer"]["handoff_id"].as_str() {
                let _ = act_on(addr, &session, id, "accept", "").await;
            }
            if let Some(id) = view["active"]["handoff_id"].as_str() {
                let wrap_up = r#"{"disposition":"resolved","notes":"conformance"}"#;
                let _ = act_on(addr, &session, id, "wrap-up", wrap_up).await;
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_queue_connector_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "queue.toml",
        r#"
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
# The agent who never answers keeps each offer for the whole run.
offer_timeout = "10m"

[[queues]]
name = "sales"
skills = ["sales"]

[[queues]]
name = "support"
skills = ["support"]

[[queues]]
name = "nobody"
skills = ["nobody"]
"#,
    );
    let log = dir.path().join("connector.log");
    let launched = launch(&with_config("baton-connector-queue", &config), &log).await;
    let desktop: SocketAddr = launched.ready["http"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("the ready line names the desktop address");

    let answering = sign_in(desktop, "ann", &["sales"])
        .await
        .expect("ann signs in");
    let answerer = tokio::spawn(answer_everything(desktop, answering));
    let _idle = sign_in(desktop, "ivan", &["support"])
        .await
        .expect("ivan signs in");

    let profile = profile("queue", &[]);
    let report = check(Subject::Launched(Box::new(launched)), &profile).await;
    answerer.abort();
    assert_report(&report, &[], &[], &log);
    assert!(
        report.get("cancel.at_stage.offered").is_some(),
        "a cancel while offered to an agent\n{}",
        report.render_text()
    );
}
