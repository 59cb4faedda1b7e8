//! Routing: turning the requested target into an ordered plan of concrete
//! targets, each served by a named connector. The first entry is tried
//! first; each later one is a fallback.

use std::collections::BTreeMap;

use baton_proto::types::v1 as pb;
use baton_service_kit::status::FieldViolation;
use serde::Deserialize;

use super::model::{ConcreteTarget, PlannedTarget};
use super::validate::{Violations, validate_target};

/// A named route: which handoffs it applies to, and its ordered targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The route's name, used as `target.route` by runtimes.
    pub name: String,
    /// Applies to handoffs that target one of these queues.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Applies to handoffs whose intent matches one of these patterns
    /// (`billing.dispute`, or `billing.*` for a prefix).
    #[serde(default)]
    pub intents: Vec<String>,
    /// When not empty, applies only to conversations in these languages
    /// (`es` matches `es-MX`).
    #[serde(default)]
    pub languages: Vec<String>,
    /// The targets, tried in order.
    pub targets: Vec<RouteTargetConfig>,
}

/// One target of a route.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteTargetConfig {
    /// The connector that serves this target.
    pub connector: String,
    /// A queue name (with `skills`), or
    #[serde(default)]
    pub queue: Option<String>,
    /// Skills required in the queue.
    #[serde(default)]
    pub skills: Vec<String>,
    /// an E.164 phone number, or
    #[serde(default)]
    pub phone_number: Option<String>,
    /// a SIP URI.
    #[serde(default)]
    pub sip_uri: Option<String>,
}

impl RouteTargetConfig {
    fn to_target(&self) -> Option<ConcreteTarget> {
        match (&self.queue, &self.phone_number, &self.sip_uri) {
            (Some(name), None, None) => Some(ConcreteTarget::Queue {
                name: name.clone(),
                skills: self.skills.clone(),
            }),
            (None, Some(number), None) => Some(ConcreteTarget::PhoneNumber {
                number: number.clone(),
            }),
            (None, None, Some(uri)) => Some(ConcreteTarget::SipUri { uri: uri.clone() }),
            _ => None,
        }
    }
}

/// Which connector serves a target kind when no route names one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultConnectors {
    pub queue: Option<String>,
    pub phone_number: Option<String>,
    pub sip_uri: Option<String>,
}

impl DefaultConnectors {
    fn for_target(&self, target: &ConcreteTarget) -> Option<&String> {
        match target {
            ConcreteTarget::Queue { .. } => self.queue.as_ref(),
            ConcreteTarget::PhoneNumber { .. } => self.phone_number.as_ref(),
            ConcreteTarget::SipUri { .. } => self.sip_uri.as_ref(),
        }
    }
}

/// Validated routes, ready to plan handoffs.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<(RouteConfig, Vec<PlannedTarget>)>,
    defaults: DefaultConnectors,
}

impl Router {
    /// Checks the routes against the configured connector names. Errors name
    /// the config key that is wrong.
    pub fn new(
        routes: Vec<RouteConfig>,
        defaults: DefaultConnectors,
        connectors: &[&str],
    ) -> Result<Self, String> {
        let known = |name: &str| connectors.contains(&name);
        for (kind, name) in [
            ("queue", &defaults.queue),
            ("phone_number", &defaults.phone_number),
            ("sip_uri", &defaults.sip_uri),
        ] {
            if let Some(name) = name.as_deref().filter(|name| !known(name)) {
                return Err(format!(
                    "default_connectors.{kind}: no connector named {name:?} is configured"
                ));
            }
        }
        let mut planned_routes = Vec::with_capacity(routes.len());
        let mut names = BTreeMap::new();
        for (i, route) in routes.into_iter().enumerate() {
            if names.insert(route.name.clone(), i).is_some() {
                return Err(format!(
                    "routes[{i}].name: route {:?} is defined twice",
                    route.name
                ));
            }
            if route.targets.is_empty() {
                return Err(format!(
                    "routes[{i}].targets: a route needs at least one target"
                ));
            }
            let mut plan = Vec::with_capacity(route.targets.len());
            for (j, target) in route.targets.iter().enumerate() {
                let key = format!("routes[{i}].targets[{j}]");
                if !known(&target.connector) {
                    return Err(format!(
                        "{key}.connector: no connector named {:?} is configured",
                        target.connector
                    ));
                }
                let concrete = target.to_target().ok_or_else(|| {
                    format!("{key}: set exactly one of queue, phone_number and sip_uri")
                })?;
                let mut violations = Violations::default();
                validate_target(&concrete.to_proto(), &key, &mut violations);
                if let Err(violations) = violations.finish() {
                    let first = &violations[0];
                    return Err(format!("{}: {}", first.field, first.description));
                }
                plan.push(PlannedTarget {
                    connector: target.connector.clone(),
                    target: concrete,
                });
            }
            planned_routes.push((route, plan));
        }
        Ok(Self {
            routes: planned_routes,
            defaults,
        })
    }

    /// The plan for a handoff: a named route's targets, or the requested
    /// target followed by the targets of the first route that applies.
    pub fn plan(
        &self,
        requested: &pb::Target,
        intent: &str,
        language: &str,
    ) -> Result<Vec<PlannedTarget>, FieldViolation> {
        let concrete = match &requested.kind {
            Some(pb::target::Kind::Route(name)) => {
                return self
                    .routes
                    .iter()
                    .find(|(route, _)| &route.name == name)
                    .map(|(_, plan)| plan.clone())
                    .ok_or_else(|| FieldViolation::new("target.route", "no route has this name"));
            }
            Some(pb::target::Kind::Queue(queue)) => ConcreteTarget::Queue {
                name: queue.name.clone(),
                skills: queue.skills.clone(),
            },
            Some(pb::target::Kind::PhoneNumber(number)) => ConcreteTarget::PhoneNumber {
                number: number.clone(),
            },
            Some(pb::target::Kind::SipUri(uri)) => ConcreteTarget::SipUri { uri: uri.clone() },
            None => return Err(FieldViolation::new("target", "is required")),
        };

        let route_plan = self
            .routes
            .iter()
            .find(|(route, _)| applies(route, &concrete, intent, language))
            .map(|(_, plan)| plan.as_slice())
            .unwrap_or_default();

        // The requested target is served by the connector a route gives it,
        // else by the default connector for its kind.
        let connector = route_plan
            .iter()
            .find(|planned| planned.target == concrete)
            .map(|planned| &planned.connector)
            .or_else(|| self.defaults.for_target(&concrete))
            .ok_or_else(|| {
                FieldViolation::new(
                    "target",
                    format!(
                        "no connector is configured for {} targets",
                        kind_name(concrete.kind())
                    ),
                )
            })?;

        let mut plan = vec![PlannedTarget {
            connector: connector.clone(),
            target: concrete,
        }];
        for planned in route_plan {
            if !plan.contains(planned) {
                plan.push(planned.clone());
            }
        }
        Ok(plan)
    }
}

fn applies(route: &RouteConfig, target: &ConcreteTarget, intent: &str, language: &str) -> bool {
    let language_ok = route.languages.is_empty()
        || route
            .languages
            .iter()
            .any(|wanted| language_matches(wanted, language));
    let queue_match =
        matches!(target, ConcreteTarget::Queue { name, .. } if route.queues.contains(name));
    let intent_match =
        !intent.is_empty() && route.intents.iter().any(|p| intent_matches(p, intent));
    language_ok && (queue_match || intent_match)
}

fn intent_matches(pattern: &str, intent: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => intent.starts_with(prefix),
        None => pattern == intent,
    }
}

fn language_matches(wanted: &str, language: &str) -> bool {
    let (wanted, language) = (wanted.to_ascii_lowercase(), language.to_ascii_lowercase());
    language == wanted || language.starts_with(&format!("{wanted}-"))
}

pub fn kind_name(kind: pb::TargetKind) -> &'static str {
    match kind {
        pb::TargetKind::Queue => "queue",
        pb::TargetKind::PhoneNumber => "phone number",
        pb::TargetKind::SipUri => "SIP URI",
        pb::TargetKind::Unspecified => "unspecified",
    }
}

#[cfg(test)]
mod tests {
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
        }
    }

    fn queue(connector: &str, name: &str) -> RouteTargetConfig {
        RouteTargetConfig {
            connector: connector.into(),
            queue: Some(name.into()),
            skills: vec![],
            phone_number: None,
            sip_uri: None,
        }
    }

    fn sip(connector: &str, uri: &str) -> RouteTargetConfig {
        RouteTargetConfig {
            connector: connector.into(),
            queue: None,
            skills: vec![],
            phone_number: None,
            sip_uri: Some(uri.into()),
        }
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
        )
        .expect("valid routes")
    }

    fn target(kind: pb::target::Kind) -> pb::Target {
        pb::Target { kind: Some(kind) }
    }

    #[test]
    fn a_named_route_gives_its_targets_in_order() {
        let plan = router()
            .plan(&target(pb::target::Kind::Route("billing".into())), "", "")
            .expect("plan");
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].connector, "queue");
        assert_eq!(plan[1].connector, "sip");
    }

    #[test]
    fn a_queue_target_falls_back_to_its_route_without_repeating_itself() {
        let plan = router()
            .plan(
                &target(pb::target::Kind::Queue(pb::QueueTarget {
                    name: "billing".into(),
                    skills: vec![],
                })),
                "",
                "en",
            )
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
                &target(pb::target::Kind::PhoneNumber("+14155550100".into())),
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
            .plan(&target(pb::target::Kind::Route("nope".into())), "", "")
            .expect_err("unknown route");
        assert_eq!(error.field, "target.route");

        let no_defaults = Router::new(vec![], DefaultConnectors::default(), &[]).expect("empty");
        let error = no_defaults
            .plan(&target(pb::target::Kind::SipUri("sip:a@b".into())), "", "")
            .expect_err("no connector");
        assert_eq!(error.field, "target");
    }

    #[test]
    fn routes_are_checked_against_connectors() {
        let error = Router::new(
            vec![route("r", &[], &[], vec![queue("missing", "q")])],
            DefaultConnectors::default(),
            &["queue"],
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
        )
        .expect("router");
        let billing = target(pb::target::Kind::Queue(pb::QueueTarget {
            name: "billing".into(),
            skills: vec![],
        }));
        assert_eq!(router.plan(&billing, "", "es-MX").expect("plan").len(), 2);
        assert_eq!(router.plan(&billing, "", "en-US").expect("plan").len(), 1);
    }
}
