//! The data policy (issue 20) at the far end of the SIP and queue
//! connectors, through the real binaries: what a phone (sipp) received in
//! its INVITE and what the queue's desktop serves a signed-in agent,
//! against the policy; and the disclosure the queue shows its supervisor.
//! (Webhook and scripted connectors: `data_policy.rs`; Twilio and Amazon
//! Connect against their contract servers: `connectors/twilio/tests/
//! data_policy.rs`, `connectors/amazon-connect/tests/data_policy.rs`.)
//!
//! Each stack has a route picked by intent, never named by the handoff:
//! its rules apply because the control service picked it.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use baton_connector_queue::accounts::{Account, Role, add_account};
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{AuditRecord, CreateHandoffRequest};
use baton_proto::types::v1 as pb;
use baton_tests::desk::{self, Desk};
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use baton_tests::start_control;
use serde_json::{Value, json};

const SUMMARY: &str = "Charged twice on card 4111 1111 1111 1111; reply to jane.doe@example.com";
const TURN: &str = "Call me on +44 20 7946 0018, I was born on 1984-03-15";
const CALLER: &str = "+14155550123";
const ACCOUNT: &str = "ACC-99887766";
/// What the built-in policy masks in SUMMARY and TURN.
const PERSONAL: [&str; 5] = [
    "4111 1111 1111 1111",
    "4111111111111111",
    "jane.doe@example.com",
    "+44 20 7946 0018",
    "1984-03-15",
];
/// Every wait on a far end is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

/// The sample escalation with personal data in its summary and first turn,
/// `intent`, to `target`.
fn request(request_id: &str, intent: &str, target: pb::target::Kind) -> CreateHandoffRequest {
    let mut request = baton_tests::sample_request(request_id, target);
    let context = request.context.as_mut().expect("the sample has a context");
    context.summary = SUMMARY.into();
    context.transcript[0].text = TURN.into();
    context.intent.as_mut().expect("an intent").name = intent.into();
    request.timeout = Some(prost_types::Duration {
        seconds: 120,
        nanos: 0,
    });
    request
}

/// The audit detail of `handoff_id`'s disclosure among `records`.
fn detail_of(records: &[AuditRecord], handoff_id: &str) -> Value {
    let record = records
        .iter()
        .find(|r| r.handoff_id == handoff_id)
        .unwrap_or_else(|| panic!("no disclosure of {handoff_id}: {records:?}"));
    serde_json::from_str(&record.detail).expect("JSON detail")
}

/// The INVITE sipp logged receiving, from its request line to the body.
fn received_invite(sipp: &Sipp) -> String {
    let messages = sipp.messages();
    messages
        .split("INVITE sip:")
        .nth(1)
        .map(|rest| {
            let head = rest.replace("\r\n", "\n");
            let head = head.split("\n\n").next().unwrap_or_default();
            format!("INVITE sip:{head}")
        })
        .unwrap_or_else(|| panic!("sipp logged no INVITE: {messages}"))
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

#[tokio::test]
async fn a_phone_receives_in_its_invite_only_what_the_policy_of_the_route_used_lets_go() {
    let plain = Sipp::play(&sip_connector_scenario("agent_answers_any"))
        .timeout(WAIT)
        .start();
    let private = Sipp::play(&sip_connector_scenario("agent_answers_any"))
        .timeout(WAIT)
        .start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The connector may put the caller's number in P-Asserted-Identity:
    // whether it has one to put is the data policy's word.
    let headers = "[headers]\nsend_sensitive = [\"caller_number\"]\n";
    let connector = baton_tests::sip::start_loopback_connector(dir.path(), headers).await;
    let rest = format!(
        r#"
[[routes]]
name = "private"
intents = ["billing.*"]
targets = [{{ connector = "sip", sip_uri = "{private}" }}]

[data_policy.routes.private.connectors.sip]
caller_number = "withheld"
"#,
        private = private.uri("agent"),
    );
    let control = baton_tests::sip::start_control(dir.path(), &connector, &rest).await;
    let mut client = baton_tests::handoff_client(&control).await;

    let plain_id = baton_tests::create_handoff(
        &mut client,
        request(
            "sip-plain",
            "account.billing",
            pb::target::Kind::SipUri(plain.uri("agent")),
        ),
    )
    .await;
    let private_id = baton_tests::create_handoff(
        &mut client,
        request(
            "sip-private",
            "billing.dispute",
            pb::target::Kind::SipUri(private.uri("agent")),
        ),
    )
    .await;
    for id in [&plain_id, &private_id] {
        baton_tests::wait_until_ended(&mut client, id, 1200).await;
    }
    let (plain_invite, private_invite) = (received_invite(&plain), received_invite(&private));
    plain.assert_passed().await;
    private.assert_passed().await;

    // Signalling carries the token and labels, never the free text.
    for invite in [&plain_invite, &private_invite] {
        for value in PERSONAL
            .iter()
            .chain(&[SUMMARY, TURN, ACCOUNT, "Refund likely"])
        {
            assert!(!invite.contains(value), "{value} in the INVITE: {invite}");
        }
        assert!(header(invite, "User-to-User").is_some(), "{invite}");
        assert_eq!(header(invite, "X-Baton-Priority"), Some("3"), "{invite}");
    }
    assert_eq!(
        header(&plain_invite, "X-Baton-Intent"),
        Some("account.billing")
    );
    assert_eq!(
        header(&private_invite, "X-Baton-Intent"),
        Some("billing.dispute")
    );
    // The caller's number: clear by default, byte for byte; withheld by
    // the route the control service picked, nowhere in the INVITE.
    assert_eq!(
        header(&plain_invite, "P-Asserted-Identity"),
        Some(format!("<tel:{CALLER}>").as_str()),
        "{plain_invite}"
    );
    assert_eq!(header(&private_invite, "P-Asserted-Identity"), None);
    assert!(!private_invite.contains(CALLER), "{private_invite}");

    // The audit rows: no field of the context beyond the reference, the
    // caller's number in its form, and the route picked.
    let records = baton_tests::disclosures(&mut client, "sip").await;
    let plain = detail_of(&records, &plain_id);
    assert_eq!(plain["route"], Value::Null);
    assert_eq!(plain["fields"]["summary"], "reference");
    assert_eq!(plain["fields"]["transcript"], "reference");
    assert_eq!(plain["fields"]["conversation.call.caller_number"], "clear");
    let private = detail_of(&records, &private_id);
    assert_eq!(private["route"], "private");
    assert_eq!(
        private["fields"]["conversation.call.caller_number"],
        "withheld"
    );
}

fn add_desk_accounts(file: &Path) -> anyhow::Result<()> {
    let account = |name: &str, role| Account {
        name: name.into(),
        display_name: None,
        role,
        tenants: vec!["default".into()],
        skills: vec![],
        contact: if role == Role::Agent {
            format!("sip:{name}@127.0.0.1")
        } else {
            String::new()
        },
        password: String::new(),
    };
    add_account(file, account("ann", Role::Agent), "ann-pw").map_err(anyhow::Error::msg)?;
    add_account(file, account("sue", Role::Supervisor), "sue-pw").map_err(anyhow::Error::msg)
}

#[tokio::test]
async fn the_desktop_serves_an_agent_what_the_policy_lets_go_and_shows_the_supervisor_the_disclosure()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let accounts = dir.path().join("desk-accounts.toml");
    add_desk_accounts(&accounts)?;
    let queue =
        desk::start_queue(dir.path(), &accounts, "[[queues]]\nname = \"billing\"\n").await?;
    // The route `billing` is picked by intent; its rules for the queue
    // send the summary in clear. The queue's own rules keep the transcript
    // by reference and withhold the caller's number.
    let sections = format!(
        r#"
[connectors.queue]
endpoint = "{endpoint}"

[default_connectors]
queue = "queue"

[[routes]]
name = "billing"
intents = ["billing.*"]
targets = [{{ connector = "queue", queue = "billing" }}]

[data_policy.connectors.queue]
transcript = "reference"
caller_number = "withheld"

[data_policy.routes.billing.connectors.queue]
summary = "clear"
"#,
        endpoint = queue.endpoint("grpc"),
    );
    let control = start_control(dir.path(), &sections, &[]).await?;
    let mut client = HandoffServiceClient::connect(control.endpoint("grpc")).await?;
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    // The queue takes a handoff only while someone with its skills (the
    // queue `billing` asks for none) could answer it.
    let base = desk::desktop_base(&queue);
    let ann = Desk::sign_in(&base, "ann", "ann-pw").await?;
    ann.available().await?;
    let id =
        baton_tests::create_handoff(&mut client, request("desk-1", "billing.dispute", support))
            .await;
    let view = ann
        .view_until("/api/agent/events", |v| {
            v["offer"]["handoff_id"] == id.as_str()
        })
        .await?;
    let pop = &view["offer"];
    let raw = pop.to_string();
    // The route's rules: the summary byte for byte.
    assert_eq!(pop["summary"], SUMMARY);
    // The queue's rules: the transcript only by reference, named omitted.
    assert_eq!(pop["transcript"], json!([]), "{pop}");
    let omitted = pop["omitted_fields"].as_array().context("omitted fields")?;
    assert!(omitted.contains(&json!("transcript")), "{pop}");
    for value in [TURN, "+44 20 7946 0018", "1984-03-15", CALLER, ACCOUNT] {
        assert!(!raw.contains(value), "{value} reached the agent: {raw}");
    }
    assert!(
        view.get("disclosures").is_none(),
        "agents get no disclosure record"
    );

    // The supervisor sees what was disclosed, field by field, no value.
    let sue = Desk::sign_in(&base, "sue", "sue-pw").await?;
    let supervised = sue
        .view_until("/api/supervisor/events", |v| {
            v["disclosures"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["handoff_id"] == id.as_str()))
        })
        .await?;
    let disclosure = supervised["disclosures"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["handoff_id"] == id.as_str()))
        .context("the handoff's disclosure")?;
    assert_eq!(disclosure["route"], "billing");
    // Attempt 1 went to the queue the handoff named, `support`, whose
    // skill nobody signed in has; attempt 2 to the route's queue.
    assert_eq!(disclosure["attempt"], 2);
    let forms: Vec<(String, String)> = disclosure["fields"]
        .as_array()
        .context("fields")?
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap_or_default().to_owned(),
                f["form"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("summary", "clear"),
        ("transcript", "reference"),
        ("conversation.call.caller_number", "withheld"),
        ("entities.account_number", "redacted"),
        ("entities.issue_type", "clear"),
        ("agent_notes", "redacted"),
    ] {
        assert!(
            forms.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not in {forms:?}"
        );
    }
    let text = disclosure.to_string();
    for value in [SUMMARY, TURN, CALLER, ACCOUNT] {
        assert!(!text.contains(value), "a value in the disclosure: {text}");
    }
    // The same record the control service audited for this attempt.
    let audited = detail_of(&baton_tests::disclosures(&mut client, "queue").await, &id);
    for (field, form) in &forms {
        assert_eq!(
            audited["fields"][field],
            form.as_str(),
            "{field}: {audited}"
        );
    }
    assert_eq!(audited["route"], "billing");
    Ok(())
}
