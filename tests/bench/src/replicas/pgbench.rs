//! Debian's PostgreSQL client tools beside the server's binaries: `psql`
//! for the server's counters, `pgbench` for its own commit rate, the
//! baseline of the `replicas` scenario.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_tests::postgres::Postgres;

use super::CONCURRENCY;
use crate::report::Percentiles;

/// One pgbench run: commits per second, per-transaction latencies and
/// WAL flushes per commit.
pub(super) struct Pgbench {
    pub(super) per_second: f64,
    pub(super) latency: Percentiles,
    pub(super) wal_syncs_per_commit: f64,
}

/// PostgreSQL's counters of one database.
pub(super) struct Counters {
    pub(super) commits: u64,
    pub(super) wal_syncs: u64,
}

/// Debian's client tools beside the server's binaries, on one database.
pub(super) struct PgClient {
    bin: PathBuf,
    port: String,
    database: String,
    dir: PathBuf,
}

impl PgClient {
    pub(super) fn new(postgres: &Postgres, url: &str, dir: &Path) -> Self {
        Self {
            bin: postgres.bin_dir().to_path_buf(),
            port: postgres.port().to_string(),
            database: url.rsplit('/').next().unwrap_or("postgres").to_owned(),
            dir: dir.to_path_buf(),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(["-h", "127.0.0.1", "-p", &self.port, "-U", "postgres"])
            .current_dir(&self.dir);
        command
    }

    /// Runs `sql`; its output, unaligned, without headers.
    pub(super) fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let output = self
            .command("psql")
            .args([
                "-d",
                &self.database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ])
            .output()
            .context("running psql")?;
        if !output.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub(super) fn counters(&self) -> anyhow::Result<Counters> {
        let line = self.psql(
            "SELECT d.xact_commit, w.wal_sync FROM pg_stat_database d, pg_stat_wal w \
             WHERE d.datname = current_database()",
        )?;
        let mut fields = line.split('|').map(str::parse::<u64>);
        match (fields.next(), fields.next()) {
            (Some(Ok(commits)), Some(Ok(wal_syncs))) => Ok(Counters { commits, wal_syncs }),
            _ => bail!("unexpected counters from psql: {line:?}"),
        }
    }

    /// pgbench with `script` on 64 clients (2 threads) for `seconds`,
    /// logging every transaction's latency.
    pub(super) fn pgbench(
        &self,
        name: &str,
        script: &str,
        seconds: u32,
    ) -> anyhow::Result<Pgbench> {
        let script_path = self.dir.join(format!("{name}.sql"));
        std::fs::write(&script_path, script)?;
        let log_dir = self.dir.join(format!("pgbench-{name}"));
        std::fs::create_dir_all(&log_dir)?;
        let clients = CONCURRENCY.to_string();
        let before = self.counters()?;
        let output = self
            .command("pgbench")
            .args(["-c", &clients, "-j", "2", "-T", &seconds.to_string(), "-n"])
            .arg("-f")
            .arg(&script_path)
            .arg("-l")
            .arg(format!("--log-prefix={}", log_dir.join("log").display()))
            .arg(&self.database)
            .output()
            .context("running pgbench")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "pgbench failed ({}): {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let per_second =
            tps(&stdout).with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
        // pgbench's backends have ended, so their counters are reported.
        std::thread::sleep(Duration::from_millis(500));
        let after = self.counters()?;
        let mut samples = logged_latencies(&log_dir)?;
        let commits = (after.commits.saturating_sub(before.commits) as f64).max(1.0);
        Ok(Pgbench {
            per_second,
            latency: Percentiles::of(&mut samples),
            wal_syncs_per_commit: after.wal_syncs.saturating_sub(before.wal_syncs) as f64 / commits,
        })
    }
}

/// The rate in pgbench's `tps = 13534.123456 (without initial connection
/// time)` line.
fn tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// Every transaction's latency from pgbench's logs in `dir`: lines of
/// `client transaction latency_us script epoch_s epoch_us`.
fn logged_latencies(dir: &Path) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        samples.extend(text.lines().filter_map(|line| {
            let micros = line.split_whitespace().nth(2)?.parse::<u64>().ok()?;
            Some(Duration::from_micros(micros))
        }));
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tps_is_read_from_pgbench_output() {
        let output = "latency average = 4.729 ms\n\
                      initial connection time = 31.125 ms\n\
                      tps = 13534.123456 (without initial connection time)\n";
        assert_eq!(tps(output), Some(13534.123456));
        assert_eq!(tps("no rate here"), None);
    }
}
