//! Bad input gets INVALID_ARGUMENT naming the field, never a panic.

mod common;

use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use common::*;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn each_bad_field_is_named() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;

    let mut empty = request("bad-summary", queue("agents"));
    empty.context.as_mut().expect("context").summary.clear();
    empty.request_id.clear();
    let mut long = request("long-transcript", queue("agents"));
    let turn = long.context.as_ref().expect("context").transcript[0].clone();
    long.context.as_mut().expect("context").transcript = vec![turn; 501];
    let cases: [(&str, CreateHandoffRequest, &[&str]); 5] = [
        (
            "bad phone",
            request(
                "bad-phone",
                pb::target::Kind::PhoneNumber("0800 123".into()),
            ),
            &["target.phone_number"],
        ),
        (
            "bad sip",
            request(
                "bad-sip",
                pb::target::Kind::SipUri("sip:x@y\r\nVia: evil".into()),
            ),
            &["target.sip_uri"],
        ),
        ("empty summary", empty, &["request_id", "context.summary"]),
        (
            "unknown route",
            request("bad-route", pb::target::Kind::Route("nowhere".into())),
            &["target.route"],
        ),
        ("too long", long, &["context.transcript"]),
    ];
    for (case, bad, fields) in cases {
        let status = client.create_handoff(bad).await.expect_err(case);
        assert_eq!(bad_fields(&status), fields, "{case}");
    }

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
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .ends_with("the limit is limits.max_request_bytes = 262144"),
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
    use baton_control::api::validate::{Limits, validate_create};
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

/// Sends `body` as the one message of a unary call to `method`, whatever
/// it holds: what a broken or hostile client would put on the wire.
async fn raw_unary(address: String, method: &'static str, body: Vec<u8>) -> tonic::Status {
    use prost::bytes::BufMut;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Default)]
    struct Raw;
    struct RawEncoder;
    struct AnyDecoder;
    impl Codec for Raw {
        type Encode = Vec<u8>;
        type Decode = ();
        type Encoder = RawEncoder;
        type Decoder = AnyDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> AnyDecoder {
            AnyDecoder
        }
    }
    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            buf.put_slice(&item);
            Ok(())
        }
    }
    impl Decoder for AnyDecoder {
        type Item = ();
        type Error = tonic::Status;
        fn decode(&mut self, _: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
            Ok(Some(()))
        }
    }

    let channel = tonic::transport::Endpoint::from_shared(address)
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(method),
        Raw,
    )
    .await
    .expect_err("the server refuses the body")
}

#[tokio::test]
async fn a_malformed_body_is_invalid_argument_and_an_oversize_one_names_the_limit() {
    let stack = Stack::start().await;
    let address = stack.control().endpoint("grpc");
    for (method, garbage) in [
        // Field 1 (request_id) as a string running past the end.
        (
            "/baton.handoff.v1.HandoffService/CreateHandoff",
            vec![0x0a, 0x7f, b'x'],
        ),
        (
            "/baton.handoff.v1.HandoffService/GetHandoff",
            vec![0xff; 16],
        ),
        // Field 2 (after_sequence) as a varint that never ends.
        (
            "/baton.handoff.v1.HandoffService/WatchHandoff",
            vec![0x10, 0xff, 0xff],
        ),
    ] {
        let status = raw_unary(address.clone(), method, garbage).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{method}: {status:?}");
        assert!(
            status.message().contains("request body is not a valid"),
            "{method}: {status:?}"
        );
    }

    // Over limits.max_request_bytes (default 262144): refused from the
    // frame header, naming the key.
    let status = raw_unary(
        address,
        "/baton.handoff.v1.HandoffService/CreateHandoff",
        vec![0; 300_000],
    )
    .await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        "request is 300000 bytes; the limit is limits.max_request_bytes = 262144"
    );
    assert_eq!(
        status.get_details_error_info().map(|info| info.reason),
        Some("REQUEST_TOO_LARGE".to_owned())
    );

    // The start-up log lists the connector's target kinds by name (it once
    // printed the iterator: `target_kinds=FilterMap { .. }`).
    let logs = stack.control().logs();
    let ready = logs
        .lines()
        .find(|line| line.contains("connector ready"))
        .expect("a connector ready line");
    assert!(ready.contains("TARGET_KIND_QUEUE"), "{ready}");
    assert!(!ready.contains("FilterMap"), "{ready}");
}

/// Two handoffs of about 225 KB each do not fit one response (the limit is
/// limits.max_response_bytes, 278528 by default): ListHandoffs pages them
/// by size as well as by count, one per page.
#[tokio::test]
async fn list_pages_are_bounded_by_bytes() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let mut big = request(&format!("big-{n}"), queue("hold"));
        let context = big.context.as_mut().expect("context");
        let turn = context.transcript[0].clone();
        context.transcript = (0..60)
            .map(|i| pb::Turn {
                text: format!("{i:03} {}", "x".repeat(3_750)),
                ..turn.clone()
            })
            .collect();
        ids.push(create(&mut client, big).await);
    }

    let mut listed = Vec::new();
    let mut page_token = String::new();
    for page in 0.. {
        assert!(page < 4, "no more pages than handoffs: {listed:?}");
        let response = client
            .list_handoffs(ListHandoffsRequest {
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("a page of big handoffs")
            .into_inner();
        assert_eq!(response.handoffs.len(), 1, "page {page}");
        listed.extend(response.handoffs.into_iter().map(|h| h.id));
        page_token = response.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn watching_an_ended_handoff_from_its_end_returns_at_once() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(&mut client, request("ends", queue("agents"))).await;
    let events = watch_all(&mut client, &id, 0).await;
    let last = events.last().expect("events").sequence;
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(HandoffEventKind::Completed as i32)
    );

    for after in [last, last + 1, 1 << 40] {
        let mut stream = client
            .watch_handoff(WatchHandoffRequest {
                handoff_id: id.clone(),
                after_sequence: after,
            })
            .await
            .expect("watch")
            .into_inner();
        // The timeout only guards against the old hang.
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .expect("the stream of an ended handoff ends at once");
        assert!(matches!(next, Ok(None)), "after {after}: {next:?}");
    }

    let status = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: id.clone(),
            after_sequence: 1 << 63,
        })
        .await
        .expect_err("2^63");
    assert_eq!(bad_fields(&status), ["after_sequence"]);
}

#[tokio::test]
async fn times_languages_and_strings_are_checked_field_by_field() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;

    let mut absurd = request("absurd-time", queue("hold"));
    let context = absurd.context.as_mut().expect("context");
    context.transcript[0].at = Some(prost_types::Timestamp {
        seconds: 1_767_225_600,
        nanos: 0,
    });
    context.transcript[1].at = Some(prost_types::Timestamp {
        seconds: 1_767_225_600_000, // milliseconds sent as seconds
        nanos: 0,
    });
    let status = client
        .create_handoff(absurd)
        .await
        .expect_err("absurd time");
    assert_eq!(bad_fields(&status), ["context.transcript[1].at"]);

    let mut nul = request("nul", queue("hold"));
    nul.context.as_mut().expect("context").summary = "charged twice\0".into();
    nul.context.as_mut().expect("context").attempts[0].action = "a\u{2028}b".into();
    let status = client.create_handoff(nul).await.expect_err("NUL");
    assert_eq!(
        bad_fields(&status),
        ["context.summary", "context.attempts[0].action"]
    );

    let status = client
        .evaluate_escalation(EvaluateEscalationRequest {
            conversation_id: "call-1".into(),
            language: "en\r\nX-Injected: 1".into(),
            ..Default::default()
        })
        .await
        .expect_err("language");
    assert_eq!(bad_fields(&status), ["language"]);

    let status = client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: uuid::Uuid::now_v7().to_string(),
            reason: "done\u{202E}".into(),
        })
        .await
        .expect_err("reason");
    assert_eq!(bad_fields(&status), ["reason"]);
}
