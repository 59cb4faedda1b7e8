//! SIP messages as the SIP connector reads them off UDP, TCP and TLS: the
//! stream framing, the bounded parse, the header lookups and sipfrag
//! bodies never panic; a frame never claims more than the buffer holds or
//! the limit allows; and a response rendered to any request that parsed is
//! one well-formed head, whatever the request's headers held (no line
//! break smuggled through a copied Via, From, To, Call-ID or CSeq).

#![no_main]

use baton_sip_message::{self as message, Frame, MAX_MESSAGE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match message::frame(data) {
        Frame::Message(length) => assert!(length <= data.len() && length <= MAX_MESSAGE_BYTES),
        Frame::KeepAlive(length) => assert!(length > 0 && length <= data.len()),
        Frame::Incomplete | Frame::Invalid(_) => {}
    }
    if let Some(code) = message::sipfrag_status(data) {
        assert!((100..700).contains(&code));
    }
    let Ok(parsed) = message::parse(data) else {
        return;
    };
    let rsip::SipMessage::Request(request) = parsed else {
        return;
    };
    for name in ["Refer-To", "Event", "Subscription-State", "Contact", "Via"] {
        let _ = message::header_value(&request.headers, name);
    }
    let _ = message::sipfrag_status(&request.body);
    let allow = [("Allow".to_owned(), "INVITE, ACK, BYE".to_owned())];
    let response =
        message::render_response_with(&request, 405, "Method\r\nNot Allowed", "t1", &allow);
    let text = String::from_utf8(response).expect("a rendered response is UTF-8");
    let head = text
        .strip_suffix("\r\n\r\n")
        .expect("the head ends with one blank line");
    for line in head.split("\r\n") {
        assert!(!line.is_empty(), "an empty line inside the head: {text:?}");
        assert!(
            !line.chars().any(char::is_control),
            "a control character in a rendered line: {line:?}"
        );
    }
});
