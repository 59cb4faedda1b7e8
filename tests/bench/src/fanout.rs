//! Scenario 3, event fan-out: many concurrent WatchHandoff streams (ten per
//! handoff, multiplexed over one HTTP/2 connection per hundred streams) on
//! the control service, against the same streams from the empty server.
//! Each stream first catches up (CREATED and TARGET_STARTED, replayed from
//! the store), then every handoff is cancelled and the CANCELLED event fans
//! out live. The memory figure is the growth of this process's VmRSS while
//! the streams are open: client and server sides together, since both run
//! here, and the same for the baseline.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Scale;
use crate::api::{connect, start_stack, unique};
use crate::floor::EmptyHandoffService;
use crate::payload::create_request;
use crate::report::Table;

const SCENARIO: &str = "fan-out";
const WATCHERS_PER_HANDOFF: usize = 10;
const STREAMS_PER_CONNECTION: usize = 100;

/// What one fan-out measured.
struct Fanout {
    catch_up_per_second: f64,
    live_per_second: f64,
    rss_per_stream_kib: f64,
}

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    let levels: &[usize] = if scale.quick {
        &[100]
    } else {
        &[1_000, 10_000]
    };
    for &streams in levels {
        eprintln!("fan-out: {streams} streams");
        let stop = CancellationToken::new();
        let addr = start_stack(&dir.join(streams.to_string()), &stop).await?;
        let handoffs = create_handoffs(addr, streams / WATCHERS_PER_HANDOFF).await?;
        // The floor streams what a real watch of a cancelled handoff streams.
        let canned = canned_watch(addr).await?;
        let real = fan_out(addr, &handoffs, streams, || async {
            cancel_all(addr, &handoffs).await
        })
        .await?;
        let release = CancellationToken::new();
        let floor_addr = crate::floor::start(
            EmptyHandoffService {
                canned: CreateHandoffResponse::default(),
                watch: canned,
                release: release.clone(),
                commit: None,
            },
            true,
            stop.clone(),
        )
        .await?;
        let floor = fan_out(floor_addr, &handoffs, streams, || async {
            release.cancel();
            Ok(())
        })
        .await?;
        stop.cancel();
        let at = format!("{streams} streams");
        let floor_name = format!("empty server, {at}");
        table.add(
            SCENARIO,
            format!("catch-up events/s, {at}"),
            real.catch_up_per_second,
            &floor_name,
            floor.catch_up_per_second,
            "/s",
        );
        table.add(
            SCENARIO,
            format!("live events/s, {at}"),
            real.live_per_second,
            &floor_name,
            floor.live_per_second,
            "/s",
        );
        table.add(
            SCENARIO,
            format!("RSS per stream, {at}"),
            real.rss_per_stream_kib,
            &floor_name,
            floor.rss_per_stream_kib,
            "KiB",
        );
    }
    Ok(())
}

async fn create_handoffs(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<String>> {
    let channels = connect(addr, 4).await?;
    let prefix = unique("fanout");
    let mut ids = Vec::with_capacity(count);
    let mut pending = futures::stream::iter(0..count)
        .map(|i| {
            let mut client = HandoffServiceClient::new(channels[i % channels.len()].clone());
            let request = create_request(format!("{prefix}-{i}"), "hold");
            async move { client.create_handoff(request).await }
        })
        .buffer_unordered(64);
    while let Some(response) = pending.next().await {
        let handoff = response?.into_inner().handoff.unwrap_or_default();
        ids.push(handoff.id);
    }
    Ok(ids)
}

async fn cancel_all(addr: SocketAddr, ids: &[String]) -> anyhow::Result<()> {
    let channels = connect(addr, 4).await?;
    let mut pending = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let mut client = HandoffServiceClient::new(channels[i % channels.len()].clone());
            let request = CancelHandoffRequest {
                handoff_id: id.clone(),
                ..Default::default()
            };
            async move { client.cancel_handoff(request).await }
        })
        .buffer_unordered(64);
    while let Some(response) = pending.next().await {
        response?;
    }
    Ok(())
}

/// The events of one handoff's watch, from the start until it is cancelled.
async fn canned_watch(addr: SocketAddr) -> anyhow::Result<Vec<WatchHandoffResponse>> {
    let ids = create_handoffs(addr, 1).await?;
    let mut client = HandoffServiceClient::connect(format!("http://{addr}")).await?;
    let mut stream = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: ids[0].clone(),
            after_sequence: 0,
        })
        .await?
        .into_inner();
    let mut events = Vec::new();
    for _ in 0..2 {
        if let Some(event) = stream.next().await {
            events.push(event?);
        }
    }
    cancel_all(addr, &ids).await?;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        events.push(event?);
    }
    Ok(events)
}

/// Opens `streams` watches over the handoffs, waits until each has its
/// first two events, then runs `trigger` and waits for every stream to end.
async fn fan_out<F, Fut>(
    addr: SocketAddr,
    handoffs: &[String],
    streams: usize,
    trigger: F,
) -> anyhow::Result<Fanout>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let channels = connect(addr, streams.div_ceil(STREAMS_PER_CONNECTION)).await?;
    let rss_before = vm_rss_kib();
    let caught_up = Arc::new(AtomicUsize::new(0));
    let all_caught_up = Arc::new(Notify::new());
    let live_events = Arc::new(AtomicUsize::new(0));
    let deadline = Duration::from_secs(60);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        let mut client = HandoffServiceClient::new(channels[i % channels.len()].clone());
        let request = WatchHandoffRequest {
            handoff_id: handoffs[i % handoffs.len()].clone(),
            after_sequence: 0,
        };
        let (caught_up, all_caught_up, live_events) = (
            caught_up.clone(),
            all_caught_up.clone(),
            live_events.clone(),
        );
        tasks.push(tokio::spawn(tokio::time::timeout(deadline, async move {
            let mut stream = client.watch_handoff(request).await?.into_inner();
            let mut received = 0;
            while let Some(event) = stream.next().await {
                event?;
                received += 1;
                if received == 2 && caught_up.fetch_add(1, Ordering::AcqRel) + 1 == streams {
                    all_caught_up.notify_one();
                } else if received > 2 {
                    live_events.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, anyhow::Error>(())
        })));
    }
    tokio::time::timeout(deadline, all_caught_up.notified())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{} of {streams} streams caught up",
                caught_up.load(Ordering::Relaxed)
            )
        })?;
    let catch_up = started.elapsed();
    let rss_after = vm_rss_kib();
    let live_started = Instant::now();
    trigger().await?;
    for task in tasks {
        task.await?
            .map_err(|_| anyhow::anyhow!("a watch stream did not end in time"))??;
    }
    let live = live_started.elapsed();
    Ok(Fanout {
        catch_up_per_second: (2 * streams) as f64 / catch_up.as_secs_f64(),
        live_per_second: live_events.load(Ordering::Relaxed) as f64 / live.as_secs_f64(),
        rss_per_stream_kib: rss_after.saturating_sub(rss_before) as f64 / streams as f64,
    })
}

/// This process's resident set size in KiB, from /proc/self/status.
pub fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
