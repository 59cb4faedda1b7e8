//! A connector restart with transfers in flight: [`COUNT`] handoffs wait in
//! the embedded queue (its one signed-in agent is away), the queue's server
//! is stopped (it drains for [`DRAIN`], then hands its running transfers
//! over through its journal) and started again on the same addresses and
//! data directory, in this process. The restored contacts are held, never
//! offered, until the control service re-attaches each transfer
//! (StartTransfer again for the same handoff and attempt, after its
//! reconnect back-off); the figure is the time from the restart until the
//! queue's own count of waiting contacts (GetAvailability, which counts
//! neither held nor offered ones) is back to all of them.
//!
//! Baselines from the same run: the time to start those transfers in the
//! first place (from the first CreateHandoff until the queue counts them
//! all waiting), and, for the restart's own share, the queue's first bind
//! on an empty data directory against the restart's bind (which loads
//! the contacts and the journal) until it serves.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use baton_connector_queue::QueueConfig;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_tests::desk::Desk;
use reqwest::Method;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Scale;
use crate::api::{connect, load_to};
use crate::embedded::{
    PASSWORD, QUEUE, add_agents, agent_names, queue_config, serve_queue, start_control, waiting,
};
use crate::report::Table;

const SCENARIO: &str = "restart";
/// Transfers in flight at the restart, full run.
const COUNT: usize = 1_000;
/// CreateHandoff calls at a time.
const CONCURRENCY: usize = 64;
/// How long the stopping queue lets running transfers go on (none ends:
/// nobody takes a contact) before it hands them over.
const DRAIN: Duration = Duration::from_millis(100);

/// A queue serving until its token is cancelled.
struct Running {
    stop: CancellationToken,
    serving: JoinHandle<anyhow::Result<()>>,
}

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    let count = scale.count(COUNT);
    let bound = scale.bound(Duration::from_secs(60));
    let stop = CancellationToken::new();
    let mut config = queue_config(dir);
    config.server.drain_timeout = DRAIN;
    let names = agent_names(1);
    add_agents(&config, &names)?;

    eprintln!("restart: starting the embedded queue and the control service");
    let bind_started = Instant::now();
    let (queue, grpc, http) = start_queue(config.clone()).await?;
    let fresh_bind = bind_started.elapsed();
    // The restart binds the same addresses.
    config.server.grpc_listen = grpc;
    config.server.http_listen = Some(http);
    let control = start_control(dir, grpc, &stop).await?;
    let desk = Desk::sign_in(&format!("http://{http}"), &names[0], PASSWORD).await?;
    let status = desk
        .change(Method::PUT, "/api/agent/state", json!({ "state": "away" }))
        .await?;
    anyhow::ensure!(status.is_success(), "agent away: {status}");

    eprintln!("restart: {count} transfers into the queue");
    let channels = connect(control, 4).await?;
    let started = Instant::now();
    let level = load_to(&channels, QUEUE, CONCURRENCY, count, bound).await;
    if level.errors > 0 {
        eprintln!("restart: {} CreateHandoff errors", level.errors);
    }
    let in_flight = level.created;
    let queued = all_waiting(grpc, in_flight, bound).await?;
    let start_took = started.elapsed();
    anyhow::ensure!(
        queued >= in_flight,
        "only {queued} of {in_flight} transfers reached the queue in time"
    );

    eprintln!("restart: stopping the queue with {in_flight} transfers in flight");
    queue.stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), queue.serving)
        .await
        .context("the queue did not stop within 30 s")???;
    let restarted = Instant::now();
    let (queue, _, _) = start_queue(config).await?;
    let to_serving = restarted.elapsed();
    let reattached = all_waiting(grpc, in_flight, bound).await?;
    let reattach_took = restarted.elapsed();
    // Short of all in the bound: the row says how many, over the bound.
    let reattached = if reattached >= in_flight {
        "all re-attached".to_owned()
    } else {
        format!("{reattached} of them re-attached (bound)")
    };
    queue.stop.cancel();
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), queue.serving).await;

    let at = format!("{in_flight} in flight");
    table.add(
        SCENARIO,
        format!("connector restart to {reattached}, {at}"),
        reattach_took.as_secs_f64() * 1000.0,
        format!("starting the {in_flight} transfers"),
        start_took.as_secs_f64() * 1000.0,
        "ms",
    );
    table.add(
        SCENARIO,
        format!("connector restart to serving, {at}"),
        to_serving.as_secs_f64() * 1000.0,
        "first start, empty data directory",
        fresh_bind.as_secs_f64() * 1000.0,
        "ms",
    );
    Ok(())
}

/// Binds and serves the queue on `config` (retrying for up to 5 s while
/// the previous server's listeners are still being released); its gRPC
/// and desktop addresses.
async fn start_queue(config: QueueConfig) -> anyhow::Result<(Running, SocketAddr, SocketAddr)> {
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let stop = CancellationToken::new();
        match serve_queue(config.clone(), &stop).await {
            Ok((grpc, http, serving)) => return Ok((Running { stop, serving }, grpc, http)),
            Err(error) if Instant::now() < give_up => {
                eprintln!("restart: binding again ({error})");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Polls the queue at `grpc` until it counts `expected` contacts waiting,
/// or `bound` passed; the count it last reported.
async fn all_waiting(grpc: SocketAddr, expected: usize, bound: Duration) -> anyhow::Result<usize> {
    let deadline = Instant::now() + bound;
    let mut queue = ConnectorServiceClient::connect(format!("http://{grpc}")).await?;
    loop {
        let now = waiting(&mut queue).await? as usize;
        if now >= expected || Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
