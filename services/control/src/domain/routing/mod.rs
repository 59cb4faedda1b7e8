//! Routing: turning the requested target into an ordered plan of concrete
//! targets, each served by a named connector. The first entry is tried
//! first; each later one is a fallback.

use std::collections::BTreeMap;

use super::hours::{BusinessHours, OpenNow, all_open};
use super::target::{ConcreteTarget, PlannedTarget, RequestedTarget};
use super::validate::{is_e164, is_name, is_sip_uri};

mod config;
mod tenants;
pub use config::{DefaultConnectors, RouteConfig, RouteTargetConfig};
pub use tenants::{PerTenant, inherited_by};

/// Why a requested target has no plan: the request's field and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unroutable {
    pub field: &'static str,
    pub description: String,
}

impl Unroutable {
    fn new(field: &'static str, description: impl Into<String>) -> Self {
        Self {
            field,
            description: description.into(),
        }
    }
}

/// Validated routes, ready to plan handoffs.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<(RouteConfig, Vec<PlannedTarget>)>,
    /// Each route's hours and its targets' own, by route.
    hours: Vec<RouteHours>,
    defaults: DefaultConnectors,
}

/// The business hours of a route and of each of its targets.
#[derive(Debug, Clone, Default)]
struct RouteHours {
    route: Option<BusinessHours>,
    targets: Vec<Option<BusinessHours>>,
}

/// The schedules a planned target must all be open in.
type Schedules<'a> = [Option<&'a BusinessHours>; 2];

/// One target of a plan, and whether its hours have it open now.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetNow {
    pub planned: PlannedTarget,
    pub open: OpenNow,
    /// The zone of its (first) schedule; `None` without one.
    pub time_zone: Option<String>,
}

impl Router {
    /// Checks the routes against the configured connector names. Errors name
    /// the config key that is wrong.
    ///
    /// `hours` are the configured schedules by name.
    pub fn new(
        routes: Vec<RouteConfig>,
        defaults: DefaultConnectors,
        connectors: &[&str],
        hours: &BTreeMap<String, BusinessHours>,
    ) -> Result<Self, String> {
        let schedule = |name: &Option<String>, key: String| -> Result<_, String> {
            name.as_ref()
                .map(|name| {
                    hours
                        .get(name)
                        .cloned()
                        .ok_or_else(|| format!("{key}: no [[hours]] named {name:?} is configured"))
                })
                .transpose()
        };
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
        let mut route_hours = Vec::with_capacity(routes.len());
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
            let mut hours = RouteHours {
                route: schedule(&route.hours, format!("routes[{i}].hours"))?,
                targets: Vec::with_capacity(route.targets.len()),
            };
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
                check_target(&concrete, &key)?;
                hours
                    .targets
                    .push(schedule(&target.hours, format!("{key}.hours"))?);
                plan.push(PlannedTarget {
                    connector: target.connector.clone(),
                    target: concrete,
                });
            }
            planned_routes.push((route, plan));
            route_hours.push(hours);
        }
        Ok(Self {
            routes: planned_routes,
            hours: route_hours,
            defaults,
        })
    }

    /// The plan for a handoff: a named route's targets, or the requested
    /// target followed by the targets of the first route that applies.
    pub fn plan(
        &self,
        requested: &RequestedTarget,
        intent: &str,
        language: &str,
    ) -> Result<Vec<PlannedTarget>, Unroutable> {
        let plan = self.plan_with_hours(requested, intent, language)?;
        Ok(plan.into_iter().map(|(planned, _)| planned).collect())
    }

    /// The plan, each target with whether its business hours (the
    /// route's and its own) have it open at `now`.
    pub fn plan_at(
        &self,
        requested: &RequestedTarget,
        intent: &str,
        language: &str,
        now: jiff::Timestamp,
    ) -> Result<Vec<TargetNow>, Unroutable> {
        let plan = self.plan_with_hours(requested, intent, language)?;
        Ok(plan
            .into_iter()
            .map(|(planned, schedules)| {
                let schedules: Vec<&BusinessHours> = schedules.into_iter().flatten().collect();
                TargetNow {
                    planned,
                    open: all_open(&schedules, now),
                    time_zone: schedules.first().map(|s| s.time_zone().to_owned()),
                }
            })
            .collect())
    }

    fn plan_with_hours(
        &self,
        requested: &RequestedTarget,
        intent: &str,
        language: &str,
    ) -> Result<Vec<(PlannedTarget, Schedules<'_>)>, Unroutable> {
        let concrete = match requested {
            RequestedTarget::Route(name) => {
                let index = self
                    .routes
                    .iter()
                    .position(|(route, _)| &route.name == name)
                    .ok_or_else(|| Unroutable::new("target.route", "no route has this name"))?;
                return Ok(self.route_targets(index).collect());
            }
            RequestedTarget::Concrete(concrete) => concrete.clone(),
            RequestedTarget::Unset => return Err(Unroutable::new("target", "is required")),
        };

        let route = self
            .routes
            .iter()
            .position(|(route, _)| applies(route, &concrete, intent, language));
        let route_plan: Vec<(PlannedTarget, Schedules<'_>)> = route
            .map(|index| self.route_targets(index).collect())
            .unwrap_or_default();

        // The requested target is served by the connector a route gives it,
        // else by the default connector for its kind; the route's hours
        // apply to it, and its own where the route lists it.
        let listed = route_plan
            .iter()
            .find(|(planned, _)| planned.target == concrete);
        let connector = listed
            .map(|(planned, _)| &planned.connector)
            .or_else(|| self.defaults.for_target(&concrete))
            .ok_or_else(|| {
                Unroutable::new(
                    "target",
                    format!(
                        "no connector is configured for {} targets",
                        concrete.kind().name()
                    ),
                )
            })?;
        let schedules = match listed {
            Some((_, schedules)) => *schedules,
            None => [
                route.and_then(|index| self.hours[index].route.as_ref()),
                None,
            ],
        };

        let mut plan = vec![(
            PlannedTarget {
                connector: connector.clone(),
                target: concrete,
            },
            schedules,
        )];
        for (planned, schedules) in route_plan {
            if !plan.iter().any(|(earlier, _)| *earlier == planned) {
                plan.push((planned, schedules));
            }
        }
        Ok(plan)
    }

    /// Route `index`'s targets with their schedules.
    fn route_targets(
        &self,
        index: usize,
    ) -> impl Iterator<Item = (PlannedTarget, Schedules<'_>)> + '_ {
        let hours = &self.hours[index];
        self.routes[index]
            .1
            .iter()
            .zip(&hours.targets)
            .map(|(planned, own)| (planned.clone(), [hours.route.as_ref(), own.as_ref()]))
    }
}

impl Router {
    /// The route a handoff's plan comes from: the route it names, else
    /// the first that applies to its target, intent and language (the
    /// one `plan` takes its fallbacks from); `None` when none does.
    pub fn route_name<'a>(
        &'a self,
        requested: &'a RequestedTarget,
        intent: &str,
        language: &str,
    ) -> Option<&'a str> {
        match requested {
            RequestedTarget::Route(name) => Some(name.as_str()),
            RequestedTarget::Concrete(concrete) => self
                .routes
                .iter()
                .find(|(route, _)| applies(route, concrete, intent, language))
                .map(|(route, _)| route.name.as_str()),
            RequestedTarget::Unset => None,
        }
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

/// A configured target's syntax, as a request's target is checked; the
/// error names the key.
fn check_target(target: &ConcreteTarget, key: &str) -> Result<(), String> {
    const NAME: &str = "must be 1-128 letters, digits, '.', '_' or '-'";
    match target {
        ConcreteTarget::Queue { name, skills } => {
            if !is_name(name) {
                return Err(format!("{key}.queue.name: {NAME}"));
            }
            match skills.iter().position(|skill| !is_name(skill)) {
                Some(i) => Err(format!("{key}.queue.skills[{i}]: {NAME}")),
                None => Ok(()),
            }
        }
        ConcreteTarget::PhoneNumber { number } if !is_e164(number) => Err(format!(
            "{key}.phone_number: must be an E.164 number such as +14155550100"
        )),
        ConcreteTarget::SipUri { uri } if !is_sip_uri(uri) => Err(format!(
            "{key}.sip_uri: must be a sip: or sips: URI such as sip:agent@pbx.example.com"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
