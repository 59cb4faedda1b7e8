//! Resident memory per handoff waiting in the embedded queue: handoffs
//! created [`CONCURRENCY`] at a time into the queue, whose one signed-in
//! agent is away, so every contact waits (an agent must be signed in, or
//! the queue refuses the contact at once). The figure is the growth of
//! this process's `VmRSS` (the control service, the queue and the client,
//! all here, as in the fan-out scenario) divided by the contacts the queue
//! itself reports waiting; and that figure times 100,000, against the
//! issue's target of 100,000 waiting under 1 GiB.
//!
//! The baseline, measured next in the same run while the queue's handoffs
//! still wait (so that it grows into fresh memory, not what the first
//! side freed): as many handoffs as the queue held, created the same way
//! to a script connector that holds each transfer, the control service's
//! own cost of a handoff in flight. Both control services may dispatch
//! [`MAX_IN_FLIGHT`] at once (the default, 10,000 per replica, refuses
//! more). Creation into the queue stops at the time bound, so the count
//! may fall short of 100,000; the rows name the count reached.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_tests::desk::Desk;
use reqwest::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::Scale;
use crate::api::{connect, load_to};
use crate::embedded::{MAX_IN_FLIGHT, PASSWORD, QUEUE, agent_names, start_stack, waiting};
use crate::fanout::vm_rss_kib;
use crate::report::Table;

const SCENARIO: &str = "memory";
/// Handoffs waiting at once in the full run; quick: [`QUICK_COUNT`].
const COUNT: usize = 100_000;
const QUICK_COUNT: usize = 2_000;
/// Handoffs created before the measurement (connections, caches, the
/// allocator's first arenas), waiting too.
const WARM_UP: usize = 200;
/// CreateHandoff calls at a time: few enough that the queue takes each
/// StartTransfer within the control service's 5 s as its line grows
/// (each change costs the queue time in proportion to the contacts
/// waiting; at 64 at a time, a line of a few thousand times out and the
/// cancels empty it again).
const CONCURRENCY: usize = 16;
/// The target: 100,000 waiting handoffs.
const TARGET: f64 = 100_000.0;

/// What one side measured.
struct Held {
    /// Handoffs created in the bound (after the warm-up).
    created: usize,
    created_per_second: f64,
    rss_per_handoff_kib: f64,
}

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    let count = if scale.quick { QUICK_COUNT } else { COUNT };
    let bound = scale.bound(Duration::from_secs(45));
    let stop = CancellationToken::new();

    eprintln!("memory: up to {count} handoffs waiting in the embedded queue");
    let names = agent_names(1);
    let stack = start_stack(&dir.join("queue"), &stop, &names).await?;
    let desk = Desk::sign_in(&format!("http://{}", stack.desktop), &names[0], PASSWORD).await?;
    let status = desk
        .change(Method::PUT, "/api/agent/state", json!({ "state": "away" }))
        .await?;
    anyhow::ensure!(status.is_success(), "agent away: {status}");
    let mut queue = ConnectorServiceClient::connect(format!("http://{}", stack.queue)).await?;
    let channels = connect(stack.control, 4).await?;
    let warm = load_to(&channels, QUEUE, CONCURRENCY, WARM_UP, bound).await;
    let waiting_before = settle(&mut queue, warm.created).await?;
    let rss_before = vm_rss_kib();
    let level = load_to(&channels, QUEUE, CONCURRENCY, count, bound).await;
    if level.errors > 0 {
        eprintln!("memory: {} CreateHandoff errors (queue)", level.errors);
    }
    let waiting_after = settle(&mut queue, waiting_before + level.created).await?;
    let rss_growth = vm_rss_kib().saturating_sub(rss_before);
    let now_waiting = waiting_after.saturating_sub(waiting_before);
    let queued = Held {
        created: now_waiting,
        created_per_second: level.per_second,
        rss_per_handoff_kib: rss_growth as f64 / now_waiting.max(1) as f64,
    };
    // The baseline: as many as the queue held.
    let count = queued.created.max(1);
    eprintln!("memory: {count} handoffs held by a script connector");
    let script = crate::api::start_stack_with(&dir.join("script"), &stop, |config| {
        config.dispatch.max_in_flight = MAX_IN_FLIGHT;
    })
    .await?;
    let script_channels = connect(script, 4).await?;
    let _ = load_to(&script_channels, "hold", CONCURRENCY, WARM_UP, bound).await;
    let rss_before = vm_rss_kib();
    let level = load_to(&script_channels, "hold", CONCURRENCY, count, bound).await;
    if level.errors > 0 {
        eprintln!("memory: {} CreateHandoff errors (script)", level.errors);
    }
    let script = Held {
        created: level.created,
        created_per_second: level.per_second,
        rss_per_handoff_kib: vm_rss_kib().saturating_sub(rss_before) as f64
            / level.created.max(1) as f64,
    };

    stop.cancel();

    let at = format!("{} waiting", queued.created);
    let baseline = format!("script connector holding {}", script.created);
    table.add(
        SCENARIO,
        format!("RSS per waiting handoff, queue, {at}"),
        queued.rss_per_handoff_kib,
        &baseline,
        script.rss_per_handoff_kib,
        "KiB",
    );
    let mib = |per_handoff_kib: f64| per_handoff_kib * TARGET / 1024.0;
    table.add(
        SCENARIO,
        format!("RSS for 100k waiting in the queue (from {at}; target < 1024)"),
        mib(queued.rss_per_handoff_kib),
        format!("{baseline}, times 100k"),
        mib(script.rss_per_handoff_kib),
        "MiB",
    );
    table.add(
        SCENARIO,
        format!("CreateHandoff/s into the queue, c={CONCURRENCY}, to {at}"),
        queued.created_per_second,
        format!("to a holding script connector, c={CONCURRENCY}"),
        script.created_per_second,
        "/s",
    );
    Ok(())
}

/// Waits until the queue reports `expected` contacts waiting, or the count
/// stops moving for a second (bounded: 60 s); the count then.
async fn settle(
    queue: &mut ConnectorServiceClient<Channel>,
    expected: usize,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (usize::MAX, Instant::now());
    loop {
        let now = waiting(queue).await? as usize;
        if now >= expected || Instant::now() >= deadline {
            return Ok(now);
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(1) {
            eprintln!("memory: {now} of {expected} handoffs waiting in the queue");
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
