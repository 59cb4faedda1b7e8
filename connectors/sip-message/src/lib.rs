//! SIP messages in and out, on top of `rsip`: parsing with a size bound,
//! building requests and responses, and sanitizing every value that comes
//! from a handoff so that it cannot inject a header or break a message.

use rsip::prelude::*;
use rsip::{Header, Headers, Method, SipMessage};

/// The largest SIP message accepted; bigger datagrams are dropped unparsed.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Every header line we write stays under this many bytes.
pub const MAX_HEADER_LINE: usize = 1024;

/// Why an incoming datagram was not a usable SIP message.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("empty datagram (keep-alive)")]
    Empty,
    #[error("not SIP: {0}")]
    Malformed(String),
}

/// Parses one datagram, refusing oversize input before parsing it, and
/// checking the headers every transaction needs.
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    let message = SipMessage::try_from(bytes).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let malformed = |what: &str| ParseError::Malformed(format!("missing or bad {what}"));
    message.via_header().map_err(|_| malformed("Via"))?;
    message.call_id_header().map_err(|_| malformed("Call-ID"))?;
    message.from_header().map_err(|_| malformed("From"))?;
    message.to_header().map_err(|_| malformed("To"))?;
    let cseq = message.cseq_header().map_err(|_| malformed("CSeq"))?;
    cseq.seq().map_err(|_| malformed("CSeq"))?;
    cseq.method().map_err(|_| malformed("CSeq"))?;
    Ok(message)
}

/// What the start of a TCP stream holds (RFC 3261 18.3: messages are
/// delimited by Content-Length on streams).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet.
    Incomplete,
    /// CRLFs between messages (RFC 5626 keep-alive) of this length.
    KeepAlive(usize),
    /// A whole message of this length.
    Message(usize),
    /// Oversize, or without a usable Content-Length: close the connection.
    Invalid(&'static str),
}

/// Finds the first message in a stream buffer. Only the framing is read
/// here (the end of the headers and Content-Length); rsip parses the message.
pub fn frame(buffer: &[u8]) -> Frame {
    let blank = buffer
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if blank > 0 {
        return Frame::KeepAlive(blank);
    }
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buffer.len() > MAX_MESSAGE_BYTES {
            Frame::Invalid("headers exceed the message limit")
        } else {
            Frame::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buffer[..end]) else {
        return Frame::Invalid("headers are not UTF-8");
    };
    let mut content_length = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                match value.trim().parse::<usize>() {
                    Ok(length) => content_length = Some(length),
                    Err(_) => return Frame::Invalid("bad Content-Length"),
                }
            }
        }
    }
    let Some(body) = content_length else {
        return Frame::Invalid("no Content-Length on a stream");
    };
    let total = end + 4 + body;
    if total > MAX_MESSAGE_BYTES {
        Frame::Invalid("message exceeds the limit")
    } else if buffer.len() < total {
        Frame::Incomplete
    } else {
        Frame::Message(total)
    }
}

/// Removes what could break a header line: CR, LF and other control
/// characters, then cuts to `max` bytes on a character boundary.
pub fn sanitize(value: &str, max: usize) -> String {
    let mut clean: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned();
    if clean.len() > max {
        let mut end = max;
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean.truncate(end);
    }
    clean
}

/// The longest value a header named `name` may have so that its whole line,
/// `Name: value` and CRLF, stays within [`MAX_HEADER_LINE`].
pub fn max_value_len(name: &str) -> usize {
    MAX_HEADER_LINE.saturating_sub(name.len() + 4)
}

/// A header name made of letters, digits and '-' only.
pub fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Escapes a value for a URI header (`?Replaces=…&User-to-User=…`), RFC 3261
/// `hvalue`: everything but unreserved characters is percent-encoded.
pub fn escape_uri_header(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&byte) {
            escaped.push(byte as char);
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

/// Lower-case hex, for User-to-User (RFC 7433 `encoding=hex`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A value fit for inside `<…>` in a header: a URI without spaces, angle
/// brackets, quotes or control characters, and not too long.
pub fn is_safe_uri(uri: &str) -> bool {
    !uri.is_empty()
        && uri.len() <= MAX_HEADER_LINE - 64
        && uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
}

/// The header lines of a request, in order: name and (already safe) value.
pub type HeaderLines = Vec<(String, String)>;

/// Renders a request: rsip builds the message, we only decide its lines.
/// Values are sanitized once more here, as the last line of defence.
pub fn render_request(
    method: Method,
    uri: &str,
    headers: &HeaderLines,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let uri = rsip::Uri::try_from(uri).map_err(|e| format!("bad Request-URI {uri:?}: {e}"))?;
    let request = rsip::Request {
        method,
        uri,
        version: rsip::Version::V2,
        headers: to_headers(headers, body.len()),
        body: body.to_vec(),
    };
    Ok(request.to_string().into_bytes())
}

/// Renders a response to `request`, copying Via, From, To, Call-ID and CSeq
/// (RFC 3261 8.2.6.2) and adding a To tag when the request had none.
pub fn render_response(
    request: &rsip::Request,
    code: u16,
    reason: &str,
    local_tag: &str,
) -> Vec<u8> {
    render_response_with(request, code, reason, local_tag, &[])
}

/// As [`render_response`], with `extra` header lines (`Allow` on a 405).
pub fn render_response_with(
    request: &rsip::Request,
    code: u16,
    reason: &str,
    local_tag: &str,
    extra: &[(String, String)],
) -> Vec<u8> {
    let mut lines = HeaderLines::new();
    for header in request.headers.iter() {
        match header {
            Header::Via(via) => lines.push(("Via".into(), via.value().to_owned())),
            Header::From(from) => lines.push(("From".into(), from.value().to_owned())),
            Header::To(to) => {
                let mut value = to.value().to_owned();
                if !matches!(to.tag(), Ok(Some(_))) {
                    value.push_str(";tag=");
                    value.push_str(local_tag);
                }
                lines.push(("To".into(), value));
            }
            Header::CallId(id) => lines.push(("Call-ID".into(), id.value().to_owned())),
            Header::CSeq(cseq) => lines.push(("CSeq".into(), cseq.value().to_owned())),
            _ => {}
        }
    }
    lines.extend(extra.iter().cloned());
    let headers = to_headers(&lines, 0);
    let status = format!("SIP/2.0 {code} {}\r\n{headers}\r\n", sanitize(reason, 64));
    status.into_bytes()
}

fn to_headers(lines: &HeaderLines, body_length: usize) -> Headers {
    let mut headers = Headers::default();
    for (name, value) in lines {
        if !is_token(name) {
            continue;
        }
        let value = sanitize(value, max_value_len(name));
        headers.push(match name.as_str() {
            "Via" => Header::Via(value.into()),
            "From" => Header::From(value.into()),
            "To" => Header::To(value.into()),
            "Call-ID" => Header::CallId(value.into()),
            "CSeq" => Header::CSeq(value.into()),
            "Contact" => Header::Contact(value.into()),
            "Max-Forwards" => Header::MaxForwards(value.into()),
            "Route" => Header::Route(value.into()),
            "Content-Type" => Header::ContentType(value.into()),
            _ => Header::Other(name.clone(), value),
        });
    }
    headers.push(Header::ContentLength(body_length.to_string().into()));
    headers
}

/// The value of the first header named `name` (case-insensitive), for the
/// headers rsip keeps untyped (Refer-To, Event, Subscription-State…).
pub fn header_value(headers: &Headers, name: &str) -> Option<String> {
    headers_named(headers, name).into_iter().next()
}

/// Every value of the headers named `name`, in order.
pub fn headers_named(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter_map(|header| {
            let line = header.to_string();
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .collect()
}

/// The status code of a `message/sipfrag` body (RFC 3420) such as
/// `SIP/2.0 180 Ringing`.
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let mut words = text.lines().next()?.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = words.next()?.parse().ok()?;
    (100..700).contains(&code).then_some(code)
}

/// The URI inside `<…>` of a name-addr, or the whole value if there are no
/// brackets (params after it dropped).
pub fn addr_uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_removes_line_breaks_and_bounds_length() {
        assert_eq!(sanitize("a\r\nInjected: 1", 100), "a  Injected: 1");
        assert_eq!(sanitize("ééé", 3), "é");
        assert!(!sanitize("x\u{0}y\u{7f}", 10).contains('\u{0}'));
    }

    #[test]
    fn rendered_requests_parse_back_and_injection_stays_in_one_line() {
        let lines: HeaderLines = vec![
            (
                "Via".into(),
                "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKabc".into(),
            ),
            ("From".into(), "<sip:baton@127.0.0.1>;tag=1".into()),
            ("To".into(), "<sip:agent@127.0.0.1>".into()),
            ("Call-ID".into(), "abc@127.0.0.1".into()),
            ("CSeq".into(), "1 INVITE".into()),
            ("X-Baton-Intent".into(), "billing\r\nEvil: yes".into()),
            ("Bad Name".into(), "dropped".into()),
        ];
        let bytes = render_request(Method::Invite, "sip:agent@127.0.0.1:5070", &lines, b"")
            .expect("renders");
        let message = parse(&bytes).expect("parses back");
        assert_eq!(
            header_value(message.headers(), "X-Baton-Intent").as_deref(),
            Some("billing  Evil: yes")
        );
        assert!(header_value(message.headers(), "Evil").is_none());
        assert!(header_value(message.headers(), "Bad Name").is_none());
    }

    #[test]
    fn stream_framing_follows_content_length_and_bounds_size() {
        let message = b"NOTIFY sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabcNEXT";
        assert_eq!(frame(message), Frame::Message(message.len() - 4));
        assert_eq!(frame(&message[..20]), Frame::Incomplete);
        assert_eq!(frame(b"\r\n\r\nINVITE"), Frame::KeepAlive(4));
        assert!(matches!(
            frame(b"A sip:a SIP/2.0\r\nl: x\r\n\r\n"),
            Frame::Invalid(_)
        ));
        assert!(matches!(
            frame(b"A sip:a SIP/2.0\r\nVia: x\r\n\r\n"),
            Frame::Invalid(_)
        ));
        let huge = format!(
            "A sip:a SIP/2.0\r\nContent-Length: {}\r\n\r\n",
            MAX_MESSAGE_BYTES
        );
        assert!(matches!(frame(huge.as_bytes()), Frame::Invalid(_)));
        assert!(matches!(
            frame(&vec![b'A'; MAX_MESSAGE_BYTES + 1]),
            Frame::Invalid(_)
        ));
    }

    #[test]
    fn sipfrag_and_uri_helpers() {
        assert_eq!(sipfrag_status(b"SIP/2.0 180 Ringing\r\n"), Some(180));
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
        assert_eq!(addr_uri("\"A\" <sip:a@b>;tag=1"), "sip:a@b");
        assert_eq!(escape_uri_header("a@b;to-tag=1"), "a%40b%3Bto-tag%3D1");
        assert_eq!(hex(b"ab"), "6162");
    }
}
