//! The domain's values to and from their `baton.type.v1`,
//! `baton.handoff.v1` and `baton.connector.v1` forms: targets, transfer
//! modes, failure reasons, escalation decisions and context capabilities
//! here; wrap-ups and outcomes in `outcome`, channels and availability in
//! `availability`, callbacks in `callback`.

mod availability;
mod callback;
mod outcome;

pub use availability::{availability, availability_from, channel, channel_from};
pub use callback::{callback, callback_from, handoff_callback};
pub use outcome::{judgements_from, outcome, outcome_from, wrap_up, wrap_up_from};

use baton_proto::connector::v1 as wire;
use baton_proto::handoff::v1 as api;
use baton_proto::types::v1 as pb;

use crate::domain::{
    ConcreteTarget, ContextCapability, ContextMechanism, ContextReference, EscalationDecision,
    EscalationKind, EscalationLayer, FailureReason, FiredTrigger, RequestedTarget, TargetKind,
    TransferMode,
};

pub fn target(target: &ConcreteTarget) -> pb::Target {
    let kind = match target.clone() {
        ConcreteTarget::Queue { name, skills } => {
            pb::target::Kind::Queue(pb::QueueTarget { name, skills })
        }
        ConcreteTarget::PhoneNumber { number } => pb::target::Kind::PhoneNumber(number),
        ConcreteTarget::SipUri { uri } => pb::target::Kind::SipUri(uri),
    };
    pb::Target { kind: Some(kind) }
}

pub fn requested_target(requested: &RequestedTarget) -> pb::Target {
    match requested {
        RequestedTarget::Concrete(concrete) => target(concrete),
        RequestedTarget::Route(name) => pb::Target {
            kind: Some(pb::target::Kind::Route(name.clone())),
        },
        RequestedTarget::Unset => pb::Target::default(),
    }
}

pub fn requested_target_from(target: pb::Target) -> RequestedTarget {
    match target.kind {
        Some(pb::target::Kind::Queue(queue)) => RequestedTarget::Concrete(ConcreteTarget::Queue {
            name: queue.name,
            skills: queue.skills,
        }),
        Some(pb::target::Kind::PhoneNumber(number)) => {
            RequestedTarget::Concrete(ConcreteTarget::PhoneNumber { number })
        }
        Some(pb::target::Kind::SipUri(uri)) => {
            RequestedTarget::Concrete(ConcreteTarget::SipUri { uri })
        }
        Some(pb::target::Kind::Route(name)) => RequestedTarget::Route(name),
        None => RequestedTarget::Unset,
    }
}

/// A connector's target kind; `None` for one the domain does not serve.
pub fn target_kind_from(kind: pb::TargetKind) -> Option<TargetKind> {
    match kind {
        pb::TargetKind::Queue => Some(TargetKind::Queue),
        pb::TargetKind::PhoneNumber => Some(TargetKind::PhoneNumber),
        pb::TargetKind::SipUri => Some(TargetKind::SipUri),
        pb::TargetKind::Unspecified => None,
    }
}

/// A target kind's name in the contract, as the logs give it.
pub fn target_kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Queue => pb::TargetKind::Queue,
        TargetKind::PhoneNumber => pb::TargetKind::PhoneNumber,
        TargetKind::SipUri => pb::TargetKind::SipUri,
    }
    .as_str_name()
}

/// A request's mode; unspecified means warm.
pub fn mode_from(mode: pb::TransferMode) -> TransferMode {
    match mode {
        pb::TransferMode::Blind => TransferMode::Blind,
        pb::TransferMode::Attended => TransferMode::Attended,
        pb::TransferMode::Warm | pb::TransferMode::Unspecified => TransferMode::Warm,
    }
}

pub fn mode(mode: TransferMode) -> pb::TransferMode {
    match mode {
        TransferMode::Warm => pb::TransferMode::Warm,
        TransferMode::Blind => pb::TransferMode::Blind,
        TransferMode::Attended => pb::TransferMode::Attended,
    }
}

/// The wire's (and the store's) number of a failure reason.
pub fn failure_reason(reason: FailureReason) -> i32 {
    use FailureReason as F;
    let reason = match reason {
        F::Unspecified => pb::FailureReason::Unspecified,
        F::Busy => pb::FailureReason::Busy,
        F::NoAnswer => pb::FailureReason::NoAnswer,
        F::Rejected => pb::FailureReason::Rejected,
        F::Unreachable => pb::FailureReason::Unreachable,
        F::NoAgents => pb::FailureReason::NoAgents,
        F::WaitTooLong => pb::FailureReason::WaitTooLong,
        F::DeadlineExceeded => pb::FailureReason::DeadlineExceeded,
        F::ConnectorError => pb::FailureReason::ConnectorError,
        F::Unsupported => pb::FailureReason::Unsupported,
        F::AllTargetsFailed => pb::FailureReason::AllTargetsFailed,
        F::Cancelled => pb::FailureReason::Cancelled,
        F::ConnectorLost => pb::FailureReason::ConnectorLost,
        F::Interrupted => pb::FailureReason::Interrupted,
    };
    reason as i32
}

/// A failure reason's name in the contract, as metrics label it.
pub fn failure_reason_name(reason: FailureReason) -> &'static str {
    pb::FailureReason::try_from(failure_reason(reason))
        .unwrap_or(pb::FailureReason::Unspecified)
        .as_str_name()
}

/// A failure reason by its number; one the contract does not know counts
/// as none.
pub fn failure_reason_from(number: i32) -> FailureReason {
    use FailureReason as F;
    match pb::FailureReason::try_from(number).unwrap_or(pb::FailureReason::Unspecified) {
        pb::FailureReason::Unspecified => F::Unspecified,
        pb::FailureReason::Busy => F::Busy,
        pb::FailureReason::NoAnswer => F::NoAnswer,
        pb::FailureReason::Rejected => F::Rejected,
        pb::FailureReason::Unreachable => F::Unreachable,
        pb::FailureReason::NoAgents => F::NoAgents,
        pb::FailureReason::WaitTooLong => F::WaitTooLong,
        pb::FailureReason::DeadlineExceeded => F::DeadlineExceeded,
        pb::FailureReason::ConnectorError => F::ConnectorError,
        pb::FailureReason::Unsupported => F::Unsupported,
        pb::FailureReason::AllTargetsFailed => F::AllTargetsFailed,
        pb::FailureReason::Cancelled => F::Cancelled,
        pb::FailureReason::ConnectorLost => F::ConnectorLost,
        pb::FailureReason::Interrupted => F::Interrupted,
    }
}

pub fn escalation_kind(kind: EscalationKind) -> i32 {
    use EscalationKind as K;
    match kind {
        K::Unspecified => pb::EscalationKind::Unspecified as i32,
        K::ExplicitRequest => pb::EscalationKind::ExplicitRequest as i32,
        K::Distress => pb::EscalationKind::Distress as i32,
        K::Complexity => pb::EscalationKind::Complexity as i32,
        K::Compliance => pb::EscalationKind::Compliance as i32,
        K::RepeatedFailure => pb::EscalationKind::RepeatedFailure as i32,
        K::Other => pb::EscalationKind::Other as i32,
        K::Unknown(number) => number,
    }
}

fn escalation_layer(layer: EscalationLayer) -> i32 {
    use EscalationLayer as L;
    use api::EscalationLayer as P;
    match layer {
        L::Unspecified => P::Unspecified as i32,
        L::Rules => P::Rules as i32,
        L::Runtime => P::Runtime as i32,
        L::Model => P::Model as i32,
        L::Judge => P::Judge as i32,
        L::Unknown(number) => number,
    }
}

fn escalation_layer_from(number: i32) -> EscalationLayer {
    use EscalationLayer as L;
    use api::EscalationLayer as P;
    match P::try_from(number) {
        Ok(P::Unspecified) => L::Unspecified,
        Ok(P::Rules) => L::Rules,
        Ok(P::Runtime) => L::Runtime,
        Ok(P::Model) => L::Model,
        Ok(P::Judge) => L::Judge,
        Err(_) => L::Unknown(number),
    }
}

pub fn escalation_kind_from(number: i32) -> EscalationKind {
    use EscalationKind as K;
    match pb::EscalationKind::try_from(number) {
        Ok(pb::EscalationKind::Unspecified) => K::Unspecified,
        Ok(pb::EscalationKind::ExplicitRequest) => K::ExplicitRequest,
        Ok(pb::EscalationKind::Distress) => K::Distress,
        Ok(pb::EscalationKind::Complexity) => K::Complexity,
        Ok(pb::EscalationKind::Compliance) => K::Compliance,
        Ok(pb::EscalationKind::RepeatedFailure) => K::RepeatedFailure,
        Ok(pb::EscalationKind::Other) => K::Other,
        Err(_) => K::Unknown(number),
    }
}

pub fn decision(decision: &EscalationDecision) -> api::EscalationDecision {
    api::EscalationDecision {
        escalate: decision.escalate,
        fired: decision
            .fired
            .iter()
            .map(|fired| api::FiredTrigger {
                kind: escalation_kind(fired.kind),
                evidence: fired.evidence.clone(),
                score: fired.score,
                threshold: fired.threshold,
                count: fired.count,
                layer: escalation_layer(fired.layer),
            })
            .collect(),
        suggested_route: decision.suggested_route.clone(),
        customer_message: decision.customer_message.clone(),
        recommendations: decision.recommendations.clone(),
    }
}

pub fn decision_from(decision: api::EscalationDecision) -> EscalationDecision {
    EscalationDecision {
        escalate: decision.escalate,
        fired: decision
            .fired
            .into_iter()
            .map(|fired| FiredTrigger {
                kind: escalation_kind_from(fired.kind),
                evidence: fired.evidence,
                score: fired.score,
                threshold: fired.threshold,
                count: fired.count,
                layer: escalation_layer_from(fired.layer),
            })
            .collect(),
        suggested_route: decision.suggested_route,
        customer_message: decision.customer_message,
        recommendations: decision.recommendations,
    }
}

pub fn mechanism(mechanism: ContextMechanism) -> wire::ContextMechanism {
    match mechanism {
        ContextMechanism::SipUserToUser => wire::ContextMechanism::SipUserToUser,
        ContextMechanism::SipHeaders => wire::ContextMechanism::SipHeaders,
        ContextMechanism::ScreenPopUrl => wire::ContextMechanism::ScreenPopUrl,
        ContextMechanism::TaskAttributes => wire::ContextMechanism::TaskAttributes,
        ContextMechanism::Webhook => wire::ContextMechanism::Webhook,
        ContextMechanism::Structured => wire::ContextMechanism::Structured,
    }
}

/// A connector's capability; `None` for a mechanism unspecified or of a
/// newer contract, which nothing is fitted to.
pub fn capability_from(capability: &wire::ContextCapability) -> Option<ContextCapability> {
    let mechanism = match wire::ContextMechanism::try_from(capability.mechanism).ok()? {
        wire::ContextMechanism::SipUserToUser => ContextMechanism::SipUserToUser,
        wire::ContextMechanism::SipHeaders => ContextMechanism::SipHeaders,
        wire::ContextMechanism::ScreenPopUrl => ContextMechanism::ScreenPopUrl,
        wire::ContextMechanism::TaskAttributes => ContextMechanism::TaskAttributes,
        wire::ContextMechanism::Webhook => ContextMechanism::Webhook,
        wire::ContextMechanism::Structured => ContextMechanism::Structured,
        wire::ContextMechanism::Unspecified => return None,
    };
    Some(ContextCapability {
        mechanism,
        max_bytes: capability.max_bytes,
    })
}

pub fn reference(reference: &ContextReference) -> wire::ContextReference {
    wire::ContextReference {
        handoff_id: reference.handoff_id.clone(),
        token: reference.token.clone(),
        context_url: reference.context_url.clone(),
        screen_pop_url: reference.screen_pop_url.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_reason_keeps_its_number_and_unknown_numbers_are_none() {
        for number in 0..=13 {
            assert_eq!(failure_reason(failure_reason_from(number)), number);
        }
        assert_eq!(failure_reason_from(9999), FailureReason::Unspecified);
    }

    #[test]
    fn a_decision_round_trips_with_kinds_of_a_newer_contract() {
        for number in 0..=7 {
            assert_eq!(escalation_kind(escalation_kind_from(number)), number);
            assert_eq!(escalation_layer(escalation_layer_from(number)), number);
        }
        let wire = api::EscalationDecision {
            escalate: true,
            fired: vec![api::FiredTrigger {
                kind: 42,
                evidence: "said 'agent'".into(),
                score: 0.5,
                threshold: 0.4,
                count: 2,
                layer: 9,
            }],
            suggested_route: "billing".into(),
            customer_message: "One moment".into(),
            recommendations: vec!["near".into()],
        };
        assert_eq!(decision(&decision_from(wire.clone())), wire);
    }

    #[test]
    fn targets_round_trip() {
        for wire in [
            pb::Target::default(),
            pb::Target {
                kind: Some(pb::target::Kind::Route("billing".into())),
            },
            pb::Target {
                kind: Some(pb::target::Kind::Queue(pb::QueueTarget {
                    name: "q".into(),
                    skills: vec!["es".into()],
                })),
            },
            pb::Target {
                kind: Some(pb::target::Kind::SipUri("sip:a@b".into())),
            },
            pb::Target {
                kind: Some(pb::target::Kind::PhoneNumber("+14155550100".into())),
            },
        ] {
            assert_eq!(requested_target(&requested_target_from(wire.clone())), wire);
        }
    }
}
