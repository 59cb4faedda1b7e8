//! The escalation decision: whether a conversation should go to a human and
//! why, as `EvaluateEscalation` gives it and as a handoff keeps the one its
//! caller acted on.

/// Why an AI escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EscalationKind {
    Unspecified,
    ExplicitRequest,
    Distress,
    Complexity,
    Compliance,
    RepeatedFailure,
    Other,
    /// A kind of a newer contract, by its number: a caller's decision is
    /// kept as it was given.
    Unknown(i32),
}

/// Whether to escalate now, with every trigger that fired.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EscalationDecision {
    pub escalate: bool,
    pub fired: Vec<FiredTrigger>,
    /// The route to hand off to; empty when the default routing applies.
    pub suggested_route: String,
    /// What to tell the customer when escalating.
    pub customer_message: String,
    /// Triggers close to firing.
    pub recommendations: Vec<String>,
}

/// One trigger that fired, with its evidence (never a sensitive value).
#[derive(Debug, Clone, PartialEq)]
pub struct FiredTrigger {
    pub kind: EscalationKind,
    pub evidence: String,
    /// For distress and complexity.
    pub score: f32,
    pub threshold: f32,
    /// For repeated failures.
    pub count: u32,
    pub layer: EscalationLayer,
}

/// Which part of the policy found a trigger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EscalationLayer {
    /// Not reported: a caller's own decision, or one made before layers.
    #[default]
    Unspecified,
    Rules,
    Runtime,
    Model,
    Judge,
    /// A layer of a newer contract, by its number, kept as given.
    Unknown(i32),
}
