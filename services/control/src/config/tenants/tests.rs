//! Two tenants with the same route name, a restricted tenant, and the
//! checks a tenant's table gets at load.

use crate::config::{ControlConfig, TenantScopes};
use crate::domain::target::{ConcreteTarget, PlannedTarget, RequestedTarget};

/// Three connectors, a shared `support` route and defaults; `tenants`
/// is appended.
const SHARED: &str = r#"
[connectors.queue]
endpoint = "http://127.0.0.1:50061"
[connectors.sip]
endpoint = "http://127.0.0.1:50062"
[connectors.acme-cc]
endpoint = "http://127.0.0.1:50063"

[default_connectors]
queue = "queue"
sip_uri = "sip"

[[routes]]
name = "support"
queues = ["support"]
[[routes.targets]]
connector = "queue"
queue = "support"
[[routes.targets]]
connector = "sip"
sip_uri = "sip:support@pbx.example.com"

[messages.translations]
en = "Shared: connecting you now."
"#;

const TWO_TENANTS: &str = r#"
[tenants.acme]
connectors = ["acme-cc", "sip"]
[[tenants.acme.routes]]
name = "support"
[[tenants.acme.routes.targets]]
connector = "acme-cc"
queue = "acme-tier1"
[tenants.acme.messages.translations]
en = "Acme: a specialist will take it from here."

[tenants.globex]
connectors = ["queue"]
"#;

fn load(text: &str) -> ControlConfig {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    std::fs::write(&path, text).expect("write");
    baton_service_kit::config::load(Some(&path), "BATON_TENANTS_TEST").expect("loads")
}

fn scopes(tenants: &str) -> Result<TenantScopes, String> {
    load(&format!("{SHARED}{tenants}")).tenant_scopes()
}

fn plan(scopes: &TenantScopes, tenant: &str, target: RequestedTarget) -> Vec<PlannedTarget> {
    scopes
        .routers
        .for_tenant(tenant)
        .plan(&target, "", "en")
        .expect("plan")
}

fn support() -> RequestedTarget {
    RequestedTarget::Route("support".into())
}

fn queue(name: &str) -> ConcreteTarget {
    ConcreteTarget::Queue {
        name: name.into(),
        skills: vec![],
    }
}

#[test]
fn two_tenants_with_the_same_route_name_reach_their_own_targets_and_messages() {
    let scopes = scopes(TWO_TENANTS).expect("checks");

    let acme = plan(&scopes, "acme", support());
    assert_eq!(
        acme,
        [PlannedTarget {
            connector: "acme-cc".into(),
            target: queue("acme-tier1"),
        }]
    );
    // A tenant that is not listed uses the shared route, both targets.
    let initech = plan(&scopes, "initech", support());
    assert_eq!(
        initech
            .iter()
            .map(|p| p.connector.as_str())
            .collect::<Vec<_>>(),
        ["queue", "sip"]
    );

    let message = |tenant| scopes.messages.for_tenant(tenant).for_language("en-GB").0;
    assert_eq!(
        message("acme"),
        "Acme: a specialist will take it from here."
    );
    assert_eq!(message("globex"), "Shared: connecting you now.");
    assert_eq!(message("initech"), "Shared: connecting you now.");
    // Languages the tenant does not translate come from the shared set.
    assert!(
        scopes
            .messages
            .for_tenant("acme")
            .for_language("es")
            .0
            .starts_with("Le comunico")
    );
}

#[test]
fn a_restricted_tenant_inherits_the_shared_routes_without_the_connectors_it_may_not_use() {
    let scopes = scopes(TWO_TENANTS).expect("checks");

    // globex may use only the queue connector: the shared route loses its
    // SIP fallback, and SIP URIs have no default connector for it.
    assert_eq!(
        plan(&scopes, "globex", support()),
        [PlannedTarget {
            connector: "queue".into(),
            target: queue("support"),
        }]
    );
    let sip = RequestedTarget::Concrete(ConcreteTarget::SipUri {
        uri: "sip:jane@pbx.example.com".into(),
    });
    let refused = scopes
        .routers
        .for_tenant("globex")
        .plan(&sip, "", "en")
        .expect_err("no connector globex may use serves SIP URIs");
    assert_eq!(refused.field, "target");
    assert!(
        scopes
            .routers
            .for_tenant("initech")
            .plan(&sip, "", "en")
            .is_ok()
    );

    // acme may not use the shared queue connector: a queue target it asks
    // for directly has no connector either.
    let refused = scopes
        .routers
        .for_tenant("acme")
        .plan(&RequestedTarget::Concrete(queue("support")), "", "en")
        .expect_err("acme may not use the shared queue connector");
    assert_eq!(refused.field, "target");
}

#[test]
fn a_tenant_route_that_names_an_unknown_connector_is_refused_naming_the_key() {
    let error = scopes(
        r#"
[[tenants.acme.routes]]
name = "support"
[[tenants.acme.routes.targets]]
connector = "acme-cc"
queue = "one"
[[tenants.acme.routes.targets]]
connector = "x"
queue = "two"
"#,
    )
    .expect_err("unknown connector");
    assert_eq!(
        error,
        r#"tenants.acme.routes[0].targets[1].connector: unknown connector "x""#
    );
}

#[test]
fn a_tenant_route_or_default_on_a_connector_the_tenant_may_not_use_is_refused() {
    let error = scopes(
        r#"
[tenants.acme]
connectors = ["acme-cc"]
[[tenants.acme.routes]]
name = "support"
[[tenants.acme.routes.targets]]
connector = "queue"
queue = "support"
"#,
    )
    .expect_err("not allowed");
    assert!(
        error.starts_with(r#"tenants.acme.routes[0].targets[0].connector: tenant "acme" may not use connector "queue""#),
        "{error}"
    );

    let error = scopes(
        r#"
[tenants.acme]
connectors = ["acme-cc"]
[tenants.acme.default_connectors]
sip_uri = "sip"
"#,
    )
    .expect_err("not allowed");
    assert!(
        error.starts_with("tenants.acme.default_connectors.sip_uri: "),
        "{error}"
    );
}

#[test]
fn a_tenant_table_is_checked_like_the_shared_one() {
    let error =
        scopes("[tenants.acme]\nconnectors = [\"queue\", \"nope\"]\n").expect_err("unknown");
    assert_eq!(
        error,
        r#"tenants.acme.connectors[1]: no connector named "nope" is configured"#
    );

    let error = scopes("[tenants.\"bad\\u0007id\"]\n").expect_err("invalid id");
    assert!(error.starts_with("tenants.\"bad\\u{7}id\": "), "{error}");

    let error = scopes("[tenants.acme.messages]\ndefault_language = \"ja\"\n")
        .expect_err("no Japanese message");
    assert!(
        error.starts_with("tenants.acme.messages.default_language: "),
        "{error}"
    );

    let error = scopes(
        r#"
[[tenants.acme.routes]]
name = "support"
targets = []
"#,
    )
    .expect_err("a route without targets");
    assert!(
        error.starts_with("tenants.acme.routes[0].targets: "),
        "{error}"
    );

    // A misspelt key is an error that names it, as everywhere.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    std::fs::write(&path, "[tenants.acme]\nroute = []\n").expect("write");
    let error = baton_service_kit::config::load::<ControlConfig>(Some(&path), "BATON_TENANTS_TEST")
        .expect_err("unknown key")
        .to_string();
    assert!(error.contains("route"), "{error}");
}

#[test]
fn every_tenant_route_name_counts_as_known_for_metrics() {
    let config = load(&format!("{SHARED}{TWO_TENANTS}"));
    let names: Vec<_> = config.all_routes().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["support", "support"]);
}

#[test]
fn a_tenants_templates_overlay_the_shared_ones_and_are_checked_naming_the_key() {
    let scopes = scopes(
        r#"
[messages.templates.en]
wait = "Shared: about {minutes} minutes."
closed = "Shared: closed."

[tenants.acme.messages.templates.en]
closed = "Acme: closed, sorry."
[tenants.acme.messages.templates.it]
opens_again = "Acme: riapriamo {when}."
"#,
    )
    .expect("valid");
    let acme = scopes.messages.for_tenant("acme");
    let english = acme.templates_for("en-US").expect("acme's English");
    assert_eq!(
        english.wait.as_deref(),
        Some("Shared: about {minutes} minutes.")
    );
    assert_eq!(english.closed.as_deref(), Some("Acme: closed, sorry."));
    assert!(acme.templates_for("it").is_some());
    let globex = scopes.messages.for_tenant("globex");
    assert_eq!(
        globex.templates_for("en").and_then(|t| t.closed.as_deref()),
        Some("Shared: closed.")
    );
    assert!(globex.templates_for("it").is_none());

    let error = scopes_error("[tenants.acme.messages.templates.en]\nwait = \"soon\"\n");
    assert_eq!(
        error,
        "tenants.acme.messages.templates.en.wait: must contain {minutes}"
    );
    let error = scopes_error("[messages.templates.fr]\nsoon = \"bientôt\"\n");
    assert!(error.contains("soon"), "{error}");
}

fn scopes_error(tenants: &str) -> String {
    let text = format!("{SHARED}{tenants}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.toml");
    std::fs::write(&path, text).expect("write");
    match baton_service_kit::config::load::<ControlConfig>(Some(&path), "BATON_TENANTS_TEST") {
        Ok(config) => config.tenant_scopes().expect_err("refused"),
        Err(error) => format!("{error:#}"),
    }
}
