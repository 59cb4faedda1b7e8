//! A disclosure record in its `baton.connector.v1` form, as the connector
//! is told what it got (StartTransferRequest.disclosure): each field and its form, the route, what was
//! masked. Never a value.

use baton_proto::connector::v1 as wire;

use crate::disclosure::{Form, Record};

pub fn disclosure(record: &Record) -> wire::Disclosure {
    wire::Disclosure {
        fields: record
            .fields
            .iter()
            .map(|(field, form)| wire::DisclosedField {
                field: field.clone(),
                form: form_of(*form) as i32,
            })
            .collect(),
        route: record.route.clone().unwrap_or_default(),
        masked: record
            .masked
            .iter()
            .map(|(kind, count)| {
                (
                    kind.name().to_owned(),
                    u32::try_from(*count).unwrap_or(u32::MAX),
                )
            })
            .collect(),
    }
}

fn form_of(form: Form) -> wire::DisclosureForm {
    match form {
        Form::Clear => wire::DisclosureForm::Clear,
        Form::Redacted => wire::DisclosureForm::Redacted,
        Form::Reference => wire::DisclosureForm::Reference,
        Form::Withheld => wire::DisclosureForm::Withheld,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use baton_redaction::PiiKind;

    use super::*;

    #[test]
    fn every_field_keeps_its_form_and_the_route_and_counts_go_along() {
        let record = Record {
            fields: BTreeMap::from([
                ("summary".to_owned(), Form::Redacted),
                ("transcript".to_owned(), Form::Reference),
                ("entities.issue_type".to_owned(), Form::Clear),
                ("conversation.call.caller_number".to_owned(), Form::Withheld),
            ]),
            route: Some("vip".into()),
            masked: BTreeMap::from([(PiiKind::Card, 2)]),
        };
        let wire = disclosure(&record);
        let forms: Vec<(&str, wire::DisclosureForm)> = wire
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.form()))
            .collect();
        assert_eq!(
            forms,
            [
                (
                    "conversation.call.caller_number",
                    wire::DisclosureForm::Withheld
                ),
                ("entities.issue_type", wire::DisclosureForm::Clear),
                ("summary", wire::DisclosureForm::Redacted),
                ("transcript", wire::DisclosureForm::Reference),
            ]
        );
        assert_eq!(wire.route, "vip");
        assert_eq!(wire.masked["card"], 2);
        assert_eq!(disclosure(&Record::default()).route, "", "no route");
    }
}
