//! The TwiML documents that move the caller: `<Dial><Number>` for phone
//! numbers, `<Dial><Sip>` with the context as SIP URI headers for SIP
//! endpoints, `<Enqueue workflowSid><Task>` with the context as TaskRouter
//! task attributes for queues (what Flex shows the agent). Pure functions,
//! tested without a network.

/// The most characters of the Calls resource's `Twiml` parameter.
pub const MAX_TWIML_CHARS: usize = 4000;
/// Twilio refuses a `<Sip>` URI whose headers part is 1024 characters or more.
pub const MAX_SIP_HEADERS_CHARS: usize = 1023;
/// Every call-progress event a `<Number>` or `<Sip>` can report.
pub const STATUS_EVENTS: &str = "initiated ringing answered completed";

/// Escapes text for an XML attribute value.
pub fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Escapes text for XML element content (quotes stay as they are, so
/// JSON task attributes keep their size).
pub fn text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Where Twilio reports the dialled leg's progress and the Dial's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialCallbacks {
    /// `statusCallback` of the noun: initiated, ringing, answered, completed.
    pub status: String,
    /// `action` of the Dial: requested when the dialled leg ends, answered
    /// with the TwiML the caller continues with.
    pub action: String,
}

fn dial(
    noun: &str,
    target: &str,
    callbacks: &DialCallbacks,
    ring_secs: u64,
    caller_id: Option<&str>,
) -> String {
    let caller_id = caller_id
        .map(|id| format!(" callerId=\"{}\"", attribute(id)))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial action=\"{action}\" method=\"POST\" timeout=\"{ring_secs}\"{caller_id}><{noun} statusCallbackEvent=\"{STATUS_EVENTS}\" statusCallback=\"{status}\" statusCallbackMethod=\"POST\">{target}</{noun}></Dial></Response>",
        action = attribute(&callbacks.action),
        status = attribute(&callbacks.status),
        target = text(target),
    )
}

/// Where Twilio reports a queued call's wait and its leaving the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueCallbacks {
    /// `action`: requested when the call leaves the queue (`QueueResult`).
    pub action: String,
    /// `waitUrl`: requested while the caller waits, with `QueuePosition` and
    /// `AvgQueueTime`; answered with what the caller hears.
    pub wait: String,
}

/// `<Dial><Number>` to an E.164 number.
pub fn dial_number(
    number: &str,
    callbacks: &DialCallbacks,
    ring_secs: u64,
    caller_id: Option<&str>,
) -> String {
    dial("Number", number, callbacks, ring_secs, caller_id)
}

/// `<Dial><Sip>` to a SIP URI that already carries its headers.
pub fn dial_sip(uri: &str, callbacks: &DialCallbacks, ring_secs: u64) -> String {
    dial("Sip", uri, callbacks, ring_secs, None)
}

/// `<Enqueue workflowSid><Task>`: a TaskRouter task whose attributes are
/// `attributes` (a JSON object), at `priority`.
pub fn enqueue_task(
    workflow_sid: &str,
    attributes: &str,
    priority: u32,
    callbacks: &EnqueueCallbacks,
) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Enqueue workflowSid=\"{workflow}\" action=\"{action}\" method=\"POST\" waitUrl=\"{wait}\" waitUrlMethod=\"POST\"><Task priority=\"{priority}\">{attributes}</Task></Enqueue></Response>",
        workflow = attribute(workflow_sid),
        action = attribute(&callbacks.action),
        wait = attribute(&callbacks.wait),
        attributes = text(attributes),
    )
}

/// Percent-encodes a SIP URI header name or value, keeping only the
/// unreserved characters.
fn escape_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Appends `headers` (name, value) to a SIP URI as `?name=value&…`, in
/// order, leaving out those that would take the headers part to Twilio's
/// limit; returns the URI and the names left out.
pub fn sip_uri_with_headers(uri: &str, headers: &[(String, String)]) -> (String, Vec<String>) {
    let (base, existing) = match uri.split_once('?') {
        Some((base, existing)) => (base, existing.to_owned()),
        None => (uri, String::new()),
    };
    let mut part = existing;
    let mut omitted = Vec::new();
    for (name, value) in headers {
        let pair = format!("{}={}", escape_header(name), escape_header(value));
        let grown = if part.is_empty() {
            pair.len()
        } else {
            part.len() + 1 + pair.len()
        };
        if grown > MAX_SIP_HEADERS_CHARS {
            omitted.push(name.clone());
            continue;
        }
        if !part.is_empty() {
            part.push('&');
        }
        part.push_str(&pair);
    }
    if part.is_empty() {
        (base.to_owned(), omitted)
    } else {
        (format!("{base}?{part}"), omitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callbacks() -> DialCallbacks {
        DialCallbacks {
            status: "https://b.example/v1/calls/k1/status".into(),
            action: "https://b.example/v1/calls/k1/dial?x=1&y=2".into(),
        }
    }

    #[test]
    fn a_number_is_dialled_with_every_progress_event_and_escaped_urls() {
        let twiml = dial_number("+14155550100", &callbacks(), 30, Some("+14155550199"));
        assert!(twiml.contains("<Dial action=\"https://b.example/v1/calls/k1/dial?x=1&amp;y=2\" method=\"POST\" timeout=\"30\" callerId=\"+14155550199\">"), "{twiml}");
        assert!(twiml.contains("<Number statusCallbackEvent=\"initiated ringing answered completed\" statusCallback=\"https://b.example/v1/calls/k1/status\" statusCallbackMethod=\"POST\">+14155550100</Number>"), "{twiml}");
    }

    #[test]
    fn task_attributes_keep_their_quotes_and_escape_markup() {
        let twiml = enqueue_task(
            "WW1",
            r#"{"summary":"a < b & c"}"#,
            5,
            &EnqueueCallbacks {
                action: "https://b/v1/calls/k/enqueue".into(),
                wait: "https://b/v1/calls/k/wait".into(),
            },
        );
        assert!(
            twiml.contains(r#"<Task priority="5">{"summary":"a &lt; b &amp; c"}</Task>"#),
            "{twiml}"
        );
        assert!(twiml.contains(
            r#"<Enqueue workflowSid="WW1" action="https://b/v1/calls/k/enqueue" method="POST" waitUrl="https://b/v1/calls/k/wait" waitUrlMethod="POST">"#
        ));
    }

    #[test]
    fn sip_headers_are_encoded_and_kept_under_the_limit() {
        let headers = vec![
            ("X-Baton-Token".to_string(), "abc.def".to_string()),
            (
                "X-Baton-Intent".to_string(),
                "billing dispute&more".to_string(),
            ),
            ("X-Baton-Huge".to_string(), "x".repeat(1100)),
            ("X-Baton-Language".to_string(), "en-US".to_string()),
        ];
        let (uri, omitted) =
            sip_uri_with_headers("sip:agent@pbx.example.com;transport=tls", &headers);
        assert_eq!(
            uri,
            "sip:agent@pbx.example.com;transport=tls?X-Baton-Token=abc.def&X-Baton-Intent=billing%20dispute%26more&X-Baton-Language=en-US"
        );
        assert_eq!(omitted, ["X-Baton-Huge"]);
        let (uri, _) = sip_uri_with_headers("sip:a@b?X-Existing=1", &headers[..1]);
        assert_eq!(uri, "sip:a@b?X-Existing=1&X-Baton-Token=abc.def");
    }
}
