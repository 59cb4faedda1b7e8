//! What the runtime tells the policy about a conversation.

use serde::{Deserialize, Serialize};

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Customer,
    Ai,
    Human,
    System,
}

/// How the AI's turn went, as the runtime judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AiOutcome {
    /// The AI did what was asked; resets the repeated-failure count.
    Resolved,
    /// The AI did not understand the customer.
    NotUnderstood,
    /// The AI understood but could not do it.
    Failed,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub speaker: Speaker,
    #[serde(default)]
    pub text: String,
    /// The runtime's own distress score for this turn, 0..=1. When present it
    /// replaces the built-in scorer for this turn.
    #[serde(default)]
    pub distress_score: Option<f32>,
    /// Set on AI turns only.
    #[serde(default)]
    pub ai_outcome: Option<AiOutcome>,
}

impl Turn {
    pub fn customer(text: impl Into<String>) -> Self {
        Self {
            speaker: Speaker::Customer,
            text: text.into(),
            distress_score: None,
            ai_outcome: None,
        }
    }

    pub fn ai(text: impl Into<String>, outcome: AiOutcome) -> Self {
        Self {
            speaker: Speaker::Ai,
            text: text.into(),
            distress_score: None,
            ai_outcome: Some(outcome),
        }
    }
}

/// The runtime's classification of what the customer wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Dotted name, e.g. `billing.refund`.
    pub name: String,
    /// 0..=1.
    pub confidence: f32,
}

/// Signals only the runtime can see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeFlags {
    /// The runtime itself detected a request for a human (button, DTMF, its own NLU).
    pub explicit_request: bool,
    /// More than one party disagrees (e.g. joint account holders, a merchant dispute).
    pub multi_party_dispute: bool,
    /// The runtime has no playbook for this situation.
    pub novel_scenario: bool,
}

/// A whole conversation, or the part of it kept by [`crate::ConversationStates`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conversation {
    /// BCP 47 tag (`en`, `es-MX`, `pt-BR`); picks the customer message. Detection
    /// itself runs every supported language, because customers switch.
    pub language: String,
    pub intent: Option<Intent>,
    pub turns: Vec<Turn>,
    /// Types (never values) of sensitive entities the runtime extracted, e.g. `ssn`.
    pub entity_types: Vec<String>,
    pub flags: RuntimeFlags,
}
