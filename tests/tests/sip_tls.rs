//! SIP over TLS end to end: the control service, the SIP connector and,
//! since Debian's sipp has no TLS, kamailio's TLS module in front of sipp
//! (connectors/sip/tests/kamailio_tls.cfg), all real processes on
//! loopback, with a throwaway CA made for the test. A warm handoff reaches
//! the human (sipp) through kamailio over TLS, and the caller's gateway's
//! NOTIFY comes back over TLS to the connector's listener, which requires
//! kamailio's client certificate. A proxy whose certificate another CA
//! signed, or a peer that does not speak TLS, fails the handoff
//! UNREACHABLE with the TLS reason, and no SIP leaves in clear. The
//! connector's TLS listener refuses a peer without a client certificate
//! (or with one another CA signed) when `require_client_cert` holds, as it
//! does by default, and answers it when it is turned off.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_service_kit::tls::dev_ca::{self, DevCa};
use baton_tests::Service;
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use baton_tests::{event_kinds, in_order};
use tokio::io::AsyncReadExt;

fn sipp(scenario: &str) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario))
        .timeout(Duration::from_secs(20))
        .start()
}

fn free_tcp_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("probe");
    listener.local_addr().expect("probe address").port()
}

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("probe");
    socket.local_addr().expect("probe address").port()
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

/// kamailio with TLS on `tls` (certificate and key of `presents`, client
/// certificate of `ca` towards the connector's listener) and UDP towards
/// sipp; stopped with SIGTERM when dropped.
struct Kamailio {
    child: std::process::Child,
    tls: SocketAddr,
    udp: SocketAddr,
    run: PathBuf,
}

impl Kamailio {
    async fn start(dir: &Path, presents: &DevCa, ca: &DevCa) -> Self {
        let tls: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
        let udp: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        let run = dir.join(format!("kamailio-{}", tls.port()));
        std::fs::create_dir_all(&run).expect("kamailio dir");
        let profiles = run.join("tls.cfg");
        std::fs::write(
            &profiles,
            format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                 require_certificate = no\ncertificate = {cert}\nprivate_key = {key}\n\n\
                 [client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n\
                 require_certificate = yes\nca_list = {ca}\ncertificate = {client}\n\
                 private_key = {client_key}\n",
                cert = path(&presents.server_cert),
                key = path(&presents.server_key),
                ca = path(&ca.ca_cert),
                client = path(&ca.client_cert),
                client_key = path(&ca.client_key),
            ),
        )
        .expect("write the tls profiles");
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../connectors/sip/tests/kamailio_tls.cfg");
        // Debian installs it in /usr/sbin, which is not on every user's PATH.
        let binary = if Path::new("/usr/sbin/kamailio").exists() {
            "/usr/sbin/kamailio"
        } else {
            "kamailio"
        };
        let log = std::fs::File::create(run.join("kamailio.log")).expect("log");
        let child = std::process::Command::new(binary)
            .arg("-f")
            .arg(&config)
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-A")
            .arg(format!("TLS_CONFIG=\"{}\"", path(&profiles)))
            .arg("-l")
            .arg(format!("tls:{tls}"))
            .arg("-l")
            .arg(format!("udp:{udp}"))
            .arg("-Y")
            .arg(&run)
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .arg("-w")
            .arg(&run)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kamailio is installed (Debian packages kamailio, kamailio-tls-modules)");
        let kamailio = Self {
            child,
            tls,
            udp,
            run,
        };
        kamailio.wait_ready().await;
        kamailio
    }

    /// Ready once it answers over UDP (an OPTIONS with Max-Forwards 0 gets
    /// a 483) and accepts TCP on its TLS port.
    async fn wait_ready(&self) {
        let probe = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("probe");
        let local = probe.local_addr().expect("probe address");
        let options = format!(
            "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe\r\nMax-Forwards: 0\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let mut buffer = [0u8; 4096];
        for _ in 0..100 {
            let _ = probe.send_to(options.as_bytes(), self.udp).await;
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(200), probe.recv_from(&mut buffer)).await
                && tokio::net::TcpStream::connect(self.tls).await.is_ok()
            {
                return;
            }
        }
        panic!("kamailio did not start");
    }
}

impl Kamailio {
    /// What kamailio logged, for a failing test's message.
    fn logs(&self) -> String {
        std::fs::read_to_string(self.run.join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The SIP connector of [`start_sip_connector`], requiring client
/// certificates, and the control service in front of it.
struct Stack {
    connector: Service,
    control: Service,
}

/// The SIP connector sending everything over TLS to `proxy`, trusting
/// `ca`, with a TLS listener that requires a client certificate from `ca`
/// or, with `require_client_cert` false, asks for none.
async fn start_sip_connector(
    dir: &Path,
    ca: &DevCa,
    proxy: SocketAddr,
    require_client_cert: bool,
) -> Service {
    std::fs::create_dir_all(dir).expect("connector dir");
    let sip_config = dir.join("sip.toml");
    std::fs::write(
        &sip_config,
        format!(
            r#"
listen = "127.0.0.1:0"
ring_timeout = "10s"
notify_timeout = "10s"

[sip]
bind = "127.0.0.1:0"
t1 = "100ms"
transport = "tls"
outbound_proxy = "{proxy}"

[sip.tls]
ca_file = {ca:?}
cert_file = {cert:?}
key_file = {key:?}
bind = "127.0.0.1:0"
require_client_cert = {require_client_cert}
handshake_timeout = "2s"
"#,
            ca = path(&ca.ca_cert),
            cert = path(&ca.server_cert),
            key = path(&ca.server_key),
        ),
    )
    .expect("write sip config");
    Service::start(
        "baton-connector-sip",
        &["--config", &path(&sip_config)],
        dir,
    )
    .await
    .expect("start the SIP connector")
}

impl Stack {
    async fn start(dir: &Path, ca: &DevCa, proxy: SocketAddr) -> Self {
        let connector = start_sip_connector(dir, ca, proxy, true).await;
        let control = baton_tests::sip::start_control(dir, &connector, "").await;
        Self { connector, control }
    }

    /// A warm handoff to `agent`, the caller held by `gateway`; every
    /// event until it ends.
    async fn handoff(&self, agent: &Sipp, gateway: Option<&Sipp>) -> Vec<HandoffEvent> {
        let target = pb::target::Kind::SipUri(agent.uri("agent"));
        let mut request = baton_tests::sip_request("sip-tls-1", target);
        let gateway_uri = gateway.map(|g| g.uri("gw")).unwrap_or_default();
        baton_tests::sip::held_by_gateway(&mut request, gateway_uri);
        baton_tests::handoff_events(&self.control, request, Duration::from_secs(40)).await
    }
}

/// The failure of the handoff's one target.
fn target_failure(events: &[HandoffEvent]) -> pb::FailureReason {
    let failure = events
        .iter()
        .find(|e| e.kind() == K::TargetFailed)
        .and_then(|e| e.failure.as_ref())
        .unwrap_or_else(|| panic!("a target failure: {events:?}"));
    failure.reason()
}

#[tokio::test]
async fn a_warm_handoff_goes_over_tls_through_kamailio_and_the_notify_comes_back_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(&dir.path().join("ca")).expect("CA");
    let agent = sipp("agent_answers_any_rr");
    let gateway = sipp("gateway_warm");
    let proxy = Kamailio::start(dir.path(), &ca, &ca).await;
    let stack = Stack::start(dir.path(), &ca, proxy.tls).await;
    let events = stack.handoff(&agent, Some(&gateway)).await;
    assert!(
        in_order(
            &event_kinds(&events),
            &[K::Ringing, K::Answered, K::Connected, K::Completed]
        ),
        "{events:?}\n{}\ngateway:\n{}\nkamailio:\n{}",
        stack.connector.logs(),
        gateway.messages(),
        proxy.logs()
    );
    // The agent saw the INVITE with the connector's TLS Via, through the
    // proxy (the scenario checks both), and the ACK through it.
    agent.assert_passed().await;
    gateway.assert_passed().await;
}

#[tokio::test]
async fn a_proxy_whose_certificate_another_ca_signed_fails_the_handoff_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(&dir.path().join("ca")).expect("CA");
    let rogue = dev_ca::generate(&dir.path().join("rogue")).expect("rogue CA");
    let agent = sipp("agent_answers_any_rr");
    let proxy = Kamailio::start(dir.path(), &rogue, &rogue).await;
    let stack = Stack::start(dir.path(), &ca, proxy.tls).await;
    let events = stack.handoff(&agent, None).await;
    assert_eq!(
        target_failure(&events),
        pb::FailureReason::Unreachable,
        "{events:?}"
    );
    assert_eq!(event_kinds(&events).last(), Some(&K::Failed), "{events:?}");
    let logs = stack.connector.logs();
    assert!(
        logs.contains("TLS handshake") && logs.contains("certificate"),
        "the connector says why: {logs}"
    );
    // Nothing reached the human: the INVITE never left the connector.
    assert!(!agent.messages().contains("INVITE"), "{}", agent.messages());
}

#[tokio::test]
async fn nothing_is_sent_in_clear_to_a_peer_that_does_not_speak_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(&dir.path().join("ca")).expect("CA");
    // A plain TCP listener where the proxy should be: it records what
    // arrives and never answers.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("plain listener");
    let proxy = plain.local_addr().expect("address");
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let recorder = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = plain.accept().await {
                let mut chunk = [0u8; 4096];
                while let Ok(length) = stream.read(&mut chunk).await {
                    let mut received = received.lock().expect("lock");
                    if length == 0 || received.len() > 64 * 1024 {
                        break;
                    }
                    received.extend_from_slice(&chunk[..length]);
                }
            }
        })
    };
    let stack = Stack::start(dir.path(), &ca, proxy).await;
    let agent = sipp("agent_answers_any_rr");
    let events = stack.handoff(&agent, None).await;
    assert_eq!(
        target_failure(&events),
        pb::FailureReason::Unreachable,
        "{events:?}"
    );
    recorder.abort();
    let bytes = received.lock().expect("lock").clone();
    // A TLS handshake record (ClientHello), and no SIP.
    assert_eq!(bytes.first(), Some(&0x16), "{bytes:?}");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("INVITE") && !text.contains("SIP/2.0") && !text.contains("User-to-User"),
        "{text}"
    );
}

/// Opens TLS to `listener` trusting `ca`, presenting the client
/// certificate of `identity` (none without), and sends an OPTIONS: the
/// reply's head, or why the connection ended without one (a refused
/// handshake, an alert, or the connection closed).
async fn options_over_tls(
    listener: SocketAddr,
    ca: &DevCa,
    identity: Option<&DevCa>,
) -> Result<String, String> {
    let client = baton_service_kit::tls::ClientTlsFiles {
        ca_file: ca.ca_cert.clone(),
        cert_file: identity.map(|id| id.client_cert.clone()),
        key_file: identity.map(|id| id.client_key.clone()),
        server_name: None,
    }
    .rustls_config()
    .expect("client TLS");
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(listener)
        .await
        .expect("the listener accepts TCP");
    let name = rustls::pki_types::ServerName::from(listener.ip());
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let local = tls.get_ref().0.local_addr().expect("local address");
    let options = format!(
        "OPTIONS sip:baton@{listener};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKtlsprobe\r\nMax-Forwards: 70\r\nFrom: <sips:probe@127.0.0.1>;tag=p\r\nTo: <sips:baton@127.0.0.1>\r\nCall-ID: tls-probe@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    use tokio::io::AsyncWriteExt;
    tls.write_all(options.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            match tls.read(&mut chunk).await {
                Ok(0) => return Err(format!("closed after {} bytes", reply.len())),
                Ok(length) => {
                    reply.extend_from_slice(&chunk[..length]);
                    let text = String::from_utf8_lossy(&reply).into_owned();
                    if let Some((head, _)) = text.split_once("\r\n\r\n") {
                        return Ok(head.to_owned());
                    }
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    // The listener answers or hangs up at once: a peer left hanging is
    // neither, and fails the test rather than passing as refused.
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the listener neither answered nor closed the connection")
}

#[tokio::test]
async fn the_tls_listener_refuses_a_peer_without_a_client_certificate_when_it_requires_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(&dir.path().join("ca")).expect("CA");
    let rogue = dev_ca::generate(&dir.path().join("rogue")).expect("rogue CA");
    // Nothing is sent to the proxy: only the listener is spoken to.
    let proxy: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let requiring = start_sip_connector(&dir.path().join("requiring"), &ca, proxy, true).await;
    let listener = requiring.addr("sips");
    for (who, identity) in [("no certificate", None), ("another CA's", Some(&rogue))] {
        let outcome = options_over_tls(listener, &ca, identity).await;
        assert!(
            outcome.is_err(),
            "a peer with {who} was answered: {outcome:?}\n{}",
            requiring.logs()
        );
    }
    // The CA's client certificate gets the same OPTIONS answered: the
    // refusals above were the certificate's, not the probe's.
    let answered = options_over_tls(listener, &ca, Some(&ca)).await;
    assert!(
        answered
            .as_deref()
            .is_ok_and(|head| head.starts_with("SIP/2.0 200")),
        "{answered:?}\n{}",
        requiring.logs()
    );
    // With require_client_cert = false, a peer without one is answered.
    let open = start_sip_connector(&dir.path().join("open"), &ca, proxy, false).await;
    let answered = options_over_tls(open.addr("sips"), &ca, None).await;
    assert!(
        answered
            .as_deref()
            .is_ok_and(|head| head.starts_with("SIP/2.0 200")),
        "{answered:?}\n{}",
        open.logs()
    );
}
