use super::*;
use crate::config::ControlConfig;
use crate::domain::RequestedTarget;

/// `text` as the control service loads its file.
fn load(text: &str) -> Result<ControlConfig, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    std::fs::write(&path, text).expect("write");
    baton_service_kit::config::load(Some(&path), "BATON_DATA_POLICY_TEST")
        .map_err(|e| e.to_string())
}

fn config(toml: &str) -> ControlConfig {
    let base = r#"
[connectors.queue]
endpoint = "http://127.0.0.1:1"
[connectors.webhook]
endpoint = "http://127.0.0.1:2"
[[routes]]
name = "vip"
targets = [{ connector = "queue", queue = "vip" }]
"#;
    load(&format!("{base}{toml}")).expect("config")
}

#[test]
fn without_configuration_free_text_is_redacted_and_sensitive_entities_never_clear() {
    let policy = config("").checked_data_policy().expect("policy");
    let rules = policy.rules("acme", None, "webhook");
    assert_eq!(rules, Rules::BUILT_IN);
    assert_eq!(rules.entity("account", true), Form::Redacted);
    assert_eq!(rules.entity("string", false), Form::Clear);
}

#[test]
fn layers_apply_connector_route_then_tenant() {
    let policy = config(
        r#"
[data_policy.default]
transcript = "reference"
entity_types = { card = "reference" }
[data_policy.connectors.queue]
sensitive_entities = "clear"
summary = "clear"
[data_policy.routes.vip.default]
summary = "reference"
[data_policy.routes.vip.connectors.queue]
transcript = "clear"
[tenants.acme.data_policy.connectors.queue]
sensitive_entities = "redacted"
"#,
    )
    .checked_data_policy()
    .expect("policy");
    let queue = policy.rules("globex", None, "queue");
    assert_eq!(
        (queue.summary, queue.transcript, queue.sensitive_entities),
        (Form::Clear, Form::Reference, Form::Clear)
    );
    assert_eq!(queue.entity("card", true), Form::Reference, "by type first");
    assert_eq!(queue.entity("account", true), Form::Clear);
    let webhook = policy.rules("globex", None, "webhook");
    assert_eq!(
        (webhook.summary, webhook.sensitive_entities),
        (Form::Redacted, Form::Redacted)
    );
    let vip = policy.rules("globex", Some("vip"), "queue");
    assert_eq!(
        (vip.summary, vip.transcript),
        (Form::Reference, Form::Clear)
    );
    let vip_webhook = policy.rules("globex", Some("vip"), "webhook");
    assert_eq!(
        (vip_webhook.summary, vip_webhook.transcript),
        (Form::Reference, Form::Reference)
    );
    let acme = policy.rules("acme", None, "queue");
    assert_eq!(
        (acme.summary, acme.sensitive_entities),
        (Form::Clear, Form::Redacted),
        "the tenant's layer over the shared ones"
    );
}

/// A handoff of `tenant` to `requested`, with `intent`.
fn handoff(tenant: &str, requested: RequestedTarget, intent: &str) -> Handoff {
    use baton_proto::types::v1 as pb;
    let mut handoff = crate::http::sample_handoff();
    handoff.tenant = tenant.into();
    handoff.requested_target = requested;
    handoff.context = crate::convert::context::encode_context(&pb::HandoffContext {
        intent: Some(pb::Intent {
            name: intent.into(),
            confidence: 0.9,
        }),
        ..Default::default()
    });
    handoff
}

#[test]
fn the_route_picked_for_a_handoff_that_names_none_gives_its_rules() {
    let policy = config(
        r#"
[[routes]]
name = "billing"
intents = ["billing.*"]
targets = [{ connector = "webhook", queue = "billing" }]
[data_policy.routes.billing.connectors.webhook]
summary = "clear"
"#,
    )
    .checked_data_policy()
    .expect("policy");
    let queue = |name: &str| {
        RequestedTarget::Concrete(crate::domain::ConcreteTarget::Queue {
            name: name.into(),
            skills: vec![],
        })
    };
    let picked = handoff("acme", queue("desk"), "billing.dispute");
    assert_eq!(policy.route_of(&picked).as_deref(), Some("billing"));
    let rules = policy.rules("acme", policy.route_of(&picked).as_deref(), "webhook");
    assert_eq!(rules.summary, Form::Clear, "the picked route's rules");
    let named = handoff("acme", RequestedTarget::Route("vip".into()), "billing.x");
    assert_eq!(
        policy.route_of(&named).as_deref(),
        Some("vip"),
        "named first"
    );
    let none = handoff("acme", queue("desk"), "shipping.late");
    assert_eq!(policy.route_of(&none), None);
    assert_eq!(
        policy.rules("acme", None, "webhook").summary,
        Form::Redacted
    );
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            "[data_policy.connectors.twilio]\nsummary = \"clear\"\n",
            "data_policy.connectors.twilio: no connector named \"twilio\" is configured",
        ),
        (
            "[data_policy.routes.gold.default]\nsummary = \"clear\"\n",
            "data_policy.routes.gold: no route named \"gold\" is configured",
        ),
        (
            "[data_policy.routes.vip.connectors.sip]\nsummary = \"clear\"\n",
            "data_policy.routes.vip.connectors.sip: no connector named \"sip\" is configured",
        ),
        (
            "[data_policy.default]\nentity_types = { \"\" = \"clear\" }\n",
            "data_policy.default.entity_types: \"\" is not an entity type (1 to 128 bytes)",
        ),
        (
            "[data_policy.default]\ncaller_number = \"reference\"\n",
            "data_policy.default.caller_number: no page serves the caller's number, so it has no reference: clear, redacted or withheld",
        ),
        (
            "[data_policy.connectors.queue]\ntranscript = \"withheld\"\n",
            "data_policy.connectors.queue.transcript: the context URL serves every field of the context, so none is withheld: use reference",
        ),
        (
            "[data_policy.default]\nentity_types = { card = \"withheld\" }\n",
            "data_policy.default.entity_types.card: the context URL serves every field of the context, so none is withheld: use reference",
        ),
        (
            "[tenants.acme.data_policy.connectors.nope]\nsummary = \"clear\"\n",
            "tenants.acme.data_policy.connectors.nope: no connector named \"nope\" is configured",
        ),
    ];
    for (toml, expected) in cases {
        assert_eq!(
            config(toml).checked_data_policy().expect_err(toml),
            expected
        );
    }
    let unknown =
        load("[data_policy.default]\nsummary = \"masked\"\n").expect_err("an unknown form");
    assert!(
        unknown.contains("masked") && unknown.contains("data_policy.default.summary"),
        "{unknown}"
    );
    let misspelt = load("[data_policy.default]\nsumary = \"clear\"\n").expect_err("an unknown key");
    assert!(misspelt.contains("sumary"), "{misspelt}");
}
