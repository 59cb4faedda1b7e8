//! Scenario 2, the store: durable commits per second through the
//! store's handoff log (a create, then an append, each its own durable
//! commit), against SQLite's own single-row insert commit rate in the same
//! configuration (WAL, synchronous = FULL) and against the disk's
//! fdatasync rate, all on the same directory in the same run.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use baton_control::domain::{
    Attempt, ConcreteTarget, DEFAULT_TENANT, EventKind, Handoff, HandoffState, NewEvent,
    PlannedTarget, TransferMode,
};
use baton_control::store::{HandoffLog, SqliteStore};
use baton_proto::types::v1 as pb;

use crate::Scale;
use crate::report::Table;

const SCENARIO: &str = "store";

pub async fn run(scale: Scale, dir: &Path, table: &mut Table) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bound = scale.bound(Duration::from_secs(5));
    eprintln!(
        "store: fdatasync, raw SQLite and store commits in {}",
        dir.display()
    );
    let fdatasync = {
        let path = dir.join("fdatasync.probe");
        let count = scale.count(500);
        tokio::task::spawn_blocking(move || fdatasync_rate(&path, count, bound)).await??
    };
    let raw = {
        let path = dir.join("raw.db");
        let count = scale.count(500);
        tokio::task::spawn_blocking(move || raw_sqlite_rate(&path, count, bound)).await??
    };
    let store = Arc::new(SqliteStore::open(&dir.join("store"))?);
    let store_serial = store_rate(&store, 1, scale.count(250), bound).await?;
    let store_concurrent = store_rate(&store, 64, scale.count(4_000), bound * 2).await?;

    table.add(
        SCENARIO,
        "raw SQLite insert commits",
        raw,
        "fdatasync",
        fdatasync,
        "/s",
    );
    table.add(
        SCENARIO,
        "store commits, 1 writer",
        store_serial,
        "raw SQLite insert commits",
        raw,
        "/s",
    );
    table.add(
        SCENARIO,
        "store commits, 64 writers",
        store_concurrent,
        "raw SQLite insert commits",
        raw,
        "/s",
    );
    table.add(
        SCENARIO,
        "store commits, 64 writers (vs disk)",
        store_concurrent,
        "fdatasync",
        fdatasync,
        "/s",
    );
    Ok(())
}

/// 4 KiB overwritten then `sync_data`, in a loop, over a file written and
/// synced beforehand: the disk's durable write rate as a WAL sees it (a
/// WAL overwrites its pages rather than growing the file at every commit).
fn fdatasync_rate(path: &Path, count: usize, bound: Duration) -> anyhow::Result<f64> {
    use std::os::unix::fs::FileExt;
    const BLOCKS: u64 = 256;
    let mut file = std::fs::File::create(path)?;
    let block = [0x5a_u8; 4096];
    for _ in 0..BLOCKS {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let started = Instant::now();
    let mut done = 0;
    while done < count && started.elapsed() < bound {
        file.write_all_at(&block, (done as u64 % BLOCKS) * 4096)?;
        file.sync_data()?;
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// One single-row INSERT per transaction, in the store's configuration.
fn raw_sqlite_rate(path: &Path, count: usize, bound: Duration) -> anyhow::Result<f64> {
    let connection = raw_sqlite(path)?;
    let started = Instant::now();
    let mut done = 0;
    while done < count && started.elapsed() < bound {
        commit_raw_row(&connection)?;
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// A new SQLite database at `path` in the store's configuration (WAL,
/// `synchronous = FULL`) with one table of rows.
pub fn raw_sqlite(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
    )?;
    Ok(connection)
}

/// Commits one 512-byte row: an autocommit INSERT is its own durable
/// transaction.
pub fn commit_raw_row(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    connection
        .prepare_cached("INSERT INTO rows (body) VALUES (?1)")?
        .execute([&[0x5a_u8; 512][..]])?;
    Ok(())
}

/// Durable commits per second through the trait: each handoff is a create
/// and an append, from `writers` concurrent tasks.
async fn store_rate(
    store: &Arc<SqliteStore>,
    writers: usize,
    handoffs: usize,
    bound: Duration,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let commits = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + bound;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (store, next, commits) = (store.clone(), next.clone(), commits.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if next.fetch_add(1, Ordering::Relaxed) >= handoffs || Instant::now() >= deadline {
                    return Ok::<_, anyhow::Error>(());
                }
                let h = handoff();
                let attempt = Attempt {
                    number: 1,
                    planned: h.plan[0].clone(),
                };
                let id = h.id.clone();
                store.create(h, None, None).await?;
                commits.fetch_add(1, Ordering::Relaxed);
                store
                    .append(
                        DEFAULT_TENANT,
                        &id,
                        NewEvent::new(EventKind::TargetStarted).attempt(attempt),
                    )
                    .await?;
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(commits.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn handoff() -> Handoff {
    let id = uuid::Uuid::now_v7().to_string();
    Handoff {
        request_id: format!("bench-{id}"),
        id,
        tenant: DEFAULT_TENANT.into(),
        request_fingerprint: "bench".into(),
        state: HandoffState::Pending,
        conversation: Default::default(),
        context: baton_control::convert::context::encode_context(&pb::HandoffContext {
            summary: "Customer was charged twice for the March invoice".into(),
            ..Default::default()
        }),
        requested_target: baton_control::domain::RequestedTarget::Unset,
        mode: TransferMode::Warm,
        plan: vec![PlannedTarget {
            connector: "script".into(),
            target: ConcreteTarget::Queue {
                name: "hold".into(),
                skills: vec![],
            },
        }],
        customer_message: "I'm connecting you with a specialist.".into(),
        customer_message_language: "en".into(),
        created_at_ms: 1,
        updated_at_ms: 1,
        deadline_ms: i64::MAX,
        current_attempt: None,
        queue_status: None,
        failure: None,
        last_sequence: 0,
        decision: None,
        wrap_up: None,
        context_version: 1,
        recorded_outcome: None,
        callback: None,
    }
}
