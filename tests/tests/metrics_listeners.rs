//! Where `/metrics` is served, the same for every service with an HTTP
//! listener (the control service, the queue and the webhook connector; one
//! implementation, `baton_service_kit::metrics`): without `metrics.listen`
//! the public HTTP listener answers it to loopback callers only (403 to a
//! caller on another address of the host); with it, a listener of its own
//! serves it and the public listener has no `/metrics` at all.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use baton_tests::Service;
use common::http_get;

/// An address of this host that is not loopback: the source address of
/// the default route. Calling the service from it makes a non-loopback
/// peer without a second machine.
fn non_loopback_ip() -> IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind a UDP socket");
    // No packet is sent: connecting a UDP socket only picks the route.
    socket
        .connect("198.51.100.1:9")
        .expect("a default route: this test needs a non-loopback interface");
    let ip = socket.local_addr().expect("local address").ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
    ip
}

/// The address the service announced as `name`, reached at `ip` (the
/// service listens on every address, `0.0.0.0`).
fn at(service: &Service, name: &str, ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, service.addr(name).port())
}

/// The three services with an HTTP listener on every address, and
/// `metrics` as their `[metrics]` section.
async fn start(component: &str, metrics: &str, dir: &Path) -> Service {
    let data = dir.join(format!("{component}-data"));
    let (binary, config) = match component {
        "control" => (
            "baton-control",
            format!(
                "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"0.0.0.0:0\"\n\n\
                 [store]\ndata_dir = {data:?}\n\n[metrics]\n{metrics}\n"
            ),
        ),
        "queue" => (
            "baton-connector-queue",
            format!(
                "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"0.0.0.0:0\"\n\n\
                 [store]\ndata_dir = {data:?}\n\n[metrics]\n{metrics}\n"
            ),
        ),
        "webhook" => (
            "baton-connector-webhook",
            format!(
                "delivery_log = {log:?}\n\n[server]\ngrpc_listen = \"127.0.0.1:0\"\n\
                 http_listen = \"0.0.0.0:0\"\n\n[store]\ndata_dir = {data:?}\n\n\
                 [metrics]\n{metrics}\n",
                log = dir.join("deliveries.sqlite3"),
            ),
        ),
        other => panic!("no HTTP listener in {other}"),
    };
    let path = dir.join(format!("{component}.toml"));
    std::fs::write(&path, config).expect("write the configuration");
    Service::start(binary, &["--config", path.to_str().expect("path")], dir)
        .await
        .unwrap_or_else(|e| panic!("{binary} starts: {e:#}"))
}

#[tokio::test]
async fn without_a_metrics_listener_only_loopback_callers_scrape_the_http_port() {
    let outside = non_loopback_ip();
    let dir = tempfile::tempdir().expect("tempdir");
    for component in ["control", "queue", "webhook"] {
        let service = start(component, "", dir.path()).await;
        let (status, body) = http_get(
            at(&service, "http", IpAddr::from([127, 0, 0, 1])),
            "/metrics",
        )
        .await;
        assert_eq!(status, 200, "{component}, loopback caller: {body}");
        assert!(
            body.contains("text/plain; version=0.0.4"),
            "{component}: not a Prometheus scrape: {body}"
        );
        let (status, body) = http_get(at(&service, "http", outside), "/metrics").await;
        assert_eq!(status, 403, "{component}, caller at {outside}: {body}");
        assert!(body.contains("set metrics.listen"), "{component}: {body}");
        // The rest of the listener still answers that caller.
        let public = if component == "webhook" {
            "/v1/deliveries"
        } else {
            "/healthz"
        };
        let (status, body) = http_get(at(&service, "http", outside), public).await;
        assert_eq!(status, 200, "{component} {public} from {outside}: {body}");
    }
}

#[tokio::test]
async fn with_a_metrics_listener_it_alone_serves_metrics() {
    let outside = non_loopback_ip();
    let dir = tempfile::tempdir().expect("tempdir");
    for component in ["control", "queue", "webhook"] {
        let service = start(component, "listen = \"0.0.0.0:0\"", dir.path()).await;
        // The scraper on the pod network reaches the metrics listener.
        let (status, body) = http_get(at(&service, "metrics", outside), "/metrics").await;
        assert_eq!(
            status, 200,
            "{component} metrics listener from {outside}: {body}"
        );
        assert!(
            body.contains("text/plain; version=0.0.4"),
            "{component}: not a Prometheus scrape: {body}"
        );
        // And the public listener has no metrics, even for the host itself.
        for ip in [IpAddr::from([127, 0, 0, 1]), outside] {
            let (status, body) = http_get(at(&service, "http", ip), "/metrics").await;
            assert_eq!(status, 404, "{component} HTTP listener from {ip}: {body}");
        }
    }
}
