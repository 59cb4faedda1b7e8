//! Where a handoff goes: the target a caller asked for, the concrete
//! targets a route resolves it into, and how the call is transferred.

use serde::{Deserialize, Serialize};

/// The kinds of concrete target a connector may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Queue,
    PhoneNumber,
    SipUri,
}

impl TargetKind {
    /// The kind's name in messages for people.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::PhoneNumber => "phone number",
            Self::SipUri => "SIP URI",
        }
    }
}

/// A concrete destination served by a connector (a route is resolved into a
/// list of these before anything is dispatched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ConcreteTarget {
    Queue { name: String, skills: Vec<String> },
    PhoneNumber { number: String },
    SipUri { uri: String },
}

impl ConcreteTarget {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Queue { .. } => TargetKind::Queue,
            Self::PhoneNumber { .. } => TargetKind::PhoneNumber,
            Self::SipUri { .. } => TargetKind::SipUri,
        }
    }
}

/// The target a caller asked for: a concrete one, or a configured route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RequestedTarget {
    Concrete(ConcreteTarget),
    Route(String),
    /// None at all. Creation refuses it, but a handoff read back keeps
    /// whatever was stored rather than failing the read.
    #[default]
    Unset,
}

/// One step of a handoff's plan: a target and the connector that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTarget {
    pub connector: String,
    pub target: ConcreteTarget,
}

/// The transfer mode in effect (never unspecified: a request without one
/// gets a warm transfer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    #[default]
    Warm,
    Blind,
    Attended,
}
