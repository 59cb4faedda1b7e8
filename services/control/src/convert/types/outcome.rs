//! Wrap-ups and outcomes: the human's three judgements, as the API shows
//! them and the store keeps them.

use baton_proto::handoff::v1 as api;
use baton_proto::types::v1 as pb;

use crate::convert::{ms_of, timestamp_of};
use crate::domain::outcome::{OutcomeSource, RecordedOutcome};
use crate::domain::{Outcome, WrapUp};

pub fn wrap_up(wrap_up: &WrapUp) -> pb::WrapUp {
    let outcome = wrap_up.outcome;
    pb::WrapUp {
        disposition: wrap_up.disposition.clone(),
        notes: wrap_up.notes.clone(),
        instruction: wrap_up.instruction.clone(),
        context_sufficient: judgement(outcome.context_sufficient) as i32,
        customer_repeated: judgement(outcome.customer_repeated) as i32,
        escalation_needed: judgement(outcome.escalation_needed) as i32,
    }
}

pub fn wrap_up_from(wrap_up: pb::WrapUp) -> WrapUp {
    let outcome = judgements_from(
        wrap_up.context_sufficient(),
        wrap_up.customer_repeated(),
        wrap_up.escalation_needed(),
    );
    WrapUp {
        disposition: wrap_up.disposition,
        notes: wrap_up.notes,
        instruction: wrap_up.instruction,
        outcome,
    }
}

/// A handoff's outcome as the API shows it and the store keeps it.
pub fn outcome(recorded: &RecordedOutcome) -> api::Outcome {
    let judgements = recorded.judgements;
    let source = match recorded.source {
        OutcomeSource::WrapUp => api::OutcomeSource::WrapUp,
        OutcomeSource::Recorded => api::OutcomeSource::Recorded,
    };
    api::Outcome {
        context_sufficient: judgement(judgements.context_sufficient) as i32,
        customer_repeated: judgement(judgements.customer_repeated) as i32,
        escalation_needed: judgement(judgements.escalation_needed) as i32,
        source: source as i32,
        record_time: Some(timestamp_of(recorded.recorded_at_ms)),
    }
}

/// `None` for an outcome without a source (never written so).
pub fn outcome_from(outcome: api::Outcome) -> Option<RecordedOutcome> {
    let source = match outcome.source() {
        api::OutcomeSource::WrapUp => OutcomeSource::WrapUp,
        api::OutcomeSource::Recorded => OutcomeSource::Recorded,
        api::OutcomeSource::Unspecified => return None,
    };
    Some(RecordedOutcome {
        judgements: judgements_from(
            outcome.context_sufficient(),
            outcome.customer_repeated(),
            outcome.escalation_needed(),
        ),
        source,
        recorded_at_ms: outcome.record_time.as_ref().map_or(0, ms_of),
    })
}

/// Three answers, each unanswered when unspecified (or of a newer
/// contract).
pub fn judgements_from(
    context_sufficient: pb::Judgement,
    customer_repeated: pb::Judgement,
    escalation_needed: pb::Judgement,
) -> Outcome {
    Outcome {
        context_sufficient: judgement_from(context_sufficient),
        customer_repeated: judgement_from(customer_repeated),
        escalation_needed: judgement_from(escalation_needed),
    }
}

fn judgement(answer: Option<bool>) -> pb::Judgement {
    match answer {
        Some(true) => pb::Judgement::Yes,
        Some(false) => pb::Judgement::No,
        None => pb::Judgement::Unspecified,
    }
}

/// A judgement a newer peer sent that this build does not know is read as
/// not answered.
fn judgement_from(judgement: pb::Judgement) -> Option<bool> {
    match judgement {
        pb::Judgement::Yes => Some(true),
        pb::Judgement::No => Some(false),
        pb::Judgement::Unspecified => None,
    }
}
