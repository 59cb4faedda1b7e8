//! What the SIP connector's tests against real peers share: sipp playing
//! this crate's scenarios, the connector in-process or as a process with a
//! transfer journal, and the transfer's request and events.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use baton_connector_sip::SipConfig;
use baton_proto::connector::v1::{ContextEnvelope, StartTransferRequest, StartTransferResponse};
use baton_proto::types::v1::{Target, TransferMode, target};
use baton_tests::Service;
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use tonic::Streaming;

/// sipp playing one of this crate's scenarios once over UDP.
pub fn sipp(scenario: &str) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario)).start()
}

/// The connector, in-process, on ephemeral loopback ports.
pub async fn connector(adjust: impl FnOnce(&mut SipConfig)) -> (SocketAddr, SocketAddr) {
    let mut config = SipConfig::ephemeral();
    config.sip.t1 = Duration::from_millis(100);
    adjust(&mut config);
    let bound = baton_connector_sip::bind(config)
        .await
        .expect("connector binds");
    let addresses = (bound.grpc_addr, bound.sip_addr);
    tokio::spawn(bound.serve(std::future::pending()));
    addresses
}

/// The connector as a process with a transfer journal in `dir`, a short
/// drain, on `grpc` and `sip` (port 0: free ports); `sections` is appended
/// to its configuration.
pub async fn journalled_connector(dir: &Path, grpc: &str, sip: &str, sections: &str) -> Service {
    let config = dir.join("sip.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ngrpc_listen = \"{grpc}\"\ndrain_timeout = \"500ms\"\n\n\
             [store]\ndata_dir = {data:?}\n\n[sip]\nbind = \"{sip}\"\nt1 = \"100ms\"\n{sections}",
            data = dir.join("data").display().to_string(),
        ),
    )
    .expect("write config");
    Service::start_program(
        "baton-connector-sip",
        Path::new(env!("CARGO_BIN_EXE_baton-connector-sip")),
        &["--config", config.to_str().expect("path")],
        &[],
        dir,
    )
    .await
    .expect("starts")
}

/// The first attempt of acme's handoff `handoff_id` to `target`, due in a
/// minute.
pub fn start_request(
    handoff_id: &str,
    target: target::Kind,
    mode: TransferMode,
    envelope: ContextEnvelope,
) -> StartTransferRequest {
    StartTransferRequest {
        tenant: "acme".into(),
        handoff_id: handoff_id.into(),
        attempt: 1,
        target: Some(Target { kind: Some(target) }),
        mode: mode as i32,
        envelope: Some(envelope),
        deadline: Some((SystemTime::now() + Duration::from_secs(60)).into()),
        disclosure: None,
        callback: None,
    }
}

/// The next event, or `None` once the transfer's stream has ended.
pub async fn next_event(
    stream: &mut Streaming<StartTransferResponse>,
) -> Option<StartTransferResponse> {
    tokio::time::timeout(Duration::from_secs(40), stream.message())
        .await
        .expect("events keep coming")
        .expect("stream ok")
}
