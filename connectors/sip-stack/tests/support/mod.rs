//! sipp (Debian package sip-tester) as a phone on a free loopback UDP
//! port, playing one of `tests/scenarios`; bounded by its own `-timeout`
//! and killed when dropped. (The `baton-tests` helpers cannot be used
//! here: that crate depends on this one through the queue.)

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// sipp's own bound on its calls; the test's waits are longer.
const SIPP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Sipp {
    child: Child,
    addr: SocketAddr,
    errors: PathBuf,
    messages: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("a free UDP port")
        .port()
}

impl Sipp {
    /// Plays `scenario` for `calls` calls.
    pub fn start(scenario: &str, calls: usize) -> Self {
        let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scenarios")
            .join(format!("{scenario}.xml"));
        let dir = tempfile::tempdir().expect("a log directory");
        let port = free_udp_port();
        let errors = dir.path().join("errors.log");
        let messages = dir.path().join("messages.log");
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1"])
            // Its own media port: tests run side by side.
            .args(["-mp", &free_udp_port().to_string()])
            .args(["-m", &calls.to_string()])
            .args(["-timeout", &format!("{}s", SIPP_TIMEOUT.as_secs())])
            .args(["-timeout_error", "-nostdin", "-trace_err", "-trace_msg"])
            .arg("-error_file")
            .arg(&errors)
            .arg("-message_file")
            .arg(&messages)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp is installed (Debian package sip-tester)");
        // Bound: sipp has the port once binding it here fails.
        for _ in 0..500 {
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            errors,
            messages,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message sipp sent and received, as it logged them.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }

    /// Waits for sipp to end; panics with its account when the scenario
    /// failed (a check of its own, or a message it did not expect).
    pub async fn finish(mut self) -> String {
        let status =
            tokio::time::timeout(SIPP_TIMEOUT + Duration::from_secs(10), self.child.wait())
                .await
                .expect("sipp ends within its own timeout")
                .expect("sipp's exit status");
        let messages = self.messages();
        assert!(
            status.success(),
            "sipp failed ({status}): {}\n--- messages ---\n{messages}",
            std::fs::read_to_string(&self.errors).unwrap_or_default()
        );
        messages
    }
}
