//! The tools' arguments: what an LLM passes, with the JSON schema the MCP
//! client shows it (from these types and their doc comments, which follow
//! `baton.handoff.v1`), and their translation into the contract's requests.

use baton_proto::handoff::v1 as handoff;
use baton_proto::types::v1 as types;
use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Customer,
    Ai,
    Human,
}

impl Speaker {
    fn proto(self) -> i32 {
        match self {
            Speaker::Customer => types::Speaker::Customer,
            Speaker::Ai => types::Speaker::Ai,
            Speaker::Human => types::Speaker::Human,
        }
        .into()
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Who spoke: `customer`, `ai` or `human`.
    pub speaker: Speaker,
    /// What was said, verbatim.
    pub text: String,
}

/// Arguments of `evaluate_escalation`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateArgs {
    /// A stable id of this conversation (the call or chat id). The policy
    /// remembers each conversation, so repeated AI failures add up across
    /// calls: pass the same id every turn.
    pub conversation_id: String,
    /// The turns since the last evaluation, oldest first (usually the
    /// customer's last message and your last answer).
    pub turns: Vec<Turn>,
    /// The conversation's language as a BCP 47 tag (`en-US`, `fr`); the
    /// phrase to say comes back in it.
    #[serde(default)]
    pub language: String,
}

impl EvaluateArgs {
    pub fn request(&self) -> handoff::EvaluateEscalationRequest {
        handoff::EvaluateEscalationRequest {
            conversation_id: self.conversation_id.clone(),
            language: self.language.clone(),
            turns: self
                .turns
                .iter()
                .map(|turn| handoff::EvaluatedTurn {
                    speaker: turn.speaker.proto(),
                    text: turn.text.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// Why the conversation goes to a human.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The customer asked for a person. Always honour it at once.
    ExplicitRequest,
    /// The customer is upset, frustrated or in distress.
    Distress,
    /// The request is beyond what you can do.
    Complexity,
    /// A rule requires a licensed or authorised human.
    Compliance,
    /// You failed to help several times in a row.
    RepeatedFailure,
    Other,
}

impl Reason {
    fn proto(self) -> i32 {
        match self {
            Reason::ExplicitRequest => types::EscalationKind::ExplicitRequest,
            Reason::Distress => types::EscalationKind::Distress,
            Reason::Complexity => types::EscalationKind::Complexity,
            Reason::Compliance => types::EscalationKind::Compliance,
            Reason::RepeatedFailure => types::EscalationKind::RepeatedFailure,
            Reason::Other => types::EscalationKind::Other,
        }
        .into()
    }
}

/// Where the customer goes: exactly one of these.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A contact-center queue by name, e.g. `support`.
    Queue(String),
    /// A phone number in E.164, e.g. `+14155550100`.
    PhoneNumber(String),
    /// A SIP URI, e.g. `sip:desk@pbx.example.com`.
    SipUri(String),
}

/// A fact gathered in the conversation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// What it is: `account_number`, `order_id`, `name`, `issue_type`…
    pub name: String,
    /// Its value as the customer gave it.
    pub value: String,
    /// True for personal or secret data (account numbers, dates of birth):
    /// masked until the human reveals it.
    #[serde(default)]
    pub sensitive: bool,
}

/// The channel of the conversation.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Voice,
    Chat,
}

/// Arguments of `hand_off_to_human`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandOffArgs {
    /// Where the customer goes.
    pub target: Target,
    /// Two or three sentences for the human: who the customer is, what
    /// they want, what is done and what is left. The human reads this
    /// first, so the customer never repeats themselves.
    pub summary: String,
    /// Why you hand over.
    pub reason: Reason,
    /// The reason in your words, for the human (optional).
    #[serde(default)]
    pub reason_detail: String,
    /// The customer's goal as a dotted name, e.g. `billing.dispute`.
    #[serde(default)]
    pub intent: String,
    /// Facts gathered so far.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// The conversation so far, oldest first.
    #[serde(default)]
    pub transcript: Vec<Turn>,
    /// `voice` (default) or `chat`.
    #[serde(default)]
    pub channel: Channel,
    /// The conversation's language as a BCP 47 tag; default `en`.
    #[serde(default)]
    pub language: String,
    /// For a call: its SIP Call-ID, which the transfer moves.
    #[serde(default)]
    pub sip_call_id: String,
    /// An idempotency key. Leave it out: the same arguments then make the
    /// same key, so calling this tool again (a retry) never transfers the
    /// customer twice. Pass one only to hand the same conversation over a
    /// second time on purpose.
    #[serde(default)]
    pub request_id: String,
}

impl HandOffArgs {
    pub fn request(&self) -> handoff::CreateHandoffRequest {
        let language = if self.language.is_empty() {
            "en".to_owned()
        } else {
            self.language.clone()
        };
        let kind = match &self.target {
            Target::Queue(name) => types::target::Kind::Queue(types::QueueTarget {
                name: name.clone(),
                skills: vec![],
            }),
            Target::PhoneNumber(number) => types::target::Kind::PhoneNumber(number.clone()),
            Target::SipUri(uri) => types::target::Kind::SipUri(uri.clone()),
        };
        let channel = match self.channel {
            Channel::Voice => types::Channel::Voice,
            Channel::Chat => types::Channel::Chat,
        };
        handoff::CreateHandoffRequest {
            request_id: self.request_id(),
            conversation: Some(types::Conversation {
                channel: channel.into(),
                language,
                call: (!self.sip_call_id.is_empty()).then(|| types::CallReference {
                    sip_call_id: self.sip_call_id.clone(),
                    ..Default::default()
                }),
            }),
            context: Some(types::HandoffContext {
                summary: self.summary.clone(),
                intent: (!self.intent.is_empty()).then(|| types::Intent {
                    name: self.intent.clone(),
                    ..Default::default()
                }),
                entities: self
                    .entities
                    .iter()
                    .map(|entity| types::Entity {
                        name: entity.name.clone(),
                        value: entity.value.clone(),
                        sensitive: entity.sensitive,
                        ..Default::default()
                    })
                    .collect(),
                transcript: self
                    .transcript
                    .iter()
                    .map(|turn| types::Turn {
                        speaker: turn.speaker.proto(),
                        text: turn.text.clone(),
                        ..Default::default()
                    })
                    .collect(),
                reason: Some(types::EscalationReason {
                    kind: self.reason.proto(),
                    detail: self.reason_detail.clone(),
                }),
                ..Default::default()
            }),
            target: Some(types::Target { kind: Some(kind) }),
            ..Default::default()
        }
    }

    /// The caller's key, else one derived from everything that says which
    /// conversation goes where: a tool called twice with the same
    /// arguments names the same handoff.
    fn request_id(&self) -> String {
        if !self.request_id.is_empty() {
            return self.request_id.clone();
        }
        let mut digest = Sha256::new();
        let target = format!("{:?}", self.target);
        let turns = self
            .transcript
            .iter()
            .flat_map(|t| [t.text.as_str(), "\u{1f}"]);
        for part in [target.as_str(), &self.sip_call_id, &self.summary]
            .into_iter()
            .chain(turns)
        {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        let hash = digest.finalize();
        let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("mcp-{hex}")
    }
}

/// Arguments of `get_handoff_status` and `cancel_handoff`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffIdArgs {
    /// The `handoff_id` that `hand_off_to_human` returned.
    pub handoff_id: String,
    /// For `cancel_handoff`: why, in a few words (e.g. "customer hung up").
    #[serde(default)]
    pub reason: String,
}
