//! The benchmark still runs: `baton-bench --quick` starts the services,
//! drives every scenario and prints its table. Behaviour only; no figure is
//! checked, because timing on a shared machine is not a test.

use std::process::Command;

#[test]
fn quick_mode_prints_the_table() {
    let data = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_baton-bench"))
        .arg("--quick")
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .expect("run baton-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "baton-bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert!(
        table
            .first()
            .is_some_and(|header| header.contains("baseline") && header.contains("ratio")),
        "{stdout}"
    );
    for figure in [
        "raw SQLite insert commits",
        "store commits, 64 writers",
        "CreateHandoff p50, c=1",
        "CreateHandoff throughput, c=256",
        "CreateHandoff p50, c=1 (vs durable floor)",
        "CreateHandoff p99.9, c=1 (vs durable floor)",
        "CreateHandoff p99 at 80% of peak",
        "CreateHandoff throughput at 80% of peak",
        "CPU time per handoff to SIP",
        "CreateHandoff to INVITE at the phone, p50",
        "handoffs to SIP calls/s",
        "SIP connector alone calls/s",
        "CreateHandoff to screen pop, p99",
        "RSS per stream, 100 streams",
        "handoffs to SSE desktops/s, 32 agents, c=32",
        "RSS per waiting handoff, queue",
        "RSS for 100k waiting in the queue",
        "starting the 100 transfers",
        "connector restart to serving, 100 in flight",
    ] {
        assert!(
            table.iter().any(|row| row.contains(figure)),
            "no {figure:?} row in\n{stdout}"
        );
    }
    // Without PostgreSQL the replicas scenario skips itself; CI has it.
    if postgres_installed() {
        for figure in [
            "pgbench INSERT + NOTIFY commits, c=64",
            "handoffs/s, 1 replica, c=64",
            "CreateHandoff p99, 3 replicas, c=64",
        ] {
            assert!(
                table.iter().any(|row| row.contains(figure)),
                "no {figure:?} row in\n{stdout}"
            );
        }
    }
}

/// Debian's PostgreSQL server and pgbench, where the bench looks for them.
fn postgres_installed() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
        versions.flatten().any(|version| {
            let bin = version.path().join("bin");
            bin.join("initdb").exists() && bin.join("pgbench").exists()
        })
    })
}
