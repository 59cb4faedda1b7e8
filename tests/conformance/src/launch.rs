//! A connector the kit starts itself (`--launch`): the kit reads the JSON
//! ready line every Baton service prints (`{"ready":{"grpc":"ADDR",…}}`) to
//! learn its address, can kill it and start it again with the same command
//! to check that it recovers its transfers from its journal, and can stop
//! it with SIGTERM to check that shutdown drains.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a launched connector may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A connector process the kit started; killed when dropped.
#[derive(Debug)]
pub struct Launched {
    child: Child,
    /// The `ready` object of its ready line.
    pub ready: serde_json::Value,
    /// `http://ADDR` of its gRPC server.
    pub endpoint: String,
    /// What started it, to start it again.
    command: Vec<String>,
    log: Option<PathBuf>,
}

impl Launched {
    /// Runs `command` (program and arguments) and waits for its ready
    /// line. Its stderr (its logs) goes to `log`, else to the kit's stderr.
    pub async fn start(command: &[String], log: Option<&Path>) -> anyhow::Result<Self> {
        Self::spawn(command, log, false).await
    }

    /// Kills the process at once (SIGKILL, as a crash would) and starts
    /// the same command again; its logs are appended to the same file.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .await
            .context("cannot kill the connector")?;
        *self = Self::spawn(&self.command, self.log.as_deref(), true).await?;
        Ok(())
    }

    async fn spawn(command: &[String], log: Option<&Path>, append: bool) -> anyhow::Result<Self> {
        let (program, args) = command
            .split_first()
            .context("the launch command is empty")?;
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(append)
                    .write(true)
                    .truncate(!append)
                    .open(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(stderr)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(ready) = parse_ready_line(&line) {
                    return Ok(ready);
                }
            }
            bail!("{program} exited before printing its ready line")
        })
        .await
        .map_err(|_| {
            anyhow::anyhow!("{program} printed no ready line within {READY_TIMEOUT:?}")
        })??;
        let address = ready
            .get("grpc")
            .and_then(|v| v.as_str())
            .with_context(|| format!("the ready line names no grpc address: {ready}"))?;
        let endpoint = format!("http://{address}");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            ready,
            endpoint,
            command: command.to_vec(),
            log: log.map(Path::to_path_buf),
        })
    }

    /// Sends SIGTERM.
    pub async fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the connector already exited")?;
        // `kill` rather than a signal crate: the workspace forbids unsafe
        // code and this is the only signal the kit sends.
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        Ok(())
    }

    /// Waits up to `wait` for the process to exit.
    pub async fn wait(&mut self, wait: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(wait, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// The `ready` object of a `{"ready":{…}}` line.
pub fn parse_ready_line(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("ready")
        .filter(|ready| ready.is_object())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_found_among_other_output() {
        let ready = parse_ready_line(
            r#"{"ready":{"service":"baton-connector-script","grpc":"127.0.0.1:4242"}}"#,
        )
        .expect("ready");
        assert_eq!(ready["grpc"], "127.0.0.1:4242");
        assert!(parse_ready_line("starting…").is_none());
        assert!(parse_ready_line(r#"{"ready":true}"#).is_none());
    }
}
