//! What the control service disclosed of each waiting handoff's context to
//! this queue (`StartTransferRequest.disclosure`: each field and the form
//! it went in, the route whose data policy applied, what was masked), kept
//! with the handoff for the supervisor's view. Never a value: the record
//! names fields and forms only, so showing it reveals nothing the
//! supervisor could not already see.
//!
//! Supervisors only: an agent sees what reached them on the screen pop;
//! the record is for whoever oversees what crosses to the desk. Kept in
//! memory, bounded: a handoff re-attached after a restart brings its
//! record again with its transfer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use baton_connector_sdk::Transfer;
use baton_proto::connector::v1::DisclosureForm;
use serde::Serialize;

/// How many handoffs' records are kept; the oldest go first. A handoff
/// long gone from the queue needs no record on the view.
pub const KEPT: usize = 4096;

/// One handoff's disclosure, as the supervisor's view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffDisclosure {
    pub tenant: String,
    pub handoff_id: String,
    /// The attempt the record is of: a handoff that came back to this
    /// queue shows its latest.
    pub attempt: u32,
    /// The route whose rules applied; empty when none did.
    pub route: String,
    /// Each field and its form: `clear`, `redacted`, `reference` or
    /// `withheld`, sorted by field.
    pub fields: Vec<DisclosedField>,
    /// Values masked in the redacted fields, by kind.
    pub masked: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisclosedField {
    pub field: String,
    pub form: &'static str,
}

impl HandoffDisclosure {
    /// The record `transfer` came with; `None` from a control service that
    /// sends none.
    pub fn of(transfer: &Transfer) -> Option<Self> {
        let disclosure = transfer.disclosure.as_ref()?;
        let mut fields: Vec<DisclosedField> = disclosure
            .fields
            .iter()
            .map(|f| DisclosedField {
                field: f.field.clone(),
                form: form_name(f.form()),
            })
            .collect();
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        Some(Self {
            tenant: transfer.tenant.clone(),
            handoff_id: transfer.handoff_id.clone(),
            attempt: transfer.attempt,
            route: disclosure.route.clone(),
            fields,
            masked: disclosure.masked.clone().into_iter().collect(),
        })
    }
}

fn form_name(form: DisclosureForm) -> &'static str {
    match form {
        DisclosureForm::Clear => "clear",
        DisclosureForm::Redacted => "redacted",
        DisclosureForm::Reference => "reference",
        DisclosureForm::Withheld => "withheld",
        DisclosureForm::Unspecified => "unspecified",
    }
}

/// The records of the latest handoffs, by tenant and handoff id.
#[derive(Debug, Default)]
pub struct Disclosures {
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    by_handoff: BTreeMap<(String, String), HandoffDisclosure>,
    /// Insertion order, for the bound.
    order: VecDeque<(String, String)>,
}

impl Disclosures {
    /// Keeps the record `transfer` came with, over an earlier attempt's.
    pub fn keep(&self, transfer: &Transfer) {
        let Some(record) = HandoffDisclosure::of(transfer) else {
            return;
        };
        let key = (record.tenant.clone(), record.handoff_id.clone());
        let mut kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if kept.by_handoff.insert(key.clone(), record).is_none() {
            kept.order.push_back(key);
        }
        while kept.order.len() > KEPT {
            if let Some(oldest) = kept.order.pop_front() {
                kept.by_handoff.remove(&oldest);
            }
        }
    }

    /// The records of `handoffs` (tenant, handoff id), in that order; a
    /// handoff without one is left out.
    pub fn of<'a>(
        &self,
        handoffs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<HandoffDisclosure> {
        let kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        handoffs
            .into_iter()
            .filter_map(|(tenant, id)| {
                kept.by_handoff
                    .get(&(tenant.to_owned(), id.to_owned()))
                    .cloned()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use baton_connector_sdk::TransferTarget;
    use baton_proto::connector::v1::{ContextEnvelope, Disclosure};
    use baton_proto::types::v1::TransferMode;

    use super::*;

    fn transfer(tenant: &str, id: &str, attempt: u32, disclosure: Option<Disclosure>) -> Transfer {
        Transfer {
            tenant: tenant.into(),
            handoff_id: id.into(),
            attempt,
            target: TransferTarget::Queue {
                name: "support".into(),
                skills: vec![],
            },
            mode: TransferMode::Warm,
            envelope: ContextEnvelope::default(),
            deadline: SystemTime::now(),
            remembered: None,
            disclosure,
            callback: None,
        }
    }

    fn disclosure(route: &str) -> Disclosure {
        let field =
            |field: &str, form: DisclosureForm| baton_proto::connector::v1::DisclosedField {
                field: field.into(),
                form: form as i32,
            };
        Disclosure {
            fields: vec![
                field("transcript", DisclosureForm::Reference),
                field("summary", DisclosureForm::Redacted),
                field("conversation.call.caller_number", DisclosureForm::Withheld),
            ],
            route: route.into(),
            masked: [("card".to_owned(), 1)].into(),
        }
    }

    #[test]
    fn each_tenants_handoff_keeps_its_latest_record_with_forms_and_no_value() {
        let disclosures = Disclosures::default();
        disclosures.keep(&transfer("acme", "h1", 1, Some(disclosure("vip"))));
        disclosures.keep(&transfer("globex", "h1", 1, Some(disclosure(""))));
        disclosures.keep(&transfer("acme", "h2", 1, None));
        disclosures.keep(&transfer("acme", "h1", 2, Some(disclosure("gold"))));

        let acme = disclosures.of([("acme", "h1"), ("acme", "h2")]);
        assert_eq!(
            acme.len(),
            1,
            "no record from a control service that sends none"
        );
        assert_eq!((acme[0].attempt, acme[0].route.as_str()), (2, "gold"));
        let forms: Vec<(&str, &str)> = acme[0]
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.form))
            .collect();
        assert_eq!(
            forms,
            [
                ("conversation.call.caller_number", "withheld"),
                ("summary", "redacted"),
                ("transcript", "reference"),
            ]
        );
        assert_eq!(acme[0].masked["card"], 1);
        let globex = disclosures.of([("globex", "h1")]);
        assert_eq!(globex[0].tenant, "globex", "tenants kept apart");
    }

    #[test]
    fn the_oldest_records_go_beyond_the_bound() {
        let disclosures = Disclosures::default();
        for n in 0..=KEPT {
            disclosures.keep(&transfer("acme", &format!("h{n}"), 1, Some(disclosure(""))));
        }
        assert!(disclosures.of([("acme", "h0")]).is_empty());
        assert_eq!(disclosures.of([("acme", "h1")]).len(), 1);
        assert_eq!(disclosures.of([("acme", &*format!("h{KEPT}"))]).len(), 1);
    }
}
