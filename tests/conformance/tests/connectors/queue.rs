//! The queue connector with real agents on its desktop API: one who accepts
//! and wraps up every offer (queue `sales` connects), one who never answers
//! (queue `support` holds at OFFERED), and a queue nobody staffs
//! (`nobody` fails with NO_AGENTS). Agent cathy takes the chats (queue
//! `chats`): she accepts each offer and keeps the contact, and is the
//! human of the kit's `chat.*` checks through the desktop's chat API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use baton_conformance::{ChatHuman, HumanFuture, Subject};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{assert_report, launch, profile, with_config, write_config};

/// One HTTP/1.1 request to the desktop API as its page sends it (the
/// session cookie and the session's CSRF token); the status, the session
/// cookie set (at sign-in) and the body.
async fn http_with_cookie(
    addr: SocketAddr,
    method: &str,
    path: &str,
    session: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let authorization = session.map(session_headers).unwrap_or_default();
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
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    let cookie = head
        .lines()
        .filter_map(|line| line.split_once(": "))
        .find(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .and_then(|(_, value)| value.strip_prefix("baton_desk_session="))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    Ok((status, cookie, body.to_owned()))
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    session: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let (status, _, body) = http_with_cookie(addr, method, path, session, body).await?;
    Ok((status, body))
}

/// What the desktop page sends with a request: its session cookie and
/// the session's CSRF token.
fn session_headers(session: &str) -> String {
    format!(
        "Cookie: baton_desk_session={session}\r\nX-CSRF-Token: {}\r\n",
        baton_connector_queue::session::csrf_token(session)
    )
}

/// Gives the agent an account of the kit's tenant with `skills`, signs
/// them in and makes them available.
async fn sign_in(
    addr: SocketAddr,
    accounts: &std::path::Path,
    id: &str,
    skills: &[&str],
) -> anyhow::Result<String> {
    use baton_connector_queue::accounts::{Account, Role, add_account};
    let account = Account {
        name: id.into(),
        display_name: None,
        role: Role::Agent,
        tenants: vec![baton_conformance::requests::TENANT.into()],
        skills: skills.iter().map(|s| (*s).to_owned()).collect(),
        contact: String::new(),
        password: String::new(),
    };
    add_account(accounts, account, "pw").map_err(anyhow::Error::msg)?;
    let body = serde_json::json!({ "name": id, "password": "pw" }).to_string();
    let (status, session, body) =
        http_with_cookie(addr, "POST", "/api/sessions", None, &body).await?;
    if status != 200 {
        bail!("sign-in answered {status}: {body}");
    }
    let session = session.context("no session cookie")?;
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

/// The chat agent at the desktop, as the chat pane reads and writes.
struct DeskHuman {
    desktop: SocketAddr,
    session: String,
}

impl ChatHuman for DeskHuman {
    fn say<'a>(
        &'a self,
        handoff_id: &'a str,
        _attempt: u32,
        id: &'a str,
        text: &'a str,
    ) -> HumanFuture<'a, ()> {
        Box::pin(async move {
            let body = serde_json::json!({ "id": id, "text": text }).to_string();
            let path = format!("/api/chats/{handoff_id}/messages");
            let (status, answer) =
                http(self.desktop, "POST", &path, Some(&self.session), &body).await?;
            anyhow::ensure!(status == 204, "the desktop answered {status}: {answer}");
            Ok(())
        })
    }

    fn received<'a>(&'a self, handoff_id: &'a str) -> HumanFuture<'a, Vec<u64>> {
        Box::pin(async move {
            let path = format!("/api/chats/{handoff_id}?after=0");
            let (status, view) = http(self.desktop, "GET", &path, Some(&self.session), "").await?;
            if status != 200 {
                // Not accepted yet: nothing received.
                return Ok(Vec::new());
            }
            let view: serde_json::Value = serde_json::from_str(&view)?;
            Ok(view["entries"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .filter_map(|e| e["sequence"].as_u64())
                        .collect()
                })
                .unwrap_or_default())
        })
    }
}

/// The agent who answers: follows their desktop's live view (Server-Sent
/// Events), accepts each offer and, when `wrap_up`, wraps up each active
/// contact (a chat agent keeps hers: the kit ends the chat).
async fn answer_everything(addr: SocketAddr, session: String, wrap_up: bool) -> anyhow::Result<()> {
    // Bounded: a few reconnections if the view stream drops.
    for _ in 0..20 {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET /api/agent/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{}\r\n",
            session_headers(&session)
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
            if let Some(id) = view["active"]["handoff_id"].as_str().filter(|_| wrap_up) {
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
    let accounts = dir.path().join("desk-accounts.toml");
    let config = write_config(
        dir.path(),
        "queue.toml",
        &(r#"
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

[[queues]]
name = "chats"
skills = ["chats"]
"#
        .to_owned()
            + &format!(
                "\n[desk]\naccounts_file = {:?}\n",
                accounts.display().to_string()
            )),
    );
    let log = dir.path().join("connector.log");
    let launched = launch(&with_config("baton-connector-queue", &config), &log).await;
    let desktop: SocketAddr = launched.ready["http"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("the ready line names the desktop address");

    let answering = sign_in(desktop, &accounts, "ann", &["sales"])
        .await
        .expect("ann signs in");
    let answerer = tokio::spawn(answer_everything(desktop, answering, true));
    let chatting = sign_in(desktop, &accounts, "cathy", &["chats"])
        .await
        .expect("cathy signs in");
    let chat_agent = tokio::spawn(answer_everything(desktop, chatting.clone(), false));
    let _idle = sign_in(desktop, &accounts, "ivan", &["support"])
        .await
        .expect("ivan signs in");

    let profile = profile("queue", &[]);
    let human = Arc::new(DeskHuman {
        desktop,
        session: chatting,
    });
    let report =
        baton_conformance::run_with_human(Subject::Launched(Box::new(launched)), &profile, human)
            .await;
    println!("{}", report.render_text());
    answerer.abort();
    chat_agent.abort();
    assert_report(&report, &[], &[], &log);
    assert!(
        report.get("cancel.at_stage.offered").is_some(),
        "a cancel while offered to an agent\n{}",
        report.render_text()
    );
}
