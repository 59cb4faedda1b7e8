//! What the policy answers.

use serde::{Deserialize, Serialize};

/// The five reasons to hand off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    ExplicitRequest,
    Distress,
    Complexity,
    Compliance,
    RepeatedFailure,
}

impl Trigger {
    pub const ALL: [Trigger; 5] = [
        Trigger::ExplicitRequest,
        Trigger::Distress,
        Trigger::Complexity,
        Trigger::Compliance,
        Trigger::RepeatedFailure,
    ];

    /// The config key and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::ExplicitRequest => "explicit_request",
            Trigger::Distress => "distress",
            Trigger::Complexity => "complexity",
            Trigger::Compliance => "compliance",
            Trigger::RepeatedFailure => "repeated_failure",
        }
    }
}

/// Which part of the policy found a trigger, so that a reviewer knows what
/// to trust and what to retrain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The word lists and rules of this crate, or a tenant's rule.
    #[default]
    Rules,
    /// The runtime said so: its flag or its own score.
    Runtime,
    /// The learned classifier (`baton-policy-model`).
    Model,
    /// An LLM judge consulted on an ambiguous turn.
    Judge,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Rules => "rules",
            Layer::Runtime => "runtime",
            Layer::Model => "model",
            Layer::Judge => "judge",
        }
    }
}

/// One reason that fired, with what a reviewer needs to agree or disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fired {
    pub trigger: Trigger,
    /// The matched phrase, `score 0.82 ≥ threshold 0.70`, `2 failures in a row`…
    /// Digits from the customer's words are masked, so an account or card
    /// number never lands in a handoff record.
    pub evidence: String,
    pub score: Option<f32>,
    pub threshold: Option<f32>,
    pub count: Option<u32>,
    /// The compliance rule's name, when `trigger` is `Compliance`.
    pub rule: Option<String>,
    /// Who found it. Decisions stored before layers existed read as rules.
    #[serde(default)]
    pub layer: Layer,
}

/// A trigger the model came close to: its probability was within
/// `model.ambiguous_margin` below the threshold. What a judge is asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ambiguous {
    pub trigger: Trigger,
    pub score: f32,
    pub threshold: f32,
    /// Index of the turn, in the conversation's turns, that scored it.
    pub turn: usize,
}

/// The policy's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub escalate: bool,
    /// Every trigger that fired, in [`Trigger::ALL`] order.
    pub fired: Vec<Fired>,
    /// Route (target name) to hand off to: a compliance rule's route first, then
    /// the route of the first other trigger that fired and has one, then
    /// `default_route`.
    pub route: Option<String>,
    /// What to tell the customer, in their language, when escalating.
    pub customer_message: Option<String>,
    /// Close but not over: e.g. `one more failed attempt escalates (1 of 2)`.
    pub near_misses: Vec<String>,
    /// Triggers that did not fire but that the model was unsure about.
    #[serde(default)]
    pub ambiguous: Vec<Ambiguous>,
}
