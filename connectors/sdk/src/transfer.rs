//! One transfer as a connector sees it, checked against the connector's
//! capabilities.

use std::time::SystemTime;

use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, Disclosure, StartTransferRequest,
};
use baton_proto::types::v1::{Target, TargetKind, TransferMode, target};
use baton_service_kit::status::{FieldViolation, invalid_argument, with_reason};
use prost::Message;
use tonic::{Code, Status};

use crate::ConnectorInfo;

/// The concrete destination of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    Queue { name: String, skills: Vec<String> },
    PhoneNumber(String),
    SipUri(String),
}

impl TransferTarget {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Queue { .. } => TargetKind::Queue,
            Self::PhoneNumber(_) => TargetKind::PhoneNumber,
            Self::SipUri(_) => TargetKind::SipUri,
        }
    }
}

/// One transfer, as given to [`Connector::start`].
#[derive(Debug, Clone)]
pub struct Transfer {
    /// The tenant whose customer this is (never empty): a connector shared
    /// by tenants keeps each one's records apart by it.
    pub tenant: String,
    pub handoff_id: String,
    pub attempt: u32,
    pub target: TransferTarget,
    pub mode: TransferMode,
    /// The context, fitted by the control service to this connector's
    /// advertised mechanisms and limits.
    pub envelope: ContextEnvelope,
    pub deadline: SystemTime,
    /// The last note the connector stored with
    /// [`TransferEvents::remember`](crate::TransferEvents::remember) for
    /// this transfer before a restart: `None` on a fresh transfer; on one
    /// given to [`Connector::resume`](crate::Connector::resume) (or to
    /// `cancel` after a restart), what the previous process remembered.
    pub remembered: Option<String>,
    /// What the control service disclosed of the context in `envelope`,
    /// field by field, and in which form (the record it audits); `None`
    /// from a control service that does not say. A connector that shows
    /// handoffs to a supervisor may show it.
    pub disclosure: Option<Disclosure>,
    /// Set when the customer is to be called back instead of transferred
    /// (only to a connector advertising
    /// [`callbacks`](crate::ConnectorInfo::callbacks)): the customer is
    /// no longer on the line. The number is sensitive: never log it.
    pub callback: Option<Callback>,
}

/// A callback as the control service asks for it: checked (E.164 number,
/// consent given, a window that ends after it starts).
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    /// E.164: `+` and 8 to 15 digits.
    pub number: String,
    /// No dial before this; `None`: at once.
    pub window_start: Option<SystemTime>,
    /// No dial after this; `None`: until the transfer's deadline.
    pub window_end: Option<SystemTime>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The number is the customer's: Debug shows only its last digits.
        f.debug_struct("Callback")
            .field(
                "number",
                &baton_request_validation::mask_number(&self.number),
            )
            .field("window_start", &self.window_start)
            .field("window_end", &self.window_end)
            .finish()
    }
}

impl Callback {
    /// Whether a dial may start at `now`.
    pub fn window_open(&self, now: SystemTime) -> bool {
        self.window_start.is_none_or(|start| now >= start)
            && self.window_end.is_none_or(|end| now < end)
    }
}

/// The request's callback, checked; violations name `callback.…`.
fn parse_callback(
    callback: Option<baton_proto::types::v1::Callback>,
    violations: &mut Vec<FieldViolation>,
) -> Option<Callback> {
    let callback = callback?;
    if !baton_request_validation::is_e164(&callback.number) {
        violations.push(FieldViolation::new(
            "callback.number",
            "must be an E.164 number (+ and up to 15 digits)",
        ));
    }
    if !callback.consent {
        violations.push(FieldViolation::new(
            "callback.consent",
            "must be true: the customer agreed to be called back",
        ));
    }
    let time = |t: Option<prost_types::Timestamp>| t.and_then(|t| SystemTime::try_from(t).ok());
    let (window_start, window_end) = (time(callback.window_start), time(callback.window_end));
    if let (Some(start), Some(end)) = (window_start, window_end)
        && end <= start
    {
        violations.push(FieldViolation::new(
            "callback.window_end",
            "must be after window_start",
        ));
    }
    Some(Callback {
        number: callback.number,
        window_start,
        window_end,
    })
}

impl Transfer {
    /// Checks a request against the connector's capabilities: a missing or
    /// malformed field is INVALID_ARGUMENT, a kind or mode not advertised
    /// is UNIMPLEMENTED.
    pub(crate) fn from_request(
        request: StartTransferRequest,
        info: &ConnectorInfo,
    ) -> Result<Self, Status> {
        let mut violations = Vec::new();
        if request.tenant.is_empty() {
            violations.push(FieldViolation::new(
                "tenant",
                "is required: the tenant whose customer this is",
            ));
        }
        if request.handoff_id.is_empty() || request.handoff_id.len() > 64 {
            violations.push(FieldViolation::new(
                "handoff_id",
                "is required (at most 64 bytes)",
            ));
        }
        if request.attempt == 0 {
            violations.push(FieldViolation::new("attempt", "must be 1 or more"));
        }
        let target = parse_target(request.target, &mut violations);
        let mode = match TransferMode::try_from(request.mode) {
            Ok(TransferMode::Unspecified) | Err(_) => {
                violations.push(FieldViolation::new(
                    "mode",
                    "must be warm, blind or attended",
                ));
                TransferMode::Unspecified
            }
            Ok(mode) => mode,
        };
        let deadline = match request.deadline.map(SystemTime::try_from) {
            Some(Ok(deadline)) => Some(deadline),
            _ => {
                violations.push(FieldViolation::new("deadline", "is required"));
                None
            }
        };
        if let Some(envelope) = &request.envelope {
            violations.extend(oversize_context(envelope, info));
        }
        let callback = parse_callback(request.callback, &mut violations);
        let (Some(target), Some(deadline)) = (target, deadline) else {
            return Err(invalid_argument(&violations));
        };
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        check_served(&target, info)?;
        if callback.is_some() && !info.callbacks {
            return Err(with_reason(
                Code::Unimplemented,
                "CALLBACKS_UNSUPPORTED",
                format!("connector {} does not call customers back", info.name),
            ));
        }
        if !info.transfer_modes.contains(&mode) {
            return Err(with_reason(
                Code::Unimplemented,
                "TRANSFER_MODE_UNSUPPORTED",
                format!(
                    "connector {} does not support {mode:?} transfers",
                    info.name
                ),
            ));
        }
        Ok(Self {
            tenant: request.tenant,
            handoff_id: request.handoff_id,
            attempt: request.attempt,
            target,
            mode,
            envelope: request.envelope.unwrap_or_default(),
            deadline,
            remembered: None,
            disclosure: request.disclosure,
            callback,
        })
    }
}

/// The concrete target of a request; a missing, empty or route target is
/// a violation naming `target` (or `target.route`).
pub(crate) fn parse_target(
    target: Option<Target>,
    violations: &mut Vec<FieldViolation>,
) -> Option<TransferTarget> {
    match target.and_then(|t| t.kind) {
        Some(target::Kind::Queue(queue)) if !queue.name.is_empty() => Some(TransferTarget::Queue {
            name: queue.name,
            skills: queue.skills,
        }),
        Some(target::Kind::PhoneNumber(number)) if !number.is_empty() => {
            Some(TransferTarget::PhoneNumber(number))
        }
        Some(target::Kind::SipUri(uri)) if !uri.is_empty() => Some(TransferTarget::SipUri(uri)),
        Some(target::Kind::Route(_)) => {
            violations.push(FieldViolation::new(
                "target.route",
                "routes are resolved by the control service",
            ));
            None
        }
        _ => {
            violations.push(FieldViolation::new(
                "target",
                "must name a queue, phone_number or sip_uri",
            ));
            None
        }
    }
}

/// UNIMPLEMENTED (`TARGET_KIND_UNSUPPORTED`) for a target kind the
/// connector does not advertise.
pub(crate) fn check_served(target: &TransferTarget, info: &ConnectorInfo) -> Result<(), Status> {
    if info.target_kinds.contains(&target.kind()) {
        return Ok(());
    }
    Err(with_reason(
        Code::Unimplemented,
        "TARGET_KIND_UNSUPPORTED",
        format!(
            "connector {} does not serve {:?} targets",
            info.name,
            target.kind()
        ),
    ))
}

/// Context larger than the connector advertised it carries: refused here,
/// so that no connector silently drops or truncates what it cannot carry
/// (the control service fits the context to the advertised limits).
fn oversize_context(envelope: &ContextEnvelope, info: &ConnectorInfo) -> Vec<FieldViolation> {
    let limit_of = |mechanism: i32| {
        info.context
            .iter()
            .find(|(m, max)| *m as i32 == mechanism && *max > 0)
            .map(|(_, max)| *max as usize)
    };
    let mut violations = Vec::new();
    if let (Some(context), Some(limit)) = (
        &envelope.context,
        limit_of(ContextMechanism::Structured as i32),
    ) && context.encoded_len() > limit
    {
        violations.push(FieldViolation::new(
            "envelope.context",
            format!(
                "is {} bytes encoded; this connector carries at most {limit}",
                context.encoded_len()
            ),
        ));
    }
    for (index, payload) in envelope.payloads.iter().enumerate() {
        if let Some(limit) = limit_of(payload.mechanism)
            && payload.content.len() > limit
        {
            violations.push(FieldViolation::new(
                format!("envelope.payloads[{index}].content"),
                format!(
                    "is {} bytes; this connector carries at most {limit} for this mechanism",
                    payload.content.len()
                ),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use baton_proto::connector::v1::{DisclosedField, Disclosure, DisclosureForm};
    use baton_proto::types::v1::{QueueTarget, Target};

    use super::*;

    fn request(disclosure: Option<Disclosure>) -> StartTransferRequest {
        StartTransferRequest {
            tenant: "acme".into(),
            handoff_id: "h1".into(),
            attempt: 1,
            target: Some(Target {
                kind: Some(target::Kind::Queue(QueueTarget {
                    name: "q".into(),
                    skills: vec![],
                })),
            }),
            mode: TransferMode::Warm as i32,
            envelope: Some(ContextEnvelope::default()),
            deadline: Some(SystemTime::now().into()),
            disclosure,
            callback: None,
        }
    }

    #[test]
    fn the_disclosure_reaches_the_connector_as_sent_and_its_absence_is_no_error() {
        let info = ConnectorInfo::new("q", "0")
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm]);
        let disclosure = Disclosure {
            fields: vec![DisclosedField {
                field: "summary".into(),
                form: DisclosureForm::Redacted as i32,
            }],
            route: "vip".into(),
            masked: [("card".to_owned(), 1)].into(),
        };
        let transfer =
            Transfer::from_request(request(Some(disclosure.clone())), &info).expect("valid");
        assert_eq!(transfer.disclosure, Some(disclosure));
        let older = Transfer::from_request(request(None), &info).expect("valid without one");
        assert_eq!(older.disclosure, None);
    }

    #[test]
    fn a_callback_is_checked_and_refused_by_a_connector_that_does_not_call_back() {
        let info = ConnectorInfo::new("q", "0")
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm]);
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let with = |callback| StartTransferRequest {
            callback: Some(callback),
            ..request(None)
        };
        let good = baton_proto::types::v1::Callback {
            number: "+15550100123".into(),
            window_start: at(1_900_000_000),
            window_end: at(1_900_003_600),
            consent: true,
        };
        let refused = Transfer::from_request(with(good.clone()), &info).expect_err("no callbacks");
        assert_eq!(refused.code(), tonic::Code::Unimplemented);

        let info = info.callbacks();
        let transfer = Transfer::from_request(with(good.clone()), &info).expect("valid");
        let callback = transfer.callback.expect("the callback");
        assert!(!format!("{callback:?}").contains("5550100123"));
        let opens = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000);
        assert!(!callback.window_open(opens - std::time::Duration::from_secs(1)));
        assert!(callback.window_open(opens));

        let bad = baton_proto::types::v1::Callback {
            number: "5550100".into(),
            consent: false,
            window_start: at(1_900_003_600),
            window_end: at(1_900_000_000),
        };
        let status = Transfer::from_request(with(bad), &info).expect_err("invalid");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        for field in ["callback.number", "callback.consent", "callback.window_end"] {
            assert!(status.message().contains(field), "{}", status.message());
        }
        assert!(!status.message().contains("5550100"), "never quoted");
    }
}
