//! Routes and default connectors as configured (`[[routes]]`,
//! `[default_connectors]`).

use serde::Deserialize;

use crate::domain::target::ConcreteTarget;

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
    /// The business hours (an `[[hours]]` name) of every target of the
    /// route; open at all times when unset.
    #[serde(default)]
    pub hours: Option<String>,
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
    /// This target's own business hours, besides the route's.
    #[serde(default)]
    pub hours: Option<String>,
}

impl RouteTargetConfig {
    /// `connector`'s queue `name`, with no skills and no hours of its own.
    pub fn queue(connector: &str, name: &str) -> Self {
        Self {
            queue: Some(name.into()),
            ..Self::of(connector)
        }
    }

    /// `connector`'s SIP URI `uri`, with no hours of its own.
    pub fn sip_uri(connector: &str, uri: &str) -> Self {
        Self {
            sip_uri: Some(uri.into()),
            ..Self::of(connector)
        }
    }

    /// `connector` with no target yet.
    fn of(connector: &str) -> Self {
        Self {
            connector: connector.into(),
            queue: None,
            skills: vec![],
            phone_number: None,
            sip_uri: None,
            hours: None,
        }
    }

    pub(super) fn to_target(&self) -> Option<ConcreteTarget> {
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
    pub(super) fn for_target(&self, target: &ConcreteTarget) -> Option<&String> {
        match target {
            ConcreteTarget::Queue { .. } => self.queue.as_ref(),
            ConcreteTarget::PhoneNumber { .. } => self.phone_number.as_ref(),
            ConcreteTarget::SipUri { .. } => self.sip_uri.as_ref(),
        }
    }
}
