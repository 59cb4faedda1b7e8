//! sipp (Debian package sip-tester) as a SIP peer on a free loopback port:
//! a phone, a caller's gateway or a trunk playing one of the scenarios in
//! `connectors/sip/tests/scenarios` (or any other), bounded by its own
//! `-timeout` and killed when dropped. Its error log, message log and
//! stderr go to files, so a failed scenario can say what sipp saw.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How long sipp may take to bind its port before the test goes on anyway
/// (a sipp that never binds fails its scenario, which says why).
const BIND_TIMEOUT: Duration = Duration::from_secs(5);

/// One of the SIP connector's scenarios, which the other crates' tests
/// reuse for their phones, gateways and trunks.
pub fn sip_connector_scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../connectors/sip/tests/scenarios")
        .join(format!("{name}.xml"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    Udp,
    /// One TCP connection for all calls (sipp's `t1`).
    Tcp,
}

/// How to run sipp: by default one call over UDP within 20 seconds, its
/// logs in a directory of its own.
#[derive(Debug)]
pub struct Launch {
    scenario: PathBuf,
    name: String,
    transport: Transport,
    calls: usize,
    timeout: Duration,
    logs: Option<PathBuf>,
    args: Vec<String>,
}

impl Launch {
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// `-m`: sipp ends after this many calls.
    pub fn calls(mut self, calls: usize) -> Self {
        self.calls = calls;
        self
    }

    /// `-timeout`: sipp fails if its calls are not done by then.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Writes the logs into `dir`, where they outlive sipp.
    pub fn logs_in(mut self, dir: &Path) -> Self {
        self.logs = Some(dir.to_owned());
        self
    }

    /// Names the logs (`sipp-<name>-<port>-…`) after `name` instead of the
    /// scenario.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// More of sipp's arguments: a caller's remote address and rate, say.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts sipp and waits (a bounded time) until it has bound its port.
    pub fn try_start(self) -> anyhow::Result<Sipp> {
        let port = free_port(self.transport)?;
        let (dir, owned_dir) = match self.logs {
            Some(dir) => (dir, None),
            None => {
                let owned = tempfile::tempdir()?;
                (owned.path().to_owned(), Some(owned))
            }
        };
        let log = |kind: &str| dir.join(format!("sipp-{}-{port}-{kind}.log", self.name));
        let (errors, messages, stderr) = (log("errors"), log("messages"), log("stderr"));
        let transport = match self.transport {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        };
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&self.scenario)
            .args(&self.args)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", transport])
            .args(["-m", &self.calls.to_string()])
            .args(["-timeout", &format!("{}s", self.timeout.as_secs())])
            .args(["-timeout_error", "-nostdin"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&errors)
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&messages)
            // The message log's times are local; UTC makes them Unix times.
            .env("TZ", "UTC")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .kill_on_drop(true)
            .spawn()
            .context("sipp is installed (Debian package sip-tester)")?;
        // Over UDP a peer's retransmissions hide a slow start, but not from
        // a measurement; over TCP the connection is refused.
        let deadline = Instant::now() + BIND_TIMEOUT;
        while !bound(self.transport, port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Sipp {
            child,
            scenario: self.scenario,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            timeout: self.timeout,
            errors,
            messages,
            stderr,
            _owned_dir: owned_dir,
        })
    }

    /// As [`Launch::try_start`], for tests.
    pub fn start(self) -> Sipp {
        self.try_start().expect("sipp starts")
    }
}

/// A running sipp; killed when dropped.
#[derive(Debug)]
pub struct Sipp {
    child: Child,
    scenario: PathBuf,
    addr: SocketAddr,
    timeout: Duration,
    errors: PathBuf,
    messages: PathBuf,
    stderr: PathBuf,
    _owned_dir: Option<tempfile::TempDir>,
}

impl Sipp {
    /// sipp playing `scenario`, once started.
    pub fn play(scenario: &Path) -> Launch {
        Launch {
            name: scenario
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default(),
            scenario: scenario.to_owned(),
            transport: Transport::Udp,
            calls: 1,
            timeout: Duration::from_secs(20),
            logs: None,
            args: Vec::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    /// Every SIP message sipp has sent and received so far, as it logged
    /// them.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }

    /// Waits for sipp to end and returns its message log; an error, with
    /// sipp's own account, when the scenario failed.
    pub async fn finish(mut self) -> anyhow::Result<String> {
        self.wait()
            .await
            .with_context(|| format!("sipp's messages are in {}", self.messages.display()))?;
        Ok(self.messages())
    }

    /// Waits for sipp to end and panics, with every message it logged,
    /// unless its scenario passed.
    pub async fn assert_passed(mut self) {
        if let Err(failure) = self.wait().await {
            panic!("{failure:#}\n{}", self.messages());
        }
    }

    async fn wait(&mut self) -> anyhow::Result<()> {
        let status = tokio::time::timeout(self.timeout * 3 / 2, self.child.wait())
            .await
            .context("sipp ends within its own -timeout")?
            .context("sipp exit status")?;
        if !status.success() {
            let errors = std::fs::read_to_string(&self.errors).unwrap_or_default();
            let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            bail!(
                "sipp scenario {} failed ({status}):\n{errors}\n{stderr}",
                self.scenario.display()
            );
        }
        Ok(())
    }
}

fn free_port(transport: Transport) -> anyhow::Result<u16> {
    Ok(match transport {
        Transport::Udp => UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port(),
        Transport::Tcp => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
    })
}

/// Whether 127.0.0.1:`port` is bound (listening, for TCP), read from the
/// kernel's socket tables: a probe that bound or connected to the port
/// could take it from sipp, or be taken for a call.
fn bound(transport: Transport, port: u16) -> bool {
    let table = match transport {
        Transport::Udp => "/proc/net/udp",
        Transport::Tcp => "/proc/net/tcp",
    };
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|line| {
            // sl, local_address, rem_address, st, …
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str())
                && (transport == Transport::Udp || fields.get(3) == Some(&"0A"))
        })
}
