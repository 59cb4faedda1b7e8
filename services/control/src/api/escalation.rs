//! EvaluateEscalation: whether a conversation should go to a human, by the
//! tenant's policy, over the whole conversation or turn by turn (the turns
//! kept per conversation by the policy engine).

use baton_proto::handoff::v1::{AiOutcome, EvaluateEscalationRequest, EvaluateEscalationResponse};

use super::validate::{Limits, validate_evaluation};
use crate::convert;
use crate::domain::message::CustomerMessages;
use crate::domain::routing::PerTenant;
use crate::domain::{EscalationDecision, EscalationKind, EscalationLayer, FiredTrigger};
use crate::error::ControlError;
use crate::policy::PolicyEngine;

/// The escalation call, over the policies, the customer messages and the
/// size limits; no store and no connector, so it is tested as it is.
pub(super) struct Escalation<'a> {
    pub policy: &'a PolicyEngine,
    pub messages: &'a PerTenant<CustomerMessages>,
    pub limits: &'a Limits,
}

impl Escalation<'_> {
    pub async fn evaluate(
        &self,
        tenant: &str,
        request: &EvaluateEscalationRequest,
    ) -> Result<EvaluateEscalationResponse, ControlError> {
        validate_evaluation(request, self.limits).map_err(ControlError::InvalidArgument)?;
        let mut decision = self.decide(tenant, request);
        if !decision.ambiguous.is_empty()
            && let Some(judge) = self.policy.judge(tenant)
        {
            self.consult(judge, tenant, request, &mut decision).await;
        }
        if decision.escalate {
            tracing::info!(
                fired = ?decision.fired.iter().map(|f| f.trigger.as_str()).collect::<Vec<_>>(),
                "escalation advised"
            );
        }
        let customer_message = match (&decision.customer_message, decision.escalate) {
            (_, false) => String::new(),
            (Some(message), true) => message.clone(),
            (None, true) => self
                .messages
                .for_tenant(tenant)
                .for_language(&request.language)
                .0
                .to_owned(),
        };
        let decision = EscalationDecision {
            escalate: decision.escalate,
            fired: decision.fired.iter().map(fired_trigger).collect(),
            suggested_route: decision.route.clone().unwrap_or_default(),
            customer_message,
            recommendations: decision.near_misses.clone(),
        };
        Ok(EvaluateEscalationResponse {
            decision: Some(convert::types::decision(&decision)),
        })
    }

    /// The policy's decision: on the request's turns alone when it carries
    /// the whole conversation (forgetting what was kept), else on the
    /// conversation's kept turns with the request's appended.
    fn decide(&self, tenant: &str, request: &EvaluateEscalationRequest) -> baton_policy::Decision {
        let policy = self.policy.for_tenant(tenant);
        let conversation = policy_conversation(request);
        let states = &self.policy.states;
        let id = &request.conversation_id;
        if request.whole_conversation {
            if !id.is_empty() {
                states.remove(tenant, id);
            }
            return baton_policy::evaluate(&policy, &conversation);
        }
        let now = std::time::Instant::now();
        let mut updates = conversation
            .turns
            .into_iter()
            .map(|turn| baton_policy::TurnUpdate {
                turn,
                language: Some(conversation.language.clone()).filter(|l| !l.is_empty()),
                intent: conversation.intent.clone(),
                entity_types: conversation.entity_types.clone(),
                flags: conversation.flags,
            });
        let last = updates.next_back();
        for update in updates {
            states.append(tenant, id, update, now);
        }
        match last {
            Some(update) => states.append_and_evaluate(&policy, tenant, id, update, now),
            None => {
                let mut known = states.get(tenant, id, now).unwrap_or_default();
                known.flags.explicit_request |= conversation.flags.explicit_request;
                known.flags.multi_party_dispute |= conversation.flags.multi_party_dispute;
                known.flags.novel_scenario |= conversation.flags.novel_scenario;
                if conversation.intent.is_some() {
                    known.intent = conversation.intent.clone();
                }
                baton_policy::evaluate(&policy, &known)
            }
        }
    }
}

impl Escalation<'_> {
    /// Asks the tenant's judge about the turn the model was unsure of, and
    /// adds what it finds. Every failure leaves the decision as the rules
    /// and the model made it: the judge can only add a reason to escalate,
    /// and only within its deadline.
    async fn consult(
        &self,
        judge: &baton_policy_judge::Judge,
        tenant: &str,
        request: &EvaluateEscalationRequest,
        decision: &mut baton_policy::Decision,
    ) {
        use baton_policy::Trigger;
        use baton_policy_judge::{JudgeRequest, Labels, Speaker, Turn};
        let unsure = |t: Trigger| {
            decision
                .ambiguous
                .iter()
                .find(|a| a.trigger == t)
                .map(|a| a.turn)
        };
        let (explicit, distress) = (unsure(Trigger::ExplicitRequest), unsure(Trigger::Distress));
        let (labels, turn) = match (explicit, distress) {
            (Some(e), Some(d)) if e == d => (Labels::Both, e),
            (Some(e), _) => (Labels::ExplicitRequest, e),
            (None, Some(d)) => (Labels::Distress, d),
            (None, None) => return,
        };
        // The turns as the policy saw them: the request's own, or the
        // conversation kept turn by turn.
        let conversation = if request.whole_conversation {
            policy_conversation(request)
        } else {
            let now = std::time::Instant::now();
            match self
                .policy
                .states
                .get(tenant, &request.conversation_id, now)
            {
                Some(kept) => kept,
                None => return,
            }
        };
        let Some(text) = conversation.turns.get(turn).map(|t| &t.text) else {
            return;
        };
        // What leaves for the judge is redacted, as for connectors.
        let redacted = |text: &str| baton_redaction::redact(text).text;
        let earlier = conversation.turns[..turn]
            .iter()
            .rev()
            .take(baton_policy_judge::MAX_EARLIER_TURNS)
            .rev()
            .filter_map(|t| {
                let speaker = match t.speaker {
                    baton_policy::Speaker::Customer => Speaker::Customer,
                    baton_policy::Speaker::Ai => Speaker::Ai,
                    baton_policy::Speaker::Human => Speaker::Human,
                    baton_policy::Speaker::System => return None,
                };
                Some(Turn::new(speaker, redacted(&t.text)))
            });
        let asked = JudgeRequest::new(&conversation.language, redacted(text), labels)
            .with_earlier_turns(earlier);
        match judge.judge(asked).await {
            Ok(verdict) => {
                let policy = self.policy.for_tenant(tenant);
                let reason = redacted(&verdict.reason);
                for (trigger, found, asked) in [
                    (Trigger::ExplicitRequest, verdict.explicit_request, explicit),
                    (Trigger::Distress, verdict.distress, distress),
                ] {
                    // Only what was asked about, on the turn asked about.
                    if found && asked == Some(turn) {
                        decision.add_judged(&policy, &conversation.language, trigger, &reason);
                    }
                }
                tracing::info!(
                    explicit_request = verdict.explicit_request,
                    distress = verdict.distress,
                    "judge consulted"
                );
            }
            Err(error) => tracing::warn!(
                reason = error.reason(),
                "judge not available; the decision stays the rules' and the model's"
            ),
        }
    }
}

/// The request in the policy engine's terms.
fn policy_conversation(request: &EvaluateEscalationRequest) -> baton_policy::Conversation {
    use baton_policy::{AiOutcome as Outcome, Speaker as Who};
    use baton_proto::types::v1::Speaker;
    let turns = request
        .turns
        .iter()
        .map(|turn| baton_policy::Turn {
            speaker: match Speaker::try_from(turn.speaker) {
                Ok(Speaker::Ai) => Who::Ai,
                Ok(Speaker::Human) => Who::Human,
                Ok(Speaker::System) => Who::System,
                _ => Who::Customer,
            },
            text: turn.text.clone(),
            distress_score: turn.distress_score,
            ai_outcome: match AiOutcome::try_from(turn.ai_outcome) {
                Ok(AiOutcome::Resolved) => Some(Outcome::Resolved),
                Ok(AiOutcome::NotUnderstood) => Some(Outcome::NotUnderstood),
                Ok(AiOutcome::Failed) => Some(Outcome::Failed),
                _ => None,
            },
        })
        .collect();
    let signals = request.signals.unwrap_or_default();
    baton_policy::Conversation {
        language: request.language.clone(),
        intent: request.intent.as_ref().map(|i| baton_policy::Intent {
            name: i.name.clone(),
            confidence: i.confidence,
        }),
        turns,
        entity_types: request.entity_types.clone(),
        flags: baton_policy::RuntimeFlags {
            explicit_request: signals.explicit_request,
            multi_party_dispute: signals.multi_party_dispute,
            novel_scenario: signals.novel_scenario,
        },
    }
}

fn fired_trigger(fired: &baton_policy::Fired) -> FiredTrigger {
    use baton_policy::Trigger;
    let kind = match fired.trigger {
        Trigger::ExplicitRequest => EscalationKind::ExplicitRequest,
        Trigger::Distress => EscalationKind::Distress,
        Trigger::Complexity => EscalationKind::Complexity,
        Trigger::Compliance => EscalationKind::Compliance,
        Trigger::RepeatedFailure => EscalationKind::RepeatedFailure,
    };
    FiredTrigger {
        kind,
        evidence: fired.evidence.clone(),
        score: fired.score.unwrap_or_default(),
        threshold: fired.threshold.unwrap_or_default(),
        count: fired.count.unwrap_or_default(),
        layer: match fired.layer {
            baton_policy::Layer::Rules => EscalationLayer::Rules,
            baton_policy::Layer::Runtime => EscalationLayer::Runtime,
            baton_policy::Layer::Model => EscalationLayer::Model,
            baton_policy::Layer::Judge => EscalationLayer::Judge,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use baton_proto::handoff::v1::{EvaluatedTurn, RuntimeSignals};
    use baton_proto::types::v1::{EscalationKind, Speaker};

    use super::*;
    use crate::policy::PolicySettings;

    struct Parts {
        policy: PolicyEngine,
        messages: PerTenant<CustomerMessages>,
        limits: Limits,
    }

    impl Parts {
        fn new() -> Self {
            Self::with(PolicySettings::default())
        }

        fn with(settings: PolicySettings) -> Self {
            Self {
                policy: PolicyEngine::new(&settings).expect("valid policy"),
                messages: PerTenant::shared(
                    CustomerMessages::new(&BTreeMap::new(), "en").expect("messages"),
                ),
                limits: Limits::default(),
            }
        }

        fn escalation(&self) -> Escalation<'_> {
            Escalation {
                policy: &self.policy,
                messages: &self.messages,
                limits: &self.limits,
            }
        }

        fn decide(
            &self,
            tenant: &str,
            request: EvaluateEscalationRequest,
        ) -> baton_proto::handoff::v1::EscalationDecision {
            block_on(self.escalation().evaluate(tenant, &request))
                .expect("valid request")
                .decision
                .expect("decision")
        }
    }

    /// The evaluation awaits only a judge, and these policies have none.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    fn not_understood(conversation_id: &str) -> EvaluateEscalationRequest {
        EvaluateEscalationRequest {
            conversation_id: conversation_id.into(),
            turns: vec![EvaluatedTurn {
                speaker: Speaker::Ai as i32,
                text: "Sorry, could you rephrase?".into(),
                distress_score: None,
                ai_outcome: AiOutcome::NotUnderstood as i32,
            }],
            ..Default::default()
        }
    }

    fn kinds(decision: &baton_proto::handoff::v1::EscalationDecision) -> Vec<EscalationKind> {
        decision.fired.iter().map(|f| f.kind()).collect()
    }

    #[test]
    fn kept_turns_belong_to_their_tenant() {
        let parts = Parts::new();
        assert!(!parts.decide("acme", not_understood("call-1")).escalate);
        // The same conversation id of another tenant is another conversation.
        assert!(!parts.decide("globex", not_understood("call-1")).escalate);
        let second = parts.decide("acme", not_understood("call-1"));
        assert_eq!(kinds(&second), [EscalationKind::RepeatedFailure]);
        assert_eq!(second.fired[0].count, 2);
    }

    #[test]
    fn a_whole_conversation_replaces_what_was_kept() {
        let parts = Parts::new();
        assert!(!parts.decide("acme", not_understood("call-2")).escalate);
        let whole = EvaluateEscalationRequest {
            whole_conversation: true,
            ..not_understood("call-2")
        };
        assert!(!parts.decide("acme", whole).escalate);
        // The failure kept before the whole conversation is forgotten.
        assert!(!parts.decide("acme", not_understood("call-2")).escalate);
    }

    fn explicit_signal(conversation_id: &str) -> EvaluateEscalationRequest {
        EvaluateEscalationRequest {
            conversation_id: conversation_id.into(),
            language: "es-MX".into(),
            signals: Some(RuntimeSignals {
                explicit_request: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_signal_without_turns_judges_the_kept_conversation() {
        let parts = Parts::new();
        let first = EvaluateEscalationRequest {
            language: "es-MX".into(),
            ..not_understood("call-3")
        };
        assert!(!parts.decide("acme", first).escalate);
        let decision = parts.decide("acme", explicit_signal("call-3"));
        assert!(decision.escalate);
        assert_eq!(kinds(&decision), [EscalationKind::ExplicitRequest]);
        let policy = parts.policy.for_tenant("acme");
        assert_eq!(
            Some(decision.customer_message.as_str()),
            policy.customer_message("es-MX")
        );
    }

    #[test]
    fn without_a_phrasing_of_its_own_the_policy_uses_the_service_message() {
        let mut settings = PolicySettings::default();
        settings.default.customer_messages.clear();
        let parts = Parts::with(settings);
        let decision = parts.decide("acme", explicit_signal("call-5"));
        assert!(decision.escalate);
        assert_eq!(
            decision.customer_message,
            parts.messages.for_tenant("acme").for_language("es-MX").0
        );
        assert!(decision.customer_message.starts_with("Le comunico"));
    }

    #[test]
    fn the_service_message_is_the_tenants_own() {
        let mut settings = PolicySettings::default();
        settings.default.customer_messages.clear();
        let mut parts = Parts::with(settings);
        let acme = BTreeMap::from([("es".to_owned(), "Acme: le paso con un agente.".to_owned())]);
        parts.messages =
            PerTenant::shared(CustomerMessages::new(&BTreeMap::new(), "en").expect("messages"))
                .with_tenant(
                    "acme",
                    CustomerMessages::new(&acme, "en").expect("messages"),
                );
        let acme = parts.decide("acme", explicit_signal("call-6"));
        assert_eq!(acme.customer_message, "Acme: le paso con un agente.");
        let globex = parts.decide("globex", explicit_signal("call-6"));
        assert!(globex.customer_message.starts_with("Le comunico"));
    }

    #[test]
    fn no_escalation_tells_the_customer_nothing() {
        let parts = Parts::new();
        let decision = parts.decide("acme", not_understood("call-4"));
        assert!(!decision.escalate);
        assert!(decision.customer_message.is_empty());
    }

    #[test]
    fn a_bad_request_names_its_fields() {
        let parts = Parts::new();
        let error = block_on(parts.escalation().evaluate("acme", &not_understood("")))
            .expect_err("no conversation id");
        let ControlError::InvalidArgument(violations) = error else {
            panic!("not an invalid argument: {error:?}");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["conversation_id"]);
    }

    /// A policy whose model is unsure of every customer turn (its threshold
    /// at 1, everything within the margin), judged by a local endpoint that
    /// checks the chat-completions contract.
    async fn judged(
        behaviour: baton_policy_judge::fake_endpoint::Behaviour,
    ) -> (Parts, baton_policy_judge::fake_endpoint::FakeOpenAi) {
        let endpoint =
            baton_policy_judge::fake_endpoint::FakeOpenAi::start(behaviour, Some("sk-test")).await;
        let mut judge = baton_policy_judge::JudgeConfig::new(endpoint.base_url(), "judge-model");
        judge.api_key = Some(baton_policy_judge::ApiKey::new("sk-test"));
        let mut acme = baton_policy::PolicyConfig::default();
        acme.model.explicit_request_threshold = Some(1.0);
        acme.model.distress_threshold = Some(1.0);
        acme.model.ambiguous_margin = 1.0;
        acme.explicit_request.route = Some("humans".into());
        let settings = PolicySettings {
            tenants: BTreeMap::from([("acme".to_owned(), acme)]),
            judges: BTreeMap::from([("acme".to_owned(), judge)]),
            ..Default::default()
        };
        (Parts::with(settings), endpoint)
    }

    /// The AI offers a person (the fake judge's cue, "speak to a person",
    /// is in the AI's turn) and the customer answers with words no rule
    /// reads as a request.
    fn customer_accepts(conversation_id: &str, answer: &str) -> EvaluateEscalationRequest {
        let turn = |speaker: Speaker, text: &str| EvaluatedTurn {
            speaker: speaker as i32,
            text: text.into(),
            ..Default::default()
        };
        EvaluateEscalationRequest {
            conversation_id: conversation_id.into(),
            language: "en".into(),
            turns: vec![
                turn(
                    Speaker::Ai,
                    "I can look into it, or you can speak to a person.",
                ),
                turn(Speaker::Customer, answer),
            ],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_judge_adds_what_it_finds_on_an_unsure_turn_with_the_text_redacted() {
        use baton_policy_judge::fake_endpoint::Behaviour;
        let (parts, endpoint) = judged(Behaviour::Decide).await;
        let said = "yes, that one please. my card is 4111 1111 1111 1111";
        let decision = parts
            .escalation()
            .evaluate("acme", &customer_accepts("call-j1", said))
            .await
            .expect("valid")
            .decision
            .expect("decision");
        assert!(decision.escalate);
        assert_eq!(kinds(&decision), [EscalationKind::ExplicitRequest]);
        assert_eq!(
            decision.fired[0].layer(),
            baton_proto::handoff::v1::EscalationLayer::Judge
        );
        assert!(decision.fired[0].evidence.starts_with("judge: "));
        assert_eq!(decision.suggested_route, "humans");
        // What left for the judge met the contract and held no card number.
        let bodies = endpoint.bodies();
        assert_eq!(bodies.len(), 1, "{:?}", endpoint.rejections());
        let sent = bodies[0].to_string();
        assert!(!sent.contains("4111"), "{sent}");
        assert!(sent.contains("that one please"));
        // A tenant without a judge: the same unsure turn stays unescalated.
        let other = parts
            .escalation()
            .evaluate(
                "globex",
                &customer_accepts("call-j2", "yes, that one please"),
            )
            .await
            .expect("valid");
        assert_eq!(endpoint.requests(), 1, "globex has no judge");
        assert!(other.decision.is_some());
    }

    #[tokio::test]
    async fn a_failing_judge_leaves_the_decision_as_it_was() {
        use baton_policy_judge::fake_endpoint::Behaviour;
        for behaviour in [
            Behaviour::Status(500),
            Behaviour::Body("not json".into()),
            Behaviour::Sleep(std::time::Duration::from_secs(3)),
        ] {
            let (parts, endpoint) = judged(behaviour.clone()).await;
            let decision = parts
                .escalation()
                .evaluate("acme", &customer_accepts("call-j3", "yes, that one please"))
                .await
                .expect("valid")
                .decision
                .expect("decision");
            assert!(!decision.escalate, "{behaviour:?}");
            assert!(decision.fired.is_empty());
            assert_eq!(endpoint.requests(), 1, "{behaviour:?}");
        }
    }
}
