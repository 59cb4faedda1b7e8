//! Scenario `replicas`: control replicas sharing one PostgreSQL. A
//! throwaway server (fsync on, as installed) first measures its own
//! single-row INSERT commit rate with pgbench at 64 clients, and the same
//! with a NOTIFY in each commit (as every event commit of the store sends
//! one); then 1 and 3 control replicas on a fresh database of the same
//! server take 64 CreateHandoff calls at a time, spread round-robin over
//! the replicas, with a connector that holds every transfer (so each
//! handoff is created, dispatched and its TARGET_STARTED recorded). Beside
//! the rates, PostgreSQL's own counters say how many transactions and WAL
//! flushes each handoff cost.
//!
//! Without PostgreSQL's binaries the scenario says so and adds no rows.

mod pgbench;

use std::path::Path;
use std::time::Duration;

use baton_control::config::StoreBackend;
use baton_tests::postgres::Postgres;
use tokio_util::sync::CancellationToken;

use crate::Scale;
use crate::api::{connect, control_config_with, load_to, start_holding_connector};
use crate::report::{Percentiles, Table};
use pgbench::PgClient;

const SCENARIO: &str = "replicas";

/// CreateHandoff calls in flight, and pgbench's clients.
const CONCURRENCY: usize = 64;

/// Replica counts measured, in order.
const REPLICAS: [usize; 2] = [1, 3];

/// One run of control replicas.
struct ReplicaRun {
    per_second: f64,
    latency: Percentiles,
    errors: usize,
    /// PostgreSQL transactions committed per handoff, read-only ones
    /// included (the counter counts them alike).
    commits_per_handoff: f64,
    /// WAL flushes to disk per handoff.
    wal_syncs_per_handoff: f64,
}

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let postgres = match Postgres::start() {
        Ok(postgres) => postgres,
        Err(error) => {
            eprintln!("replicas: skipped, PostgreSQL cannot start here: {error:#}");
            return Ok(());
        }
    };
    if !postgres.bin_dir().join("pgbench").exists() {
        eprintln!(
            "replicas: skipped, pgbench is missing from {} (apt-get install postgresql)",
            postgres.bin_dir().display()
        );
        return Ok(());
    }
    eprintln!(
        "replicas: PostgreSQL on port {}; pgbench first",
        postgres.port()
    );
    let seconds = if scale.quick { 2 } else { 10 };
    let bench_db = postgres.create_database()?;
    let client = PgClient::new(&postgres, &bench_db, dir);
    client.psql("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload text NOT NULL)")?;
    let insert = client.pgbench(
        "insert",
        "INSERT INTO bench_rows (payload) VALUES (repeat('x', 512));\n",
        seconds,
    )?;
    let insert_notify = client.pgbench(
        "insert-notify",
        "BEGIN;\n\
         INSERT INTO bench_rows (payload) VALUES (repeat('x', 512));\n\
         SELECT pg_notify('bench_events', 'one event');\n\
         END;\n",
        seconds,
    )?;
    let baseline = "pgbench single-row INSERT commits, c=64";
    table.add(
        SCENARIO,
        "pgbench INSERT + NOTIFY commits, c=64",
        insert_notify.per_second,
        baseline,
        insert.per_second,
        "/s",
    );

    let workload = Workload {
        count: scale.count(3_000),
        bound: scale.bound(Duration::from_secs(30)),
        // An idle backend reports its counters within PostgreSQL's idle
        // interval (10 s); quick mode does not wait, and undercounts.
        settle: if scale.quick {
            Duration::from_millis(1500)
        } else {
            Duration::from_secs(11)
        },
    };
    let mut single_replica_rate = None;
    for replicas in REPLICAS {
        eprintln!(
            "replicas: {replicas} control replica(s), {} handoffs, c={CONCURRENCY}",
            workload.count
        );
        let measured = replica_run(&postgres, dir, replicas, &workload).await?;
        if measured.errors > 0 {
            eprintln!(
                "replicas: {} errors with {replicas} replica(s)",
                measured.errors
            );
        }
        let at = format!(
            "{replicas} replica{}, c=64",
            if replicas == 1 { "" } else { "s" }
        );
        table.add(
            SCENARIO,
            format!("handoffs/s, {at}"),
            measured.per_second,
            baseline,
            insert.per_second,
            "/s",
        );
        for (label, value, floor) in [
            ("p50", measured.latency.p50, insert.latency.p50),
            ("p99", measured.latency.p99, insert.latency.p99),
        ] {
            table.add(
                SCENARIO,
                format!("CreateHandoff {label}, {at}"),
                value,
                format!("pgbench single-row INSERT {label}, c=64"),
                floor,
                "ms",
            );
        }
        table.add(
            SCENARIO,
            format!("PostgreSQL transactions per handoff, {at}"),
            measured.commits_per_handoff,
            "pgbench single-row INSERT",
            1.0,
            "",
        );
        table.add(
            SCENARIO,
            format!("WAL flushes per handoff, {at}"),
            measured.wal_syncs_per_handoff,
            "pgbench single-row INSERT, WAL flushes per commit",
            insert.wal_syncs_per_commit,
            "",
        );
        match single_replica_rate {
            None => single_replica_rate = Some(measured.per_second),
            Some(single) => table.add(
                SCENARIO,
                format!("handoffs/s, {at} (vs 1 replica)"),
                measured.per_second,
                "handoffs/s, 1 replica, c=64",
                single,
                "/s",
            ),
        }
    }
    Ok(())
}

/// What each replica count is given.
struct Workload {
    /// CreateHandoff calls.
    count: usize,
    /// The longest the calls may take.
    bound: Duration,
    /// How long to wait after the calls for PostgreSQL's counters.
    settle: Duration,
}

/// `replicas` control replicas on a fresh database of `postgres`, with a
/// connector that holds every transfer, taking the workload's
/// CreateHandoff calls 64 at a time, round-robin over the replicas.
async fn replica_run(
    postgres: &Postgres,
    dir: &Path,
    replicas: usize,
    workload: &Workload,
) -> anyhow::Result<ReplicaRun> {
    let url = postgres.create_database()?;
    let client = PgClient::new(postgres, &url, dir);
    let stop = CancellationToken::new();
    let connector_addr = start_holding_connector(&stop).await?;
    let run_dir = dir.join(format!("{replicas}-replicas"));
    std::fs::create_dir_all(&run_dir)?;
    let mut channels = Vec::new();
    let mut serving = Vec::new();
    for index in 0..replicas {
        let mut config = control_config_with(
            &run_dir.join(format!("control-{index}")),
            "script",
            connector_addr,
        )?;
        config.default_connectors.queue = Some("script".into());
        // Held transfers stay held through the run: no attempt fails for
        // want of a connector event (10 s by default).
        config.dispatch.first_event_timeout = Duration::from_secs(600);
        config.store.backend = StoreBackend::Postgres;
        config.store.url = Some(url.clone());
        // Every replica signs context tokens with the same key.
        config.store.token_key_file = Some(run_dir.join("context-token.key"));
        let control = baton_control::bind(config).await?;
        channels.push(connect(control.grpc_addr, 1).await?.remove(0));
        serving.push(tokio::spawn(control.serve(stop.clone().cancelled_owned())));
    }
    // Warm up: connections to PostgreSQL and between the services.
    load_to(
        &channels,
        "hold",
        CONCURRENCY,
        CONCURRENCY * 2,
        Duration::from_secs(10),
    )
    .await;

    let before = client.counters()?;
    // Each calling task keeps to one replica, the tasks spread evenly.
    let measured = load_to(
        &channels,
        "hold",
        CONCURRENCY,
        workload.count,
        workload.bound,
    )
    .await;
    tokio::time::sleep(workload.settle).await;
    let after = client.counters()?;
    // The replicas give up their leases as they stop: done before the next
    // run starts, so that it does not share the database server with it.
    stop.cancel();
    let stopped =
        tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(serving)).await;
    if stopped.is_err() {
        eprintln!("replicas: the replicas did not stop within 60 s");
    }
    let handoffs = (measured.created as f64).max(1.0);
    Ok(ReplicaRun {
        per_second: measured.per_second,
        latency: measured.latency,
        errors: measured.errors,
        commits_per_handoff: after.commits.saturating_sub(before.commits) as f64 / handoffs,
        wal_syncs_per_handoff: after.wal_syncs.saturating_sub(before.wal_syncs) as f64 / handoffs,
    })
}
