//! The forms applied to a context, byte for byte where they matter.

use baton_proto::types::v1 as pb;

use super::*;
use crate::convert::context::encode_conversation;
use crate::disclosure::Record;
use crate::domain::{ConcreteTarget, ContextCapability, ContextMechanism};
use serde_json::{Value, json};

const CARD: &str = "4111 1111 1111 1111";
const ACCOUNT: &str = "ACC-99887766";
const CALLER: &str = "+14155550123";

fn conversation() -> pb::Conversation {
    pb::Conversation {
        call: Some(pb::CallReference {
            caller_number: CALLER.into(),
            sip_call_id: "call-1@gw".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn sample() -> pb::HandoffContext {
    pb::HandoffContext {
        summary: format!("Double charge on card {CARD}, mail jane@example.com"),
        agent_notes: "call back on +44 20 7946 0018".into(),
        entities: vec![
            pb::Entity {
                name: "account_number".into(),
                value: ACCOUNT.into(),
                r#type: "account".into(),
                sensitive: true,
            },
            pb::Entity {
                name: "issue_type".into(),
                value: "double charge".into(),
                r#type: "string".into(),
                sensitive: false,
            },
        ],
        transcript: vec![pb::Turn {
            speaker: 1,
            text: format!("my card is {CARD} and I was born on 1984-03-15"),
            at: None,
        }],
        attempts: vec![pb::Attempt {
            action: "looked up jane@example.com".into(),
            outcome: 2,
            detail: "two charges".into(),
        }],
        reason: Some(pb::EscalationReason {
            kind: 3,
            detail: "refund over the limit".into(),
        }),
        ..Default::default()
    }
}

fn apply(rules: &Rules) -> (pb::HandoffContext, Disclosed) {
    let disclosed = disclose(
        &encode_context(&sample()),
        &encode_conversation(&conversation()),
        rules,
    );
    (decode_context(&disclosed.context), disclosed)
}

#[test]
fn the_built_in_policy_redacts_free_text_and_masks_sensitive_entities() {
    let (context, disclosed) = apply(&Rules::BUILT_IN);
    assert_eq!(
        context.summary,
        "Double charge on card [card], mail [email]"
    );
    assert_eq!(
        context.transcript[0].text,
        "my card is [card] and I was born on [date_of_birth]"
    );
    assert_eq!(context.agent_notes, "call back on [phone]");
    assert_eq!(context.attempts[0].action, "looked up [email]");
    assert_eq!(context.entities[0].value, MASKED_ENTITY);
    assert!(context.entities[0].sensitive, "still masked on screen pops");
    assert_eq!(context.entities[1].value, "double charge", "clear");
    assert!(disclosed.withheld.is_empty());
    assert_eq!(disclosed.fields["entities.account_number"], Form::Redacted);
    assert_eq!(disclosed.fields["entities.issue_type"], Form::Clear);
    assert_eq!(disclosed.masked[&PiiKind::Card], 2);
    let encoded = format!("{context:?}");
    assert!(!encoded.contains("4111") && !encoded.contains(ACCOUNT));
}

#[test]
fn clear_fields_arrive_unchanged_and_reference_fields_not_at_all() {
    let mut rules = Rules::BUILT_IN;
    rules.summary = Form::Clear;
    rules.sensitive_entities = Form::Clear;
    rules.transcript = Form::Reference;
    rules.agent_notes = Form::Reference;
    rules.entity_types.insert("string".into(), Form::Reference);
    let (context, disclosed) = apply(&rules);
    assert_eq!(context.summary, sample().summary, "byte for byte");
    assert_eq!(context.entities.len(), 1);
    assert_eq!(context.entities[0].value, ACCOUNT);
    assert!(context.transcript.is_empty());
    assert!(context.agent_notes.is_empty());
    assert_eq!(
        disclosed.withheld,
        ["agent_notes", "transcript", "entities.issue_type"]
    );
}

#[test]
fn the_audit_detail_names_forms_never_values() {
    let (_, disclosed) = apply(&Rules::BUILT_IN);
    let webhook = [ContextCapability {
        mechanism: ContextMechanism::Webhook,
        max_bytes: 0,
    }];
    let target = ConcreteTarget::Queue {
        name: "support".into(),
        skills: vec![],
    };
    let record = Record::of(&disclosed, Some("vip".into()), &webhook);
    let detail = record.audit_detail(2, &target, &webhook);
    let parsed: Value = serde_json::from_str(&detail).expect("json");
    assert_eq!(parsed["attempt"], 2);
    assert_eq!(parsed["target"], "queue:support");
    assert_eq!(parsed["mechanisms"], json!(["webhook"]));
    assert_eq!(parsed["route"], "vip");
    assert_eq!(parsed["fields"]["conversation.call.caller_number"], "clear");
    assert_eq!(parsed["fields"]["summary"], "redacted");
    assert_eq!(parsed["fields"]["entities.issue_type"], "clear");
    assert_eq!(parsed["masked"]["card"], 2);
    assert!(!detail.contains("4111") && !detail.contains("jane"));

    // SIP signalling carries no field: all of them by reference only.
    let sip = [ContextCapability {
        mechanism: ContextMechanism::SipHeaders,
        max_bytes: 1024,
    }];
    let record = Record::of(&disclosed, None, &sip);
    let parsed: Value = serde_json::from_str(&record.audit_detail(1, &target, &sip)).expect("json");
    assert_eq!(parsed["fields"]["summary"], "reference");
    assert_eq!(parsed["fields"]["entities.issue_type"], "reference");
    assert_eq!(parsed["route"], Value::Null);
    assert!(record.masked.is_empty(), "nothing masked went");
    assert_eq!(
        record.fields[CALLER_NUMBER],
        Form::Clear,
        "the conversation travels whatever the mechanisms"
    );
}

/// Whatever mechanism a connector has (SIP headers and User-to-User for
/// the SIP connector, task attributes for Twilio and Amazon Connect, the
/// webhook payload, the structured context for the queue), nothing the
/// built-in policy redacts reaches it.
#[test]
fn no_mechanism_carries_what_the_built_in_policy_redacts() {
    use crate::convert::envelope::build_envelope;
    use crate::domain::ContextReference;

    let (_, disclosed) = apply(&Rules::BUILT_IN);
    let mechanisms = [
        ContextMechanism::SipUserToUser,
        ContextMechanism::SipHeaders,
        ContextMechanism::ScreenPopUrl,
        ContextMechanism::TaskAttributes,
        ContextMechanism::Webhook,
        ContextMechanism::Structured,
    ];
    let capabilities: Vec<_> = mechanisms
        .iter()
        .map(|&mechanism| ContextCapability {
            mechanism,
            max_bytes: 0,
        })
        .collect();
    let reference = ContextReference {
        handoff_id: "h1".into(),
        token: "t".into(),
        context_url: "http://127.0.0.1/v1/handoffs/h1/context?token=t".into(),
        screen_pop_url: "http://127.0.0.1/v1/handoffs/h1/screen-pop?token=t".into(),
    };
    let envelope = build_envelope(
        &reference,
        &encode_conversation(&pb::Conversation::default()),
        &disclosed.context,
        &disclosed.withheld,
        &capabilities,
    );
    let everything = format!("{envelope:?}");
    for value in [
        CARD,
        "4111111111111111",
        "jane@example.com",
        "7946 0018",
        "1984-03-15",
        ACCOUNT,
    ] {
        assert!(!everything.contains(value), "{value} in {everything}");
    }
    assert_eq!(envelope.payloads.len(), 5);
    assert!(
        everything.contains("[card]"),
        "the redacted text still goes"
    );
}

#[test]
fn the_callers_number_goes_clear_masked_whole_or_not_at_all() {
    let caller = |disclosed: &Disclosed| {
        crate::convert::context::conversation(&disclosed.conversation)
            .call
            .expect("call")
    };
    let (_, clear) = apply(&Rules::BUILT_IN);
    assert_eq!(caller(&clear).caller_number, CALLER, "byte for byte");
    assert_eq!(clear.fields[CALLER_NUMBER], Form::Clear);

    let mut rules = Rules::BUILT_IN;
    rules.caller_number = Form::Redacted;
    let (_, redacted) = apply(&rules);
    assert_eq!(caller(&redacted).caller_number, "[phone]");
    assert_eq!(
        caller(&redacted).sip_call_id,
        "call-1@gw",
        "the call untouched"
    );
    assert_eq!(redacted.fields[CALLER_NUMBER], Form::Redacted);
    assert!(!redacted.withheld.contains(&CALLER_NUMBER.to_owned()));

    rules.caller_number = Form::Withheld;
    let (_, withheld) = apply(&rules);
    assert_eq!(caller(&withheld).caller_number, "");
    assert_eq!(withheld.fields[CALLER_NUMBER], Form::Withheld);
    assert!(
        withheld.withheld.contains(&CALLER_NUMBER.to_owned()),
        "named omitted"
    );

    let without = disclose(
        &encode_context(&sample()),
        &encode_conversation(&pb::Conversation::default()),
        &rules,
    );
    assert!(
        !without.fields.contains_key(CALLER_NUMBER),
        "no number, no field"
    );
}
