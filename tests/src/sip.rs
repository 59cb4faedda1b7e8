//! The SIP connector and the control service in front of it, as the SIP
//! tests start them, and the call a caller's gateway holds for a warm or
//! attended transfer.

use std::path::Path;

use baton_proto::handoff::v1::CreateHandoffRequest;

use crate::Service;

/// Starts the SIP connector on `config`, written to `dir/sip.toml`.
pub async fn start_connector(dir: &Path, config: &str) -> Service {
    crate::start_with_config("baton-connector-sip", dir, "sip.toml", config, &[])
        .await
        .expect("start the SIP connector")
}

/// Starts the SIP connector as most SIP tests run it: gRPC and SIP on
/// ephemeral loopback ports, a short T1 so retransmissions come quickly,
/// ten seconds of ringing; `sections` (TOML tables: `[consult]`,
/// `[[trunks]]`…) end its config.
pub async fn start_loopback_connector(dir: &Path, sections: &str) -> Service {
    let config = format!(
        r#"ring_timeout = "10s"

[server]
grpc_listen = "127.0.0.1:0"

[sip]
bind = "127.0.0.1:0"
t1 = "100ms"

{sections}"#
    );
    start_connector(dir, &config).await
}

/// Starts the control service (SQLite under `dir`) in front of the SIP
/// connector `sip`, which takes SIP URI targets; `rest` is the rest of its
/// config (TOML: more keys of `[default_connectors]` first, then sections
/// such as routes).
pub async fn start_control(dir: &Path, sip: &Service, rest: &str) -> Service {
    let sections = format!(
        "[connectors.sip]\nendpoint = \"{endpoint}\"\n\n\
         [default_connectors]\nsip_uri = \"sip\"\n{rest}\n",
        endpoint = sip.endpoint("grpc"),
    );
    crate::start_control(dir, &sections, &[])
        .await
        .expect("start control")
}

/// Makes `request`'s call the one the SIP connector's `gateway_warm`
/// scenario holds (its Call-ID and tags), at `gateway_uri` (empty: no
/// gateway to tell).
pub fn held_by_gateway(request: &mut CreateHandoffRequest, gateway_uri: String) {
    let call = request
        .conversation
        .as_mut()
        .and_then(|c| c.call.as_mut())
        .expect("call");
    call.sip_call_id = "customer-call-1@gw".into();
    call.sip_from_tag = "customer-tag".into();
    call.sip_to_tag = "gw-tag".into();
    call.sip_gateway_uri = gateway_uri;
}
