//! Plans from routes: named routes, fallbacks, languages, and the checks
//! routes get at start.

use super::*;

fn route(
    name: &str,
    queues: &[&str],
    intents: &[&str],
    targets: Vec<RouteTargetConfig>,
) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        queues: queues.iter().map(|s| s.to_string()).collect(),
        intents: intents.iter().map(|s| s.to_string()).collect(),
        languages: vec![],
        targets,
        hours: None,
    }
}

fn queue(connector: &str, name: &str) -> RouteTargetConfig {
    RouteTargetConfig::queue(connector, name)
}

fn sip(connector: &str, uri: &str) -> RouteTargetConfig {
    RouteTargetConfig::sip_uri(connector, uri)
}

fn router() -> Router {
    Router::new(
        vec![
            route(
                "billing",
                &["billing"],
                &["billing.*"],
                vec![
                    queue("queue", "billing"),
                    sip("sip", "sip:billing@pbx.example.com"),
                ],
            ),
            route("spanish", &[], &[], vec![queue("queue", "es")]),
        ],
        DefaultConnectors {
            queue: Some("queue".into()),
            phone_number: Some("sip".into()),
            sip_uri: Some("sip".into()),
        },
        &["queue", "sip"],
        &BTreeMap::new(),
    )
    .expect("valid routes")
}

fn route_named(name: &str) -> RequestedTarget {
    RequestedTarget::Route(name.into())
}

fn queue_named(name: &str) -> RequestedTarget {
    RequestedTarget::Concrete(ConcreteTarget::Queue {
        name: name.into(),
        skills: vec![],
    })
}

#[test]
fn a_named_route_gives_its_targets_in_order() {
    let plan = router()
        .plan(&route_named("billing"), "", "")
        .expect("plan");
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0].connector, "queue");
    assert_eq!(plan[1].connector, "sip");
}

#[test]
fn a_queue_target_falls_back_to_its_route_without_repeating_itself() {
    let plan = router()
        .plan(&queue_named("billing"), "", "en")
        .expect("plan");
    let targets: Vec<_> = plan.iter().map(|p| p.target.clone()).collect();
    assert_eq!(
        targets,
        [
            ConcreteTarget::Queue {
                name: "billing".into(),
                skills: vec![]
            },
            ConcreteTarget::SipUri {
                uri: "sip:billing@pbx.example.com".into()
            },
        ]
    );
}

#[test]
fn an_intent_selects_the_fallback_route_for_a_direct_number() {
    let plan = router()
        .plan(
            &RequestedTarget::Concrete(ConcreteTarget::PhoneNumber {
                number: "+14155550100".into(),
            }),
            "billing.refund",
            "en",
        )
        .expect("plan");
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[0].connector, "sip");
    assert_eq!(
        plan[1].target,
        ConcreteTarget::Queue {
            name: "billing".into(),
            skills: vec![]
        }
    );
}

#[test]
fn unknown_routes_and_unserved_kinds_are_errors_naming_the_field() {
    let error = router()
        .plan(&route_named("nope"), "", "")
        .expect_err("unknown route");
    assert_eq!(error.field, "target.route");

    let no_defaults =
        Router::new(vec![], DefaultConnectors::default(), &[], &BTreeMap::new()).expect("empty");
    let error = no_defaults
        .plan(
            &RequestedTarget::Concrete(ConcreteTarget::SipUri {
                uri: "sip:a@b".into(),
            }),
            "",
            "",
        )
        .expect_err("no connector");
    assert_eq!(error.field, "target");
}

#[test]
fn routes_are_checked_against_connectors() {
    let error = Router::new(
        vec![route("r", &[], &[], vec![queue("missing", "q")])],
        DefaultConnectors::default(),
        &["queue"],
        &BTreeMap::new(),
    )
    .expect_err("unknown connector");
    assert!(
        error.starts_with("routes[0].targets[0].connector"),
        "{error}"
    );

    let mut both = queue("queue", "q");
    both.sip_uri = Some("sip:a@b".into());
    let error = Router::new(
        vec![route("r", &[], &[], vec![both])],
        DefaultConnectors::default(),
        &["queue"],
        &BTreeMap::new(),
    )
    .expect_err("two kinds");
    assert!(error.contains("exactly one"), "{error}");
}

#[test]
fn languages_restrict_routes() {
    let mut spanish_billing = route(
        "es-billing",
        &["billing"],
        &[],
        vec![queue("queue", "billing-es")],
    );
    spanish_billing.languages = vec!["es".into()];
    let router = Router::new(
        vec![spanish_billing],
        DefaultConnectors {
            queue: Some("queue".into()),
            ..Default::default()
        },
        &["queue"],
        &BTreeMap::new(),
    )
    .expect("router");
    let billing = queue_named("billing");
    assert_eq!(router.plan(&billing, "", "es-MX").expect("plan").len(), 2);
    assert_eq!(router.plan(&billing, "", "en-US").expect("plan").len(), 1);
}

#[test]
fn hours_close_a_route_and_its_targets_and_a_requested_target_takes_its_routes() {
    use crate::domain::hours::{HoursConfig, OpenNow};
    let schedule = |name: &str, monday: &[&str]| {
        let config = HoursConfig {
            name: name.into(),
            time_zone: "UTC".into(),
            monday: monday.iter().map(|w| w.to_string()).collect(),
            ..HoursConfig::default()
        };
        (
            name.to_owned(),
            BusinessHours::new(&config, "hours").expect("hours"),
        )
    };
    let hours = BTreeMap::from([
        schedule("mornings", &["08:00-12:00"]),
        schedule("late-mornings", &["10:00-12:00"]),
    ]);
    let mut billing = route(
        "billing",
        &["billing"],
        &[],
        vec![
            queue("queue", "billing"),
            sip("sip", "sip:billing@pbx.example.com"),
        ],
    );
    billing.hours = Some("mornings".into());
    billing.targets[1].hours = Some("late-mornings".into());
    let router = Router::new(
        vec![billing],
        DefaultConnectors {
            queue: Some("queue".into()),
            ..Default::default()
        },
        &["queue", "sip"],
        &hours,
    )
    .expect("router");
    // Monday 7 December 2026, 09:00 UTC.
    let nine: jiff::Timestamp = "2026-12-07T09:00:00Z".parse().expect("instant");
    let plan = router
        .plan_at(&queue_named("billing"), "", "", nine)
        .expect("plan");
    let open: Vec<bool> = plan.iter().map(|t| t.open.is_open()).collect();
    assert_eq!(open, [true, false]);
    assert_eq!(
        plan[1].open,
        OpenNow::Closed {
            opens_at: Some("2026-12-07T10:00:00Z".parse().expect("instant"))
        }
    );
    assert_eq!(plan[0].time_zone.as_deref(), Some("UTC"));

    let error = Router::new(
        vec![route("r", &[], &[], vec![queue("queue", "q")])]
            .into_iter()
            .map(|mut r| {
                r.hours = Some("nights".into());
                r
            })
            .collect(),
        DefaultConnectors::default(),
        &["queue"],
        &hours,
    )
    .expect_err("unknown hours");
    assert!(error.starts_with("routes[0].hours"), "{error}");
}
