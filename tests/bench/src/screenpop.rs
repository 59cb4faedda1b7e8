//! Scenario 3, time to screen pop: from CreateHandoff to the context
//! arriving at a signed-in agent's desktop, over the desktop's own
//! Server-Sent Events stream, with the control service (durable SQLite) and
//! the embedded queue in this process.
//!
//! The baseline is the desktop's own floor: from an agent's state change
//! (an HTTP PUT) to the same SSE stream showing it. Both cross the queue's
//! desk and its SSE path; the screen pop adds the gRPC call, the durable
//! commit, the dispatch and StartTransfer.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use baton_proto::handoff::v1::CancelHandoffRequest;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::Scale;
use crate::api::{connect, unique};
use crate::payload::create_request;
use crate::report::Table;

const SCENARIO: &str = "screen pop";
/// Handoffs popped (and state changes for the floor), full run.
const COUNT: usize = 300;

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    eprintln!("screen pop: starting the embedded queue and the control service");
    let stop = CancellationToken::new();
    let stack = crate::embedded::start_stack(dir, &stop, &["bench".into()]).await?;
    let channel = connect(stack.control, 1).await?.remove(0);
    let base = format!("http://{}", stack.desktop);
    let session = sign_in(&base).await?;
    // Every request then goes as the desktop page sends it: the session
    // cookie, and the session's CSRF token.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        format!("baton_desk_session={session}").parse()?,
    );
    headers.insert(
        "x-csrf-token",
        baton_connector_queue::session::csrf_token(&session).parse()?,
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()?;
    let mut views = Views::open(&http, &format!("{base}/api/agent/events")).await?;

    let count = scale.count(COUNT);
    let bound = scale.bound(Duration::from_secs(60));
    state_change(&http, &base, &mut views, "available").await?;
    let started = Instant::now();
    let mut floor = Vec::with_capacity(count);
    let mut pops = Vec::with_capacity(count);
    let mut client = HandoffServiceClient::new(channel);
    for index in 0..count {
        if started.elapsed() > bound {
            break;
        }
        floor.push(state_change(&http, &base, &mut views, "away").await?);
        state_change(&http, &base, &mut views, "available").await?;
        pops.push(screen_pop(&mut client, &mut views, index).await?);
    }
    table.add_p50_p99(
        SCENARIO,
        "CreateHandoff to screen pop",
        &mut pops,
        "agent state change to SSE",
        &mut floor,
    );
    stop.cancel();
    Ok(())
}

/// One handoff: the time from CreateHandoff to its offer on the desktop;
/// then cancelled, and waited for until the offer is gone.
async fn screen_pop(
    client: &mut HandoffServiceClient<Channel>,
    views: &mut Views,
    index: usize,
) -> anyhow::Result<Duration> {
    let sent = Instant::now();
    let id = client
        .create_handoff(create_request(unique(&format!("pop-{index}")), "support"))
        .await?
        .into_inner()
        .handoff
        .context("CreateHandoff answered no handoff")?
        .id;
    views
        .until(|view| view["offer"]["handoff_id"].as_str() == Some(id.as_str()))
        .await?;
    let took = sent.elapsed();
    client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: id,
            reason: "bench".into(),
        })
        .await?;
    views.until(|view| view["offer"].is_null()).await?;
    Ok(took)
}

/// The floor: an agent state change, from the PUT to the SSE view showing it.
async fn state_change(
    http: &reqwest::Client,
    base: &str,
    views: &mut Views,
    state: &str,
) -> anyhow::Result<Duration> {
    let sent = Instant::now();
    http.put(format!("{base}/api/agent/state"))
        .json(&json!({ "state": state }))
        .send()
        .await?
        .error_for_status()?;
    views
        .until(|view| view["agent"]["state"].as_str() == Some(state))
        .await?;
    Ok(sent.elapsed())
}

/// The agent's SSE stream of views.
struct Views {
    response: reqwest::Response,
    buffer: String,
}

impl Views {
    async fn open(http: &reqwest::Client, url: &str) -> anyhow::Result<Self> {
        let response = http.get(url).send().await?.error_for_status()?;
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// Reads views until one satisfies `wanted` (bounded: 10 s).
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let event: String = self.buffer.drain(..end + 2).collect();
                    let data: String = event
                        .lines()
                        .filter_map(|line| line.strip_prefix("data:"))
                        .map(str::trim_start)
                        .collect();
                    if data.is_empty() {
                        continue;
                    }
                    let view: Value = serde_json::from_str(&data)?;
                    if wanted(&view) {
                        return Ok(view);
                    }
                }
                match self.response.chunk().await? {
                    Some(chunk) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    None => bail!("the desktop's event stream ended"),
                }
            }
        })
        .await
        .context("no such view within 10 s")?
    }
}

/// Signs the bench agent in; the session id from its cookie.
async fn sign_in(base: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .post(format!("{base}/api/sessions"))
        .json(&json!({ "name": "bench", "password": crate::embedded::PASSWORD }))
        .send()
        .await?
        .error_for_status()?;
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.strip_prefix("baton_desk_session="))
        .map(str::to_owned)
        .context("sign-in set no session cookie")
}
