//! What a transfer carries in the signalling and where it goes: the human's
//! Request-URI and From (directly or through a trunk), the context headers
//! of the INVITE (User-to-User, Call-Info, X-Baton-*, P-Asserted-Identity,
//! traceparent) and the Refer-To of the REFER.

use baton_connector_sdk::{ContextMechanism, FailureReason, Transfer, TransferTarget};
use baton_proto::types::v1::CallReference;

use super::{Failure, Transfers, UUI_TOKEN_MAX_BYTES};
use crate::config::{CallerIdPolicy, NumberFormat, SensitiveValue, UuiPlacement, is_e164};
use crate::leg::Dialog;
use crate::message::{self, HeaderLines};
use crate::stack::Transport;

/// Where the human is called, and as whom.
#[derive(Debug, Clone)]
pub(super) struct Destination {
    pub(super) request_uri: String,
    pub(super) from_uri: String,
    pub(super) credentials: Option<(String, String)>,
}

impl Transfers {
    pub(super) fn destination(&self, transfer: &Transfer) -> Result<Destination, Failure> {
        let call = transfer
            .envelope
            .conversation
            .as_ref()
            .and_then(|c| c.call.clone())
            .unwrap_or_default();
        match &transfer.target {
            TransferTarget::SipUri(uri) => {
                let parsed = rsip::Uri::try_from(uri.as_str()).ok();
                let sips = parsed
                    .as_ref()
                    .is_some_and(|u| u.scheme == Some(rsip::Scheme::Sips));
                if sips && self.stack.tls().is_none() {
                    return Err(Failure::new(
                        FailureReason::Unsupported,
                        "sips: targets need TLS, and sip.tls is not configured",
                    ));
                }
                let sip = sips || parsed.is_some_and(|u| u.scheme == Some(rsip::Scheme::Sip));
                if !sip || !message::is_safe_uri(uri) {
                    return Err(Failure::new(
                        FailureReason::Unreachable,
                        "the target is not a valid sip: URI",
                    ));
                }
                Ok(Destination {
                    request_uri: uri.clone(),
                    from_uri: self.stack.own_uri(),
                    credentials: self.config.credentials_for(uri),
                })
            }
            TransferTarget::PhoneNumber(number) => {
                if !is_e164(number) {
                    return Err(Failure::new(
                        FailureReason::Unreachable,
                        "the phone number is not E.164",
                    ));
                }
                let Some(trunk) = self.config.trunk_for(number) else {
                    return Err(Failure::new(
                        FailureReason::Unsupported,
                        "no trunk is configured for this number",
                    ));
                };
                let user = match trunk.number_format {
                    NumberFormat::E164 => number.clone(),
                    NumberFormat::Digits => number.trim_start_matches('+').to_owned(),
                };
                // The caller's number is sensitive: it goes into the From
                // only when configuration lets it out.
                let caller = match trunk.caller_id_policy {
                    CallerIdPolicy::Original
                        if is_e164(&call.caller_number)
                            && self.config.headers.may_send(SensitiveValue::CallerNumber) =>
                    {
                        Some(call.caller_number.clone())
                    }
                    _ => trunk.caller_id.clone(),
                };
                let from_user = caller.unwrap_or_else(|| self.config.sip.user.clone());
                let transport = match trunk.transport {
                    Transport::Udp => "",
                    Transport::Tcp => ";transport=tcp",
                    Transport::Tls => ";transport=tls",
                };
                Ok(Destination {
                    request_uri: format!("sip:{user}@{};user=phone{transport}", trunk.host),
                    from_uri: format!("sip:{from_user}@{}", trunk.host),
                    credentials: trunk.username.clone().zip(trunk.password.clone()),
                })
            }
            TransferTarget::Queue { .. } => Err(Failure::new(
                FailureReason::Unsupported,
                "the SIP connector does not serve queues",
            )),
        }
    }

    /// The handoff token for User-to-User: the SIP_USER_TO_USER payload, else
    /// the reference's token; None when absent, disabled or over the limit.
    pub(super) fn uui(&self, transfer: &Transfer) -> Option<String> {
        if !self.config.headers.user_to_user {
            return None;
        }
        let envelope = &transfer.envelope;
        let token = envelope
            .payloads
            .iter()
            .find(|p| p.mechanism == ContextMechanism::SipUserToUser as i32)
            .map(|p| p.content.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| envelope.reference.as_ref().map(|r| r.token.clone()))
            .filter(|t| !t.is_empty())?;
        if token.len() > UUI_TOKEN_MAX_BYTES as usize {
            tracing::warn!("handoff token too long for User-to-User; not sent");
            return None;
        }
        Some(format!(
            "{};encoding=hex;purpose={}",
            message::hex(token.as_bytes()),
            self.uui_purpose()
        ))
    }

    /// The configured `purpose` of User-to-User, as a safe token.
    pub(super) fn uui_purpose(&self) -> String {
        message::sanitize(&self.config.headers.uui_purpose, 64)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    }

    /// The context headers of the INVITE to the human: User-to-User,
    /// Call-Info, X-Baton-* and P-Asserted-Identity.
    pub(super) fn context_headers(&self, transfer: &Transfer) -> HeaderLines {
        let policy = &self.config.headers;
        let mut lines = HeaderLines::new();
        if let Some(uui) = self.uui(transfer) {
            lines.push(("User-to-User".into(), uui));
        }
        let reference = transfer.envelope.reference.clone().unwrap_or_default();
        if policy.call_info && message::is_safe_uri(&reference.screen_pop_url) {
            lines.push((
                "Call-Info".into(),
                format!("<{}>;purpose=info", reference.screen_pop_url),
            ));
        }
        if !policy.x_headers.is_empty() {
            let fields = transfer
                .envelope
                .payloads
                .iter()
                .find(|p| p.mechanism == ContextMechanism::SipHeaders as i32)
                .and_then(|p| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&p.content)
                        .ok()
                })
                .unwrap_or_default();
            for field in &policy.x_headers {
                let value = match fields.get(field) {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(serde_json::Value::Bool(b)) => b.to_string(),
                    _ => continue,
                };
                let name = format!("X-Baton-{}", header_case(field));
                if message::is_token(&name) {
                    let value = message::sanitize(&value, message::max_value_len(&name));
                    lines.push((name, value));
                }
            }
        }
        if message::is_safe_uri(&transfer.handoff_id) {
            lines.push(("X-Baton-Handoff-Id".into(), transfer.handoff_id.clone()));
        }
        lines.extend(trace_context());
        let caller = transfer
            .envelope
            .conversation
            .as_ref()
            .and_then(|c| c.call.as_ref())
            .map(|c| c.caller_number.clone())
            .unwrap_or_default();
        if policy.p_asserted_identity
            && policy.may_send(SensitiveValue::CallerNumber)
            && is_e164(&caller)
        {
            lines.push(("P-Asserted-Identity".into(), format!("<tel:{caller}>")));
        }
        lines
    }

    /// The Refer-To URI: `target` with `?Replaces=…` (warm) and, when so
    /// placed, `User-to-User=…`; blind, also the hand-back address's
    /// `Call-Info=…`, for the gateway's INVITE to the human.
    pub(super) fn refer_to(
        &self,
        target: &str,
        replaces: Option<&Dialog>,
        uui: Option<&str>,
        call_info: Option<&str>,
    ) -> String {
        let mut headers = Vec::new();
        if let Some(dialog) = replaces {
            // RFC 3891: the dialog at the recipient (the human), whose tag is
            // the to-tag; ours is the from-tag.
            headers.push(format!(
                "Replaces={}",
                message::escape_uri_header(&format!(
                    "{};to-tag={};from-tag={}",
                    dialog.call_id, dialog.remote_tag, dialog.local_tag
                ))
            ));
        }
        if let Some(uui) = uui {
            headers.push(format!("User-to-User={}", message::escape_uri_header(uui)));
        }
        if let Some(call_info) = call_info {
            headers.push(format!(
                "Call-Info={}",
                message::escape_uri_header(call_info)
            ));
        }
        if headers.is_empty() {
            target.to_owned()
        } else {
            format!("{target}?{}", headers.join("&"))
        }
    }

    /// The Refer-To of the REFER: warm, the human's device when it is
    /// reachable directly, else the URI we called (proxies route it), with
    /// Replaces; blind, the target itself. User-to-User goes in it when
    /// placed there (always for blind, where there is no INVITE of ours).
    pub(super) fn refer_target(
        &self,
        transfer: &Transfer,
        answered: Option<&Dialog>,
        destination: &Destination,
        hand_back: Option<&str>,
    ) -> String {
        let Some(dialog) = answered else {
            let uui = self.uui(transfer);
            return self.refer_to(&destination.request_uri, None, uui.as_deref(), hand_back);
        };
        let target = if dialog.route_set.is_empty() && message::is_safe_uri(&dialog.remote_target) {
            dialog.remote_target.clone()
        } else {
            dialog.target_uri.clone()
        };
        let uui = self.uui(transfer).filter(|_| {
            self.config
                .headers
                .uui_placement_for(target_name(&transfer.target))
                == UuiPlacement::ReferTo
        });
        // The human has the hand-back address from our INVITE already.
        self.refer_to(&target, Some(dialog), uui.as_deref(), None)
    }
}

/// The W3C `traceparent` of the transfer's span as a SIP header, so that the
/// far end's spans (or a capture) join the handoff's trace. The value is
/// built by OpenTelemetry from hex digits and dashes; anything else is left
/// out rather than sent into a header.
pub(super) fn trace_context() -> Option<(String, String)> {
    baton_service_kit::telemetry::current_traceparent()
        .filter(|value| {
            value
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit() || byte == b'-')
        })
        .map(|value| ("traceparent".to_owned(), value))
}

/// The target as configured: its SIP URI or its number.
pub(super) fn target_name(target: &TransferTarget) -> &str {
    match target {
        TransferTarget::SipUri(uri) => uri,
        TransferTarget::PhoneNumber(number) => number,
        TransferTarget::Queue { name, .. } => name,
    }
}

pub(super) fn call_reference(transfer: &Transfer) -> CallReference {
    transfer
        .envelope
        .conversation
        .as_ref()
        .and_then(|c| c.call.clone())
        .unwrap_or_default()
}

/// `intent` → `Intent`, `queue_name` → `Queue-Name`.
fn header_case(field: &str) -> String {
    field
        .split(['_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use baton_connector_sdk::{ContextEnvelope, ContextPayload, ContextReference, TransferMode};

    use super::*;
    use crate::config::UserAgentConfig;
    use crate::stack::SipStack;

    async fn connector(config: UserAgentConfig) -> Transfers {
        let stack = SipStack::bind(
            "127.0.0.1:0".parse().expect("addr"),
            Transport::Udp,
            None,
            "baton".into(),
            std::time::Duration::from_millis(500),
            None,
        )
        .await
        .expect("binds");
        Transfers::new(Arc::new(config), stack)
    }

    fn transfer(token: &str, screen_pop: &str, headers_json: &str) -> Transfer {
        Transfer {
            tenant: "acme".into(),
            handoff_id: "h1".into(),
            attempt: 1,
            target: TransferTarget::SipUri("sip:agent@127.0.0.1".into()),
            mode: TransferMode::Warm,
            envelope: ContextEnvelope {
                reference: Some(ContextReference {
                    handoff_id: "h1".into(),
                    token: token.into(),
                    context_url: String::new(),
                    screen_pop_url: screen_pop.into(),
                }),
                payloads: vec![ContextPayload {
                    mechanism: ContextMechanism::SipHeaders as i32,
                    content: headers_json.into(),
                    omitted_fields: vec![],
                }],
                ..Default::default()
            },
            deadline: std::time::SystemTime::now(),
            remembered: None,
            disclosure: None,
            callback: None,
        }
    }

    fn header<'a>(lines: &'a HeaderLines, name: &str) -> Option<&'a str> {
        lines
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn context_headers_carry_the_token_and_fields_and_nothing_that_breaks_a_line() {
        let connector = connector(UserAgentConfig::ephemeral()).await;
        let long = "x".repeat(5000);
        let lines = connector.context_headers(&transfer(
            "tok",
            "https://baton.test/pop?t=1",
            &format!(r#"{{"intent":"a\r\nB: c","reason":"{long}","language":"en","priority":3,"summary":"secret"}}"#),
        ));
        assert_eq!(
            header(&lines, "User-to-User"),
            Some("746f6b;encoding=hex;purpose=isdn-uui")
        );
        assert_eq!(
            header(&lines, "Call-Info"),
            Some("<https://baton.test/pop?t=1>;purpose=info")
        );
        assert_eq!(header(&lines, "X-Baton-Intent"), Some("a  B: c"));
        assert_eq!(header(&lines, "X-Baton-Priority"), Some("3"));
        // Only configured fields go out.
        assert_eq!(header(&lines, "X-Baton-Summary"), None);
        for (name, value) in &lines {
            assert!(
                name.len() + 2 + value.len() < message::MAX_HEADER_LINE,
                "{name} too long"
            );
            assert!(!value.contains(['\r', '\n']));
        }
    }

    #[tokio::test]
    async fn a_token_over_the_uui_limit_and_an_unsafe_screen_pop_are_left_out() {
        let connector = connector(UserAgentConfig::ephemeral()).await;
        let lines = connector.context_headers(&transfer(
            &"t".repeat(65),
            "https://baton.test/pop?t=1>;evil",
            "{}",
        ));
        assert_eq!(header(&lines, "User-to-User"), None);
        assert_eq!(header(&lines, "Call-Info"), None);
    }

    #[tokio::test]
    async fn the_callers_number_leaves_only_when_configuration_names_it() {
        use crate::config::TrunkConfig;
        let trunk = TrunkConfig {
            name: "t".into(),
            prefixes: vec!["+49".into()],
            host: "trunk.example".into(),
            transport: Transport::Udp,
            username: None,
            password: None,
            number_format: NumberFormat::E164,
            caller_id: Some("+4930000000".into()),
            caller_id_policy: CallerIdPolicy::Original,
        };
        let mut transfer = transfer("tok", "", "{}");
        transfer.target = TransferTarget::PhoneNumber("+4930123".into());
        transfer.envelope.conversation = Some(baton_proto::types::v1::Conversation {
            call: Some(CallReference {
                caller_number: "+14155550123".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        for (send_sensitive, allowed) in
            [(vec![], false), (vec![SensitiveValue::CallerNumber], true)]
        {
            let mut config = UserAgentConfig::ephemeral();
            config.trunks = vec![trunk.clone()];
            config.headers.send_sensitive = send_sensitive;
            let connector = connector(config).await;
            let lines = connector.context_headers(&transfer);
            let from = connector.destination(&transfer).expect("a trunk").from_uri;
            let carried: Vec<&str> = lines
                .iter()
                .filter(|(_, value)| value.contains("14155550123"))
                .map(|(name, _)| name.as_str())
                .collect();
            if allowed {
                assert_eq!(carried, ["P-Asserted-Identity"]);
                assert!(from.starts_with("sip:+14155550123@"), "{from}");
            } else {
                assert!(carried.is_empty(), "{carried:?}");
                assert!(from.starts_with("sip:+4930000000@"), "{from}");
            }
        }
    }
}
