//! Handoffs per second through the control service (durable SQLite) and the
//! embedded queue to agents' desktops: [`AGENTS`] agents signed in, each
//! following its own Server-Sent Events stream as the desktop page does,
//! accepting every offer it reads there and wrapping the contact up (what
//! the desktop's HTTP API asks before the agent is offered the next one),
//! while handoffs are created so that [`CONCURRENCY`] are in flight: a new
//! one is created as soon as an offer is read, so the queue's line stays
//! that short (a backlog is the memory scenario's). The figure runs from
//! the first CreateHandoff until the last handoff's offer was read from a
//! stream.
//!
//! Two baselines from the same run: the same desktops' own floor, agent
//! state changes (an HTTP PUT, until the agent's stream shows it) from all
//! agents at once; and CreateHandoff alone at the same concurrency, to a
//! script connector that holds every transfer (the control service without
//! the queue, its desktop and the agents' round trips). Then the CPU time
//! this process spent per handoff in each, since it holds every service
//! and client: what bounds the rate once the CPU is the limit.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_tests::desk::{Desk, Views};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::Scale;
use crate::api::{connect, each_on_tasks, load_to, unique};
use crate::embedded::{PASSWORD, QUEUE, agent_names, start_stack};
use crate::firstring::cpu_time;
use crate::payload::create_request;
use crate::report::Table;

const SCENARIO: &str = "queue rate";
/// Handoffs through the queue (and state changes, and calls to the script
/// connector, for the baselines), full run.
const COUNT: usize = 2_000;
/// Handoffs in flight: created, their offer not yet read.
const CONCURRENCY: usize = 32;
/// Agents signed in, each taking one handoff at a time.
const AGENTS: usize = 32;

/// What the agents saw of the handoffs.
struct Offers {
    read: AtomicUsize,
    last_read: Mutex<Option<Instant>>,
    /// A permit per handoff that may be created now: one given back at
    /// each offer read.
    window: Arc<Semaphore>,
}

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    eprintln!("queue rate: starting the embedded queue and the control service");
    let stop = CancellationToken::new();
    let names = agent_names(AGENTS);
    let stack = start_stack(&dir.join("queue"), &stop, &names).await?;
    let base = format!("http://{}", stack.desktop);
    let mut desks = Vec::with_capacity(AGENTS);
    for name in &names {
        let desk = Desk::sign_in(&base, name, PASSWORD).await?;
        let views = desk
            .views("/api/agent/events")
            .await?
            .map_err(|status| anyhow::anyhow!("the agent's event stream refused: {status}"))?;
        desks.push((desk, views));
    }
    let count = scale.count(COUNT);
    let bound = scale.bound(Duration::from_secs(60));

    eprintln!("queue rate: {count} agent state changes, {AGENTS} agents at once");
    let state_changes = state_changes(desks, count, bound).await?;
    let state_changes_per_second = state_changes.changed as f64 / state_changes.took.as_secs_f64();

    eprintln!("queue rate: {count} handoffs to {AGENTS} agents, c={CONCURRENCY}");
    let offers = Arc::new(Offers {
        read: AtomicUsize::new(0),
        last_read: Mutex::new(None),
        window: Arc::new(Semaphore::new(CONCURRENCY)),
    });
    let agents_stop = CancellationToken::new();
    let mut agents = JoinSet::new();
    for (desk, views) in state_changes.desks {
        agents.spawn(take_offers(
            desk,
            views,
            offers.clone(),
            agents_stop.clone(),
        ));
    }
    let channels = connect(stack.control, 4).await?;
    let cpu = cpu_time()?;
    let started = Instant::now();
    let created =
        create_in_window(&channels, count, offers.window.clone(), started + bound).await?;
    // Every created handoff is offered once the agents take the ones
    // before it; bounded in case one is not.
    let wait_until = Instant::now() + bound;
    while offers.read.load(Ordering::Acquire) < created && Instant::now() < wait_until {
        if let Some(agent) = agents.try_join_next() {
            agent??;
            bail!("an agent stopped before the handoffs were offered");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let queue_cpu = (cpu_time()? - cpu) / created.max(1) as f64;
    agents_stop.cancel();
    while let Some(agent) = agents.join_next().await {
        agent??;
    }
    let read = offers.read.load(Ordering::Acquire).min(created);
    if read < created {
        eprintln!("queue rate: only {read} of {created} offers read in time");
    }
    let last_read = offers
        .last_read
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .context("no offer was read")?;
    let handoffs_per_second = read as f64 / (last_read - started).as_secs_f64();
    stop.cancel();

    eprintln!("queue rate: {count} handoffs to a holding script connector, c={CONCURRENCY}");
    let script_stop = CancellationToken::new();
    let script = crate::api::start_stack(&dir.join("script"), &script_stop).await?;
    let script_channels = connect(script, 4).await?;
    let cpu = cpu_time()?;
    let script_level = load_to(&script_channels, "hold", CONCURRENCY, count, bound).await;
    let script_cpu = (cpu_time()? - cpu) / script_level.created.max(1) as f64;
    script_stop.cancel();

    let figure = format!("handoffs to SSE desktops/s, {AGENTS} agents, c={CONCURRENCY}");
    table.add(
        SCENARIO,
        &figure,
        handoffs_per_second,
        format!("agent state changes to SSE/s, {AGENTS} agents"),
        state_changes_per_second,
        "/s",
    );
    table.add(
        SCENARIO,
        format!("{figure} (vs script connector)"),
        handoffs_per_second,
        format!("CreateHandoff to a holding script connector/s, c={CONCURRENCY}"),
        script_level.per_second,
        "/s",
    );
    // Whether the rate is bound by the CPU: this process holds every
    // service and client, so 2 cores give at most 2,000 ms per second.
    table.add(
        SCENARIO,
        "CPU time per handoff to an SSE desktop (this process)",
        queue_cpu,
        "per CreateHandoff to a holding script connector",
        script_cpu,
        "ms",
    );
    Ok(())
}

/// Creates up to `count` handoffs to the queue, each once the window has
/// room (see [`Offers::window`]), until `deadline`; how many were created.
async fn create_in_window(
    channels: &[Channel],
    count: usize,
    window: Arc<Semaphore>,
    deadline: Instant,
) -> anyhow::Result<usize> {
    let prefix = unique("queuerate");
    let channels = channels.to_vec();
    let created = each_on_tasks(count, CONCURRENCY, move |index| {
        let mut client = HandoffServiceClient::new(channels[index % channels.len()].clone());
        let request = create_request(format!("{prefix}-{index}"), QUEUE);
        let window = window.clone();
        async move {
            let deadline = tokio::time::Instant::from_std(deadline);
            let Ok(permit) = tokio::time::timeout_at(deadline, window.acquire()).await else {
                return Ok(false);
            };
            permit?.forget();
            if let Err(status) = client.create_handoff(request).await {
                eprintln!("queue rate: CreateHandoff: {status}");
                // No offer will give this one's room back.
                window.add_permits(1);
                return Ok(false);
            }
            Ok(true)
        }
    })
    .await?;
    Ok(created.into_iter().filter(|created| *created).count())
}

/// What the state-change floor measured, and the desktops back, every
/// agent available again.
struct StateChanges {
    desks: Vec<(Desk, Views)>,
    changed: usize,
    took: Duration,
}

/// About `count` agent state changes (away, then available again, …),
/// spread over the desktops, all at once: each from its PUT until the
/// agent's own stream shows it; stops early at `bound`.
async fn state_changes(
    desks: Vec<(Desk, Views)>,
    count: usize,
    bound: Duration,
) -> anyhow::Result<StateChanges> {
    // An even number per agent, so every agent ends available.
    let per_agent = (count / desks.len().max(1)).max(2) & !1;
    let started = Instant::now();
    let deadline = started + bound;
    let mut agents = JoinSet::new();
    for (desk, mut views) in desks {
        agents.spawn(async move {
            let mut changed = 0;
            for n in 0..per_agent {
                // Back to available whatever the deadline.
                if n % 2 == 0 && Instant::now() >= deadline {
                    break;
                }
                let state = if n % 2 == 0 { "away" } else { "available" };
                let status = desk
                    .change(Method::PUT, "/api/agent/state", json!({ "state": state }))
                    .await?;
                if !status.is_success() {
                    bail!("agent state {state}: {status}");
                }
                views
                    .until(|view| view["agent"]["state"].as_str() == Some(state))
                    .await?;
                changed += 1;
            }
            anyhow::Ok((desk, views, changed))
        });
    }
    let mut desks = Vec::new();
    let mut changed = 0;
    while let Some(agent) = agents.join_next().await {
        let (desk, views, n) = agent??;
        desks.push((desk, views));
        changed += n;
    }
    Ok(StateChanges {
        desks,
        changed,
        took: started.elapsed(),
    })
}

/// One agent at the desktop until `stop`: accepts each offer its stream
/// shows, and wraps each contact up at once, so that it is offered the
/// next.
async fn take_offers(
    desk: Desk,
    mut views: Views,
    offers: Arc<Offers>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let (mut accepted, mut wrapped) = (String::new(), String::new());
    while !stop.is_cancelled() {
        // Bounded so that `stop` is seen while no view comes.
        let view = match tokio::time::timeout(Duration::from_millis(100), views.next()).await {
            Err(_) => continue,
            Ok(view) => view?.context("the agent's event stream ended")?,
        };
        if let Some(offer) = handoff_id(&view, "offer")
            && offer != accepted
        {
            offers.read.fetch_add(1, Ordering::AcqRel);
            offers.window.add_permits(1);
            {
                let now = Instant::now();
                let mut last_read = offers.last_read.lock().unwrap_or_else(|e| e.into_inner());
                *last_read = (*last_read).max(Some(now));
            }
            let status = desk
                .change(
                    Method::POST,
                    &format!("/api/handoffs/{offer}/accept"),
                    Value::Null,
                )
                .await?;
            if !status.is_success() {
                bail!("accept {offer}: {status}");
            }
            accepted = offer;
        }
        if let Some(active) = handoff_id(&view, "active")
            && active != wrapped
        {
            let status = desk
                .change(
                    Method::POST,
                    &format!("/api/handoffs/{active}/wrap-up"),
                    json!({ "disposition": "resolved" }),
                )
                .await?;
            if !status.is_success() {
                bail!("wrap-up {active}: {status}");
            }
            wrapped = active;
        }
    }
    Ok(())
}

/// The handoff id of the view's `offer` or `active` contact, if any.
fn handoff_id(view: &Value, part: &str) -> Option<String> {
    view[part]["handoff_id"].as_str().map(str::to_owned)
}
