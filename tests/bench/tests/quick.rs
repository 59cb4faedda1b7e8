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
        "CreateHandoff to INVITE at the phone, p50",
        "handoffs to SIP calls/s",
        "SIP connector alone calls/s",
        "CreateHandoff to screen pop, p99",
        "RSS per stream, 100 streams",
    ] {
        assert!(
            table.iter().any(|row| row.contains(figure)),
            "no {figure:?} row in\n{stdout}"
        );
    }
}
