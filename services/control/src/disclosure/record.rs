//! What one attempt disclosed to its connector: each field and its form,
//! the route whose rules applied and what was masked. The same record goes
//! to the audit log (as the `disclosed` action's detail) and to the
//! connector (`StartTransferRequest.disclosure`, shown to a supervisor).
//! Never a value.

use std::collections::BTreeMap;

use baton_redaction::PiiKind;
use serde_json::{Value, json};

use super::Form;
use super::apply::{CALLER_NUMBER, Disclosed};
use crate::domain::{ConcreteTarget, ContextCapability, ContextMechanism};

/// One attempt's disclosure, as the connector's mechanisms carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Each field the handoff has, by path, and the form it went in.
    pub fields: BTreeMap<String, Form>,
    /// The route whose rules applied, if any.
    pub route: Option<String>,
    /// Values masked in what went, by kind.
    pub masked: BTreeMap<PiiKind, usize>,
}

impl Record {
    /// What `disclosed` puts in front of the human through a connector
    /// with `capabilities`. One whose mechanisms carry no field of the
    /// context (SIP signalling, a screen-pop URL) gets every such field by
    /// reference only; the caller's number travels with the conversation,
    /// whatever the mechanisms, so it keeps its form.
    pub fn of(
        disclosed: &Disclosed,
        route: Option<String>,
        capabilities: &[ContextCapability],
    ) -> Self {
        let carried = carries_fields(capabilities);
        let fields = disclosed
            .fields
            .iter()
            .map(|(name, form)| {
                let form = if carried || name == CALLER_NUMBER {
                    *form
                } else {
                    Form::Reference
                };
                (name.clone(), form)
            })
            .collect();
        let masked = if carried {
            disclosed.masked.clone()
        } else if disclosed.fields.get(CALLER_NUMBER) == Some(&Form::Redacted) {
            BTreeMap::from([(PiiKind::Phone, 1)])
        } else {
            BTreeMap::new()
        };
        Self {
            fields,
            route,
            masked,
        }
    }

    /// The audit record's detail (JSON): the attempt, the target, the
    /// route, the mechanisms, each field's form and what was masked.
    pub fn audit_detail(
        &self,
        attempt: u32,
        target: &ConcreteTarget,
        capabilities: &[ContextCapability],
    ) -> String {
        let fields: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .map(|(name, form)| (name.clone(), json!(form.name())))
            .collect();
        let masked: serde_json::Map<String, Value> = self
            .masked
            .iter()
            .map(|(kind, count)| (kind.name().to_owned(), json!(count)))
            .collect();
        let mechanisms: Vec<&str> = capabilities
            .iter()
            .map(|c| mechanism_name(c.mechanism))
            .collect();
        json!({
            "attempt": attempt,
            "target": target_name(target),
            "route": self.route,
            "mechanisms": mechanisms,
            "fields": fields,
            "masked": masked,
        })
        .to_string()
    }
}

/// Whether a connector with `capabilities` carries any field of the
/// context beyond the reference: the structured context and the platform
/// payloads do; SIP headers, User-to-User and a screen-pop URL carry the
/// token, intent, reason and priority only.
pub fn carries_fields(capabilities: &[ContextCapability]) -> bool {
    capabilities.iter().any(|c| {
        matches!(
            c.mechanism,
            ContextMechanism::Structured
                | ContextMechanism::TaskAttributes
                | ContextMechanism::Webhook
        )
    })
}

fn target_name(target: &ConcreteTarget) -> String {
    match target {
        ConcreteTarget::Queue { name, .. } => format!("queue:{name}"),
        ConcreteTarget::PhoneNumber { number } => format!("phone_number:{number}"),
        ConcreteTarget::SipUri { uri } => format!("sip_uri:{uri}"),
    }
}

fn mechanism_name(mechanism: ContextMechanism) -> &'static str {
    match mechanism {
        ContextMechanism::SipUserToUser => "sip_user_to_user",
        ContextMechanism::SipHeaders => "sip_headers",
        ContextMechanism::ScreenPopUrl => "screen_pop_url",
        ContextMechanism::TaskAttributes => "task_attributes",
        ContextMechanism::Webhook => "webhook",
        ContextMechanism::Structured => "structured",
    }
}
