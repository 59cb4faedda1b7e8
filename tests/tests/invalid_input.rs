//! Bad input gets INVALID_ARGUMENT naming the field, never a panic.

mod common;

use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use common::*;
use tonic::Code;
use tonic_types::StatusExt;

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[tokio::test]
async fn each_bad_field_is_named() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;

    let status = client
        .create_handoff(request(
            "bad-phone",
            pb::target::Kind::PhoneNumber("0800 123".into()),
        ))
        .await
        .expect_err("bad phone");
    assert_eq!(bad_fields(&status), ["target.phone_number"]);

    let status = client
        .create_handoff(request(
            "bad-sip",
            pb::target::Kind::SipUri("sip:x@y\r\nVia: evil".into()),
        ))
        .await
        .expect_err("bad sip");
    assert_eq!(bad_fields(&status), ["target.sip_uri"]);

    let mut empty = request("bad-summary", queue("agents"));
    empty.context.as_mut().expect("context").summary.clear();
    empty.request_id.clear();
    let status = client
        .create_handoff(empty)
        .await
        .expect_err("empty summary");
    assert_eq!(bad_fields(&status), ["request_id", "context.summary"]);

    let status = client
        .create_handoff(request(
            "bad-route",
            pb::target::Kind::Route("nowhere".into()),
        ))
        .await
        .expect_err("unknown route");
    assert_eq!(bad_fields(&status), ["target.route"]);

    let mut long = request("long-transcript", queue("agents"));
    let turn = long.context.as_ref().expect("context").transcript[0].clone();
    long.context.as_mut().expect("context").transcript = vec![turn; 501];
    let status = client.create_handoff(long).await.expect_err("too long");
    assert_eq!(bad_fields(&status), ["context.transcript"]);

    let status = client
        .get_handoff(GetHandoffRequest {
            handoff_id: "'; DROP TABLE handoffs".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(bad_fields(&status), ["handoff_id"]);

    let status = client
        .list_handoffs(ListHandoffsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(bad_fields(&status), ["page_token"]);

    let status = client
        .get_handoff(GetHandoffRequest {
            handoff_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn oversized_requests_are_refused_before_they_are_read() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let mut huge = request("huge", queue("agents"));
    huge.context.as_mut().expect("context").agent_notes = "x".repeat(2 * 1024 * 1024);
    let status = client.create_handoff(huge).await.expect_err("too large");
    assert!(
        matches!(
            status.code(),
            Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
        ),
        "{status:?}"
    );
    // The service is still there.
    client
        .create_handoff(request("after-huge", queue("hold")))
        .await
        .expect("create after a refused one");
}

#[tokio::test]
async fn garbage_bytes_on_the_grpc_port_do_not_hurt_the_service() {
    use tokio::io::AsyncWriteExt;
    let stack = Stack::start().await;
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0xff; 4096],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x01\x00\x00\x00\x00".to_vec(),
    ] {
        let mut socket = tokio::net::TcpStream::connect(stack.control().addr("grpc"))
            .await
            .expect("connect");
        let _ = socket.write_all(&garbage).await;
        drop(socket);
    }
    let mut client = stack.client().await;
    client
        .create_handoff(request("after-garbage", queue("hold")))
        .await
        .expect("still serving");
}

/// The fuzz target `create_request` starts from the seeds in
/// tests/fuzz/seeds/create_request (the sample escalation to each target
/// kind): each must stay a request that passes validation, so that fuzzing
/// begins past the decoder and the validator's first refusals.
#[test]
fn the_fuzz_seeds_are_valid_requests() {
    use baton_control::domain::validate::{Limits, validate_create};
    use prost::Message;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/create_request");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).expect("the seeds") {
        let path = entry.expect("seed").path();
        let bytes = std::fs::read(&path).expect("read the seed");
        let request = CreateHandoffRequest::decode(bytes.as_slice()).expect("a request");
        let max_timeout = std::time::Duration::from_secs(600);
        if let Err(violations) = validate_create(&request, &Limits::default(), max_timeout) {
            panic!("{}: {violations:?}", path.display());
        }
        seeds += 1;
    }
    assert_eq!(seeds, 4, "one seed per target kind");
}
