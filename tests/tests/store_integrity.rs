//! Store integrity: a store file that is empty, garbage, of another kind
//! or damaged in its middle pages makes the service refuse to start,
//! naming the file and the problem, and leaves it byte for byte as it was;
//! a store written before the marker existed still opens (and gets it);
//! `baton store check` and `baton store backup` (while the service writes);
//! a disk that refuses writes turns health NOT_SERVING though reads answer.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_tests::{Service, binary, handoff_client};
use common::*;
use tokio::process::Command;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The control store's marker ("BATC") and another kind's (the queue's).
const CONTROL_STORE_ID: i32 = 0x4241_5443;
const QUEUE_STORE_ID: i32 = 0x4241_5451;

/// Enough for the hundreds of handoffs these tests create at once.
const NO_RATE_LIMIT: &[(&str, &str)] = &[
    ("BATON_RATE_LIMIT__REQUESTS_PER_SECOND", "100000"),
    ("BATON_RATE_LIMIT__BURST", "100000"),
];

/// A control configuration with its store in `data_dir` and a connector
/// that is never dialled.
fn control_config(dir: &Path, data_dir: &Path) -> PathBuf {
    let path = dir.join(format!(
        "control-{}.toml",
        data_dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    std::fs::write(
        &path,
        format!(
            "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\n\
             [store]\ndata_dir = {:?}\n\n[connectors.none]\nendpoint = \"http://127.0.0.1:9\"\n\n\
             [default_connectors]\nqueue = \"none\"\n",
            data_dir.display().to_string()
        ),
    )
    .expect("write config");
    path
}

/// Creates `count` handoffs (to the script connector's default target) and
/// returns their ids.
async fn create_many(
    client: &mut HandoffServiceClient<tonic::transport::Channel>,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        ids.push(create(client, request(&format!("{prefix}-{n}"), queue("agents"))).await);
    }
    ids
}

/// Moves everything in the store's write-ahead log into its main file, so
/// that the file alone holds the store.
fn checkpoint(path: &Path) {
    let connection = rusqlite::Connection::open(path).expect("open the store");
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
}

fn count_handoffs(path: &Path) -> i64 {
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open");
    connection
        .query_row("SELECT COUNT(*) FROM handoffs", [], |row| row.get(0))
        .expect("count")
}

fn application_id(path: &Path) -> i32 {
    rusqlite::Connection::open(path)
        .expect("open")
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .expect("application_id")
}

/// Bytes that look random, the same in every run.
fn noise(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// Runs baton-control on a store file holding `bytes`: it must refuse to
/// start (a non-zero status) with stderr naming the file and `problem`, leaving
/// the file as it was. Returns stderr.
async fn assert_refused(dir: &Path, case: &str, bytes: &[u8], problem: &str) -> String {
    let data_dir = dir.join(case);
    std::fs::create_dir_all(&data_dir).expect("mkdir");
    let store = data_dir.join("handoffs.db");
    std::fs::write(&store, bytes).expect("write the store file");
    let config = control_config(dir, &data_dir);
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(binary("baton-control"))
            .args(["--config", config.to_str().expect("path")])
            .env("BATON_AUTH__MODE", "off")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        matches!(output.status.code(), Some(code) if code != 0),
        "{case}: {:?} {stderr}",
        output.status
    );
    assert!(
        stderr.contains(&store.display().to_string()) && stderr.contains(problem),
        "{case}: expected the path and {problem:?} in:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(&store).expect("read back"),
        bytes,
        "{case}: the refused file was modified"
    );
    stderr
}

/// Runs `baton store <args>`; returns (status code, stdout, stderr).
async fn baton_store(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(binary("baton"))
        .arg("store")
        .args(args)
        .output()
        .await
        .expect("runs baton");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_damaged_or_foreign_store_file_is_refused_and_left_untouched() {
    let mut stack = Stack::start_with_env(&[], NO_RATE_LIMIT).await;
    let mut client = stack.client().await;
    let ids = create_many(&mut client, "integrity", 150).await;
    let mut control = stack.control.take().expect("control");
    control.stop().await.expect("stop control");
    let store = stack.dir.path().join("control").join("handoffs.db");
    checkpoint(&store);
    assert_eq!(count_handoffs(&store), ids.len() as i64);
    let good = std::fs::read(&store).expect("read the store");
    let dir = stack.dir.path();

    assert_refused(dir, "empty", b"", "the file is empty").await;
    assert_refused(
        dir,
        "garbage",
        &noise(64 * 1024, 1),
        "not a readable SQLite database",
    )
    .await;

    // Another Baton file (the queue's store), and an SQLite file nobody marked.
    let other = |id: i32| {
        let path = dir.join(format!("other-{id}.db"));
        let connection = rusqlite::Connection::open(&path).expect("create");
        connection
            .execute_batch(&format!(
                "PRAGMA application_id = {id}; CREATE TABLE agents (id TEXT);"
            ))
            .expect("write");
        drop(connection);
        std::fs::read(&path).expect("read")
    };
    assert_refused(
        dir,
        "queue",
        &other(QUEUE_STORE_ID),
        "not a Baton control store (application_id 0x42415451, a queue store)",
    )
    .await;
    assert_refused(dir, "unmarked", &other(0), "holds no Baton control store").await;

    // A page in the middle of the file overwritten, as a bad sector would.
    let page_size = u16::from_be_bytes([good[16], good[17]]) as usize;
    let pages = good.len() / page_size;
    assert!(pages >= 20, "{pages} pages: too few to damage the middle");
    let mut damaged = good.clone();
    let middle = pages / 2 * page_size;
    damaged[middle..middle + page_size].copy_from_slice(&noise(page_size, 2));
    assert_refused(dir, "damaged", &damaged, "corrupt").await;

    // baton store check tells the same apart, without writing.
    let damaged_path = dir.join("damaged").join("handoffs.db");
    let (status, _, stderr) = baton_store(&["check", damaged_path.to_str().expect("path")]).await;
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
    let (status, _, stderr) = baton_store(&[
        "check",
        dir.join("empty/handoffs.db").to_str().expect("path"),
    ])
    .await;
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("empty"), "{stderr}");
    let (status, stdout, stderr) =
        baton_store(&["check", "--full", store.to_str().expect("path")]).await;
    assert_eq!(status, Some(0), "{stderr}");
    assert!(
        stdout.contains("control store") && stdout.contains("integrity_check"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&damaged_path).expect("read"), damaged);

    // A store written before the marker: it opens, serves its handoffs and
    // gets the marker.
    let legacy_dir = dir.join("legacy");
    std::fs::create_dir_all(&legacy_dir).expect("mkdir");
    let legacy = legacy_dir.join("handoffs.db");
    std::fs::write(&legacy, &good).expect("copy");
    rusqlite::Connection::open(&legacy)
        .expect("open")
        .pragma_update(None, "application_id", 0)
        .expect("unmark");
    assert_eq!(application_id(&legacy), 0);
    let config = control_config(dir, &legacy_dir);
    let mut control = Service::start_with_env(
        "baton-control",
        &["--config", config.to_str().expect("path")],
        NO_RATE_LIMIT,
        dir,
    )
    .await
    .expect("a store from before the marker opens");
    let mut client = handoff_client(&control).await;
    for id in &ids {
        client
            .get_handoff(GetHandoffRequest {
                handoff_id: id.clone(),
            })
            .await
            .expect("every handoff is there");
    }
    control.stop().await.expect("stop");
    assert_eq!(application_id(&legacy), CONTROL_STORE_ID);
}

#[tokio::test]
async fn a_backup_taken_while_the_service_writes_is_complete_and_opens() {
    let stack = Stack::start_with_env(&[], NO_RATE_LIMIT).await;
    let mut client = stack.client().await;
    let before = create_many(&mut client, "before", 100).await;
    // Handoffs keep coming while the backup runs.
    let writer = {
        let mut client = stack.client().await;
        tokio::spawn(async move { create_many(&mut client, "during", 200).await })
    };
    let store = stack.dir.path().join("control").join("handoffs.db");
    let backup_dir = stack.dir.path().join("restored");
    std::fs::create_dir_all(&backup_dir).expect("mkdir");
    let backup = backup_dir.join("handoffs.db");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, stdout, stderr) = baton_store(&[
        "backup",
        store.to_str().expect("path"),
        backup.to_str().expect("path"),
    ])
    .await;
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stdout.contains("control store backed up"), "{stdout}");
    let during = writer.await.expect("writer");
    assert_eq!(during.len(), 200);

    let (status, stdout, stderr) = baton_store(&["check", backup.to_str().expect("path")]).await;
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stdout.contains("control store, schema version"), "{stdout}");
    // A second backup to the same name is refused rather than overwriting.
    let (status, _, stderr) = baton_store(&[
        "backup",
        store.to_str().expect("path"),
        backup.to_str().expect("path"),
    ])
    .await;
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("exists"), "{stderr}");

    // A second control service opens the backup and serves every handoff
    // acknowledged before the backup began.
    let config = control_config(stack.dir.path(), &backup_dir);
    let restored = Service::start_with_env(
        "baton-control",
        &["--config", config.to_str().expect("path")],
        NO_RATE_LIMIT,
        stack.dir.path(),
    )
    .await
    .expect("the backup opens");
    let mut restored_client = handoff_client(&restored).await;
    for id in &before {
        restored_client
            .get_handoff(GetHandoffRequest {
                handoff_id: id.clone(),
            })
            .await
            .expect("a handoff from before the backup is in it");
    }
}

async fn health(endpoint: &str) -> Option<i32> {
    let channel = tonic::transport::Channel::from_shared(endpoint.to_owned())
        .ok()?
        .connect()
        .await
        .ok()?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

/// Polls health every 100 ms, at most `polls` times, until it is `status`.
async fn wait_health(endpoint: &str, status: tonic_health::ServingStatus, polls: usize) -> bool {
    for _ in 0..polls {
        if health(endpoint).await == Some(status as i32) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Sets the soft limit on the size of files `pid` writes (RLIMIT_FSIZE):
/// a write past it fails with EFBIG, as on a full disk.
async fn limit_file_size(pid: u32, soft: &str) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={soft}:")])
        .status()
        .await
        .expect("prlimit runs");
    assert!(status.success(), "prlimit failed");
}

/// Starts `binary` ignoring SIGXFSZ (inherited through exec), so that a
/// write past the file-size limit fails instead of killing it.
async fn start_ignoring_sigxfsz(binary_name: &str, args: &[&str], dir: &Path) -> Service {
    let path = binary(binary_name);
    let mut wrapped = vec![
        "-c",
        "trap '' XFSZ; exec \"$0\" \"$@\"",
        path.to_str().expect("path"),
    ];
    wrapped.extend_from_slice(args);
    Service::start_program(binary_name, Path::new("/bin/sh"), &wrapped, &[], dir)
        .await
        .expect("starts")
}

#[tokio::test]
async fn a_disk_that_refuses_writes_turns_health_not_serving_while_reads_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("control");
    let config = control_config(dir.path(), &data_dir);
    let control = start_ignoring_sigxfsz(
        "baton-control",
        &["--config", config.to_str().expect("path")],
        dir.path(),
    )
    .await;
    let endpoint = control.endpoint("grpc");
    assert!(wait_health(&endpoint, tonic_health::ServingStatus::Serving, 100).await);
    let mut client = HandoffServiceClient::connect(endpoint.clone())
        .await
        .expect("connect");
    let id = create(&mut client, request("before-full", queue("agents"))).await;

    let pid = control.pid().expect("running");
    limit_file_size(pid, "1").await;
    assert!(
        wait_health(&endpoint, tonic_health::ServingStatus::NotServing, 100).await,
        "health stayed SERVING on a disk that refuses writes"
    );
    // Reads answer: only writes fail.
    client
        .get_handoff(GetHandoffRequest {
            handoff_id: id.clone(),
        })
        .await
        .expect("reads still answer");
    let refused = client
        .create_handoff(request("while-full", queue("agents")))
        .await
        .expect_err("a write fails");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");

    limit_file_size(pid, "unlimited").await;
    assert!(
        wait_health(&endpoint, tonic_health::ServingStatus::Serving, 100).await,
        "health did not come back once writes succeed"
    );
    create(&mut client, request("after-full", queue("agents"))).await;
}

/// The queue connector's configuration, its state in `data_dir`.
fn queue_config(dir: &Path, data_dir: &Path) -> PathBuf {
    let path = dir.join("queue.toml");
    std::fs::write(
        &path,
        format!(
            "grpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
            data_dir.display().to_string()
        ),
    )
    .expect("write queue config");
    path
}

#[tokio::test]
async fn a_queue_whose_store_cannot_write_is_not_serving_and_is_routed_around() {
    let stack = Stack::start_with_env(&[], NO_RATE_LIMIT).await;
    let dir = stack.dir.path();

    // An empty queue store is refused too, and left as it was.
    let empty_dir = dir.join("empty-queue");
    std::fs::create_dir_all(&empty_dir).expect("mkdir");
    let empty = empty_dir.join("queue.sqlite3");
    std::fs::write(&empty, b"").expect("write");
    let config = queue_config(dir, &empty_dir);
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(binary("baton-connector-queue"))
            .args(["--config", config.to_str().expect("path")])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&empty.display().to_string()) && stderr.contains("the file is empty"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&empty).expect("still there").len(), 0);

    let config = queue_config(dir, &dir.join("queue"));
    let queue = start_ignoring_sigxfsz(
        "baton-connector-queue",
        &["--config", config.to_str().expect("path")],
        dir,
    )
    .await;
    let control_config = dir.join("control-queue.toml");
    std::fs::write(
        &control_config,
        format!(
            "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\n\
             [store]\ndata_dir = {data:?}\n\n\
             [connectors.queue]\nendpoint = \"{queue}\"\n\n\
             [connectors.script]\nendpoint = \"{script}\"\n\n\
             [default_connectors]\nqueue = \"queue\"\n\n\
             [[routes]]\nname = \"queue-then-script\"\n\
             targets = [{{ connector = \"queue\", queue = \"support\" }}, \
             {{ connector = \"script\", queue = \"agents\" }}]\n",
            data = dir.join("control-q").display().to_string(),
            queue = queue.endpoint("grpc"),
            script = stack.connector.endpoint("grpc"),
        ),
    )
    .expect("write control config");
    let control = Service::start_with_env(
        "baton-control",
        &["--config", control_config.to_str().expect("path")],
        NO_RATE_LIMIT,
        dir,
    )
    .await
    .expect("start control");

    let queue_endpoint = queue.endpoint("grpc");
    assert!(wait_health(&queue_endpoint, tonic_health::ServingStatus::Serving, 100).await);
    limit_file_size(queue.pid().expect("running"), "1").await;
    assert!(
        wait_health(
            &queue_endpoint,
            tonic_health::ServingStatus::NotServing,
            100
        )
        .await,
        "the queue stayed SERVING with a store that cannot write"
    );

    // The control service sees it before the transfer and moves on.
    let mut client = handoff_client(&control).await;
    let id = create(
        &mut client,
        request(
            "queue-cannot-save",
            baton_proto::types::v1::target::Kind::Route("queue-then-script".into()),
        ),
    )
    .await;
    let events = watch_all(&mut client, &id, 0).await;
    let detail = events
        .get(2)
        .and_then(|e| e.failure.as_ref())
        .map(|f| f.detail.clone())
        .unwrap_or_default();
    assert!(detail.contains("not serving"), "{detail}: {events:?}");
    assert_failed_over_from(&events, "queue");

    limit_file_size(queue.pid().expect("running"), "unlimited").await;
    assert!(
        wait_health(&queue_endpoint, tonic_health::ServingStatus::Serving, 100).await,
        "the queue did not serve again once its store writes"
    );
}
