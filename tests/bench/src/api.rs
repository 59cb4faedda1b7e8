//! Scenario 1, API overhead: CreateHandoff against the control service with
//! its durable SQLite store and a connector that holds every transfer (so
//! dispatch runs — StartTransfer, the TARGET_STARTED append — but nothing
//! else follows), against the same unary call to an empty tonic server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_connector_script::{ScriptConfig, ScriptConnector};
use baton_connector_sdk::ServeOptions;
use baton_control::ControlConfig;
use baton_control::config::ConnectorConfig;
use baton_proto::handoff::v1::CreateHandoffResponse;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::Scale;
use crate::floor::EmptyHandoffService;
use crate::payload::create_request;
use crate::report::{Percentiles, Table};

const SCENARIO: &str = "api";

/// Concurrency levels and requests per level.
const LEVELS: [(usize, usize); 3] = [(1, 500), (16, 2_000), (256, 2_000)];

/// What one load level measured.
pub struct Level {
    pub latency: Percentiles,
    pub per_second: f64,
    /// Calls answered with a handoff.
    pub created: usize,
    pub errors: usize,
}

fn empty(canned: CreateHandoffResponse) -> EmptyHandoffService {
    EmptyHandoffService {
        canned,
        watch: Vec::new(),
        release: CancellationToken::new(),
        commit: None,
    }
}

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    eprintln!("api: starting a script connector and the control service");
    let stop = CancellationToken::new();
    let control_addr = start_stack(dir, &stop).await?;
    // The floor answers with a real response, so both directions carry the
    // same bytes as the real call.
    let channels = connect(control_addr, 4).await?;
    let canned = HandoffServiceClient::new(channels[0].clone())
        .create_handoff(create_request(unique("canned"), "hold"))
        .await?
        .into_inner();
    let floor_addr = crate::floor::start(empty(canned.clone()), true, stop.clone()).await?;
    let floor_channels = connect(floor_addr, 4).await?;
    // The same empty server without TCP_NODELAY on its side, as tonic's
    // `serve_with_incoming` leaves accepted sockets: shows what Nagle's
    // algorithm against delayed ACKs costs a unary call.
    let nagle_addr = crate::floor::start(empty(canned.clone()), false, stop.clone()).await?;
    let nagle_channels = connect(nagle_addr, 1).await?;
    // The same empty server committing one row per call: what any API
    // that acknowledges only durable writes costs on this disk.
    let durable = EmptyHandoffService {
        commit: Some(Arc::new(Mutex::new(crate::store::raw_sqlite(
            &dir.join("durable-floor.db"),
        )?))),
        ..empty(canned)
    };
    let durable_addr = crate::floor::start(durable, true, stop.clone()).await?;
    let durable_channels = connect(durable_addr, 1).await?;

    // Warm both paths up (connections, the store's caches, the allocator).
    load(
        &floor_channels,
        8,
        scale.count(500),
        Duration::from_secs(10),
    )
    .await;
    load(&channels, 8, scale.count(500), Duration::from_secs(10)).await;

    let mut peak: f64 = 0.0;
    for (concurrency, count) in LEVELS {
        let count = scale.count(count);
        let bound = scale.bound(Duration::from_secs(20));
        // Floor first, then the real call, level by level, so both see the
        // same neighbours on a shared machine.
        let floor = load(&floor_channels, concurrency, count, bound).await;
        let real = load(&channels, concurrency, count, bound).await;
        if real.errors > 0 {
            eprintln!("api: {} errors at concurrency {concurrency}", real.errors);
        }
        peak = peak.max(real.per_second);
        let at = format!("c={concurrency}");
        let floor_name = format!("bare tonic call, {at}");
        table.add(
            SCENARIO,
            format!("CreateHandoff p50, {at}"),
            real.latency.p50,
            &floor_name,
            floor.latency.p50,
            "ms",
        );
        table.add(
            SCENARIO,
            format!("CreateHandoff p99, {at}"),
            real.latency.p99,
            &floor_name,
            floor.latency.p99,
            "ms",
        );
        table.add(
            SCENARIO,
            format!("CreateHandoff p99.9, {at}"),
            real.latency.p999,
            &floor_name,
            floor.latency.p999,
            "ms",
        );
        table.add(
            SCENARIO,
            format!("CreateHandoff throughput, {at}"),
            real.per_second,
            &floor_name,
            floor.per_second,
            "/s",
        );
    }
    // Durable floor and real call back to back at c=1, as the levels are.
    let count = scale.count(500);
    let bound = scale.bound(Duration::from_secs(20));
    let durable = load(&durable_channels, 1, count, bound).await;
    let real = load(&channels, 1, count, bound).await;
    for (figure, value, floor) in [
        ("p50", real.latency.p50, durable.latency.p50),
        ("p99", real.latency.p99, durable.latency.p99),
        ("p99.9", real.latency.p999, durable.latency.p999),
    ] {
        table.add(
            SCENARIO,
            format!("CreateHandoff {figure}, c=1 (vs durable floor)"),
            value,
            "bare call + one SQLite commit, c=1",
            floor,
            "ms",
        );
    }
    // A burst at 80% of the peak closed-loop throughput, arriving at a
    // steady rate whatever the answers (open loop), at most
    // `MAX_IN_FLIGHT` at a time: what every AI waits while a contact
    // center is busy, against an idle one (c=1, just measured).
    let rate = peak * 0.8;
    let paced = paced_load(
        &channels,
        rate,
        scale.count(4_000),
        scale.bound(Duration::from_secs(20)),
    )
    .await;
    if paced.errors > 0 {
        eprintln!("api: {} errors at 80% of peak", paced.errors);
    }
    table.add(
        SCENARIO,
        format!("CreateHandoff p99 at 80% of peak ({rate:.0}/s offered)"),
        paced.latency.p99,
        "CreateHandoff p99, c=1",
        real.latency.p99,
        "ms",
    );
    table.add(
        SCENARIO,
        "CreateHandoff throughput at 80% of peak",
        paced.per_second,
        "peak throughput (c=1, 16, 256)",
        peak,
        "/s",
    );
    let nagle = load(
        &nagle_channels,
        1,
        scale.count(100),
        scale.bound(Duration::from_secs(10)),
    )
    .await;
    let floor = load(
        &floor_channels,
        1,
        scale.count(100),
        scale.bound(Duration::from_secs(10)),
    )
    .await;
    table.add(
        SCENARIO,
        "bare call, server without TCP_NODELAY, p50, c=1",
        nagle.latency.p50,
        "bare tonic call, c=1",
        floor.latency.p50,
        "ms",
    );
    stop.cancel();
    Ok(())
}

/// A script connector that holds every transfer and the control service
/// routing queues to it, in this process, until `stop`; the control
/// service's gRPC address.
pub async fn start_stack(dir: &Path, stop: &CancellationToken) -> anyhow::Result<SocketAddr> {
    start_stack_with(dir, stop, |_| {}).await
}

/// [`start_stack`] with the control service's configuration changed by
/// `configure` first.
pub async fn start_stack_with(
    dir: &Path,
    stop: &CancellationToken,
    configure: impl FnOnce(&mut ControlConfig),
) -> anyhow::Result<SocketAddr> {
    let connector_addr = start_holding_connector(stop).await?;
    let mut config = control_config_with(dir, "script", connector_addr)?;
    config.default_connectors.queue = Some("script".into());
    configure(&mut config);
    serve_control(config, stop).await
}

/// A script connector that holds every transfer, in this process until
/// `stop`; its gRPC address.
pub async fn start_holding_connector(stop: &CancellationToken) -> anyhow::Result<SocketAddr> {
    let connector = ScriptConnector::new(&ScriptConfig {
        default_script: vec!["hold".into()],
        ..ScriptConfig::default()
    })
    .map_err(anyhow::Error::msg)?;
    let connector =
        baton_connector_sdk::bind(connector, ServeOptions::new("127.0.0.1:0".parse()?)).await?;
    let addr = connector.addr;
    tokio::spawn(connector.serve(stop.clone().cancelled_owned()));
    Ok(addr)
}

/// The control service's configuration (see [`control_config`]) with one
/// connector, `name` at `addr`.
pub fn control_config_with(
    data_dir: &Path,
    name: &str,
    addr: SocketAddr,
) -> anyhow::Result<ControlConfig> {
    let mut config = control_config(data_dir)?;
    config
        .connectors
        .insert(name.into(), ConnectorConfig::new(format!("http://{addr}")));
    Ok(config)
}

/// Serves the control service on `config` in this process until `stop`;
/// its gRPC address.
pub async fn serve_control(
    config: ControlConfig,
    stop: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let control = baton_control::bind(config).await?;
    let addr = control.grpc_addr;
    tokio::spawn(control.serve(stop.clone().cancelled_owned()));
    Ok(addr)
}

/// The control service's configuration in every scenario: loopback,
/// ephemeral ports, its store in `data_dir`.
pub fn control_config(data_dir: &Path) -> anyhow::Result<ControlConfig> {
    let mut config = ControlConfig::default();
    config.server.grpc_listen = "127.0.0.1:0".parse()?;
    config.server.http_listen = "127.0.0.1:0".parse()?;
    config.store.data_dir = data_dir.to_path_buf();
    // The bench measures handoffs, not credentials or the per-tenant limit.
    config.auth.mode = baton_auth::AuthMode::Off;
    config.rate_limit.requests_per_second = 1e9;
    config.rate_limit.burst = u32::MAX;
    config.limits.max_watch_streams_per_tenant = usize::MAX;
    config.limits.max_watch_streams = usize::MAX;
    Ok(config)
}

pub async fn connect(addr: std::net::SocketAddr, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for _ in 0..count {
        channels.push(
            Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

pub fn unique(prefix: &str) -> String {
    format!("bench-{prefix}-{}", uuid::Uuid::now_v7())
}

/// Runs `job` for each index of `0..count` on `concurrency` tasks, each
/// task taking the next index once its last job is done, until every
/// index was taken or a job failed; the jobs' results.
pub async fn each_on_tasks<T, Job, Fut>(
    count: usize,
    concurrency: usize,
    job: Job,
) -> anyhow::Result<Vec<T>>
where
    Job: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return anyhow::Ok(results);
                }
                results.push(job(index).await?);
            }
        }));
    }
    let mut results = Vec::with_capacity(count);
    for task in futures::future::join_all(tasks).await {
        results.extend(task??);
    }
    Ok(results)
}

/// `count` CreateHandoff calls to the queue `hold` from `concurrency` tasks
/// spread over the channels, stopping early at `bound`.
async fn load(channels: &[Channel], concurrency: usize, count: usize, bound: Duration) -> Level {
    load_to(channels, "hold", concurrency, count, bound).await
}

/// [`load`] to the queue `queue`.
pub async fn load_to(
    channels: &[Channel],
    queue: &str,
    concurrency: usize,
    count: usize,
    bound: Duration,
) -> Level {
    let next = Arc::new(AtomicUsize::new(0));
    let prefix = unique("load");
    let started = Instant::now();
    let deadline = started + bound;
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let mut client = HandoffServiceClient::new(channels[task % channels.len()].clone());
        let next = next.clone();
        let prefix = prefix.clone();
        let queue = queue.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut errors = 0;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count || Instant::now() >= deadline {
                    break;
                }
                let request = create_request(format!("{prefix}-{index}"), &queue);
                let sent = Instant::now();
                match client.create_handoff(request).await {
                    Ok(_) => samples.push(sent.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (samples, errors)
        }));
    }
    let mut samples = Vec::with_capacity(count);
    let mut errors = 0;
    for (mut s, e) in futures::future::join_all(tasks).await.into_iter().flatten() {
        samples.append(&mut s);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Level {
        per_second: samples.len() as f64 / elapsed,
        created: samples.len(),
        latency: Percentiles::of(&mut samples),
        errors,
    }
}

/// Calls at most this many at a time in the paced load, as at c=256.
const MAX_IN_FLIGHT: usize = 256;

/// `count` CreateHandoff calls sent at `rate` per second on a fixed
/// schedule, whatever the answers (at most [`MAX_IN_FLIGHT`] waiting),
/// stopping early at `bound`. Each latency runs from the call's scheduled
/// time, so that a call held back by a full window counts its wait.
async fn paced_load(channels: &[Channel], rate: f64, count: usize, bound: Duration) -> Level {
    let prefix = unique("paced");
    let window = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = tokio::time::Instant::now();
    let deadline = started + bound;
    let mut calls = tokio::task::JoinSet::new();
    for index in 0..count {
        let scheduled = started + interval.mul_f64(index as f64);
        if scheduled >= deadline {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let Ok(permit) = window.clone().acquire_owned().await else {
            break;
        };
        let mut client = HandoffServiceClient::new(channels[index % channels.len()].clone());
        let request = create_request(format!("{prefix}-{index}"), "hold");
        calls.spawn(async move {
            let answered = client.create_handoff(request).await;
            drop(permit);
            answered.map(|_| scheduled.elapsed())
        });
    }
    let mut samples = Vec::with_capacity(count);
    let mut errors = 0;
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(latency)) => samples.push(latency),
            _ => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Level {
        per_second: samples.len() as f64 / elapsed,
        created: samples.len(),
        latency: Percentiles::of(&mut samples),
        errors,
    }
}
