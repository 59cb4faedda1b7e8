//! Did the handoff work? The human's judgements of one handoff, where they
//! came from, when a runtime may record them (`RecordOutcome`), and the
//! figures of many handoffs: time to a human, abandonment, and the
//! judgements, per route, escalation trigger and connector.

use std::collections::HashMap;
use std::time::Duration;

use super::decision::EscalationKind;
use super::model::{Handoff, Outcome};
use super::state::HandoffState;

/// Where a handoff's judgements came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeSource {
    /// The human's wrap-up, through the connector.
    WrapUp,
    /// `RecordOutcome`, from a runtime or an integration.
    Recorded,
}

/// A handoff's judgements, with their source and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedOutcome {
    pub judgements: Outcome,
    pub source: OutcomeSource,
    pub recorded_at_ms: i64,
}

impl Outcome {
    /// True when at least one question was answered.
    pub fn is_answered(&self) -> bool {
        self.context_sufficient.is_some()
            || self.customer_repeated.is_some()
            || self.escalation_needed.is_some()
    }
}

impl Handoff {
    /// The handoff's outcome: the one recorded with `RecordOutcome`, else
    /// the judgements of the human's wrap-up (recorded when the handoff
    /// ended), else none.
    pub fn outcome(&self) -> Option<RecordedOutcome> {
        if self.recorded_outcome.is_some() {
            return self.recorded_outcome;
        }
        let judgements = self.wrap_up.as_ref()?.outcome;
        judgements.is_answered().then_some(RecordedOutcome {
            judgements,
            source: OutcomeSource::WrapUp,
            recorded_at_ms: self.updated_at_ms,
        })
    }
}

/// What `RecordOutcome` does with a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Store the judgements.
    Write,
    /// The same judgements are there: answer the handoff as it is.
    AlreadyRecorded,
    /// Different judgements are there.
    Conflict(OutcomeSource),
    /// No human had the customer, or the handoff has not ended.
    NotEnded(HandoffState),
}

/// Whether `judgements` may be recorded on `handoff`. Only a handoff that
/// reached a human and ended can be judged, and only once: a retry with
/// the same answers is not a second judgement.
pub fn recording(handoff: &Handoff, judgements: Outcome) -> Recording {
    if !matches!(
        handoff.state,
        HandoffState::Completed | HandoffState::HandedBack
    ) {
        return Recording::NotEnded(handoff.state);
    }
    match handoff.outcome() {
        None => Recording::Write,
        Some(existing) if existing.judgements == judgements => Recording::AlreadyRecorded,
        Some(existing) => Recording::Conflict(existing.source),
    }
}

/// What the figures need of one handoff.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeFact {
    pub state: HandoffState,
    pub created_at_ms: i64,
    /// The first CONNECTED, if any.
    pub connected_at_ms: Option<i64>,
    pub group: OutcomeGroupKey,
    pub judgements: Option<Outcome>,
}

/// How handoffs are grouped: the route the handoff named (empty for a
/// direct target), the kind of its escalation reason, and the connector
/// of the last target tried (empty when none was).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutcomeGroupKey {
    pub route: String,
    pub trigger: EscalationKind,
    pub connector: String,
}

/// Yes and no answers to one question.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JudgementCounts {
    pub yes: u64,
    pub no: u64,
}

impl JudgementCounts {
    fn add(&mut self, answer: Option<bool>) {
        match answer {
            Some(true) => self.yes += 1,
            Some(false) => self.no += 1,
            None => {}
        }
    }

    /// yes / (yes + no); `None` when nobody answered.
    pub fn rate(&self) -> Option<f64> {
        ratio(self.yes, self.yes + self.no)
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    // Counts stay far below 2^52: exact as floats.
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// What a set of handoffs achieved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeFigures {
    pub handoffs: u64,
    pub reached_human: u64,
    /// Cancelled before a human had the customer.
    pub abandoned: u64,
    pub failed: u64,
    pub time_to_human_p50: Option<Duration>,
    pub time_to_human_p95: Option<Duration>,
    pub context_sufficient: JudgementCounts,
    pub customer_repeated: JudgementCounts,
    pub escalation_needed: JudgementCounts,
}

impl OutcomeFigures {
    /// Of the handoffs no longer waiting, the share whose customer gave
    /// up; `None` when none is.
    pub fn abandon_rate(&self) -> Option<f64> {
        ratio(
            self.abandoned,
            self.reached_human + self.abandoned + self.failed,
        )
    }
}

/// The figures of a window's handoffs, in total and per group, counted one
/// handoff at a time so that a window is read page by page.
#[derive(Debug, Default)]
pub struct OutcomeTally {
    total: Tally,
    groups: HashMap<OutcomeGroupKey, Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    figures: OutcomeFigures,
    /// Times to a human in milliseconds, for the percentiles.
    times_to_human: Vec<u64>,
}

impl Tally {
    fn add(&mut self, fact: &OutcomeFact) {
        let figures = &mut self.figures;
        figures.handoffs += 1;
        if let Some(connected) = fact.connected_at_ms {
            figures.reached_human += 1;
            let waited = connected.saturating_sub(fact.created_at_ms);
            self.times_to_human.push(u64::try_from(waited).unwrap_or(0));
        } else {
            match fact.state {
                HandoffState::Cancelled => figures.abandoned += 1,
                HandoffState::Failed => figures.failed += 1,
                _ => {}
            }
        }
        if let Some(judgements) = fact.judgements {
            figures
                .context_sufficient
                .add(judgements.context_sufficient);
            figures.customer_repeated.add(judgements.customer_repeated);
            figures.escalation_needed.add(judgements.escalation_needed);
        }
    }

    fn figures(mut self) -> OutcomeFigures {
        self.times_to_human.sort_unstable();
        let mut figures = self.figures;
        figures.time_to_human_p50 = percentile(&self.times_to_human, 50);
        figures.time_to_human_p95 = percentile(&self.times_to_human, 95);
        figures
    }
}

/// The nearest-rank percentile of sorted milliseconds.
fn percentile(sorted_ms: &[u64], percent: usize) -> Option<Duration> {
    if sorted_ms.is_empty() {
        return None;
    }
    let rank = (sorted_ms.len() * percent).div_ceil(100).max(1);
    Some(Duration::from_millis(sorted_ms[rank - 1]))
}

impl OutcomeTally {
    pub fn add(&mut self, fact: &OutcomeFact) {
        self.total.add(fact);
        self.groups.entry(fact.group.clone()).or_default().add(fact);
    }

    /// The total, and the groups largest first (then by key, so that the
    /// order is stable).
    pub fn finish(self) -> (OutcomeFigures, Vec<(OutcomeGroupKey, OutcomeFigures)>) {
        let mut groups: Vec<_> = self
            .groups
            .into_iter()
            .map(|(key, tally)| (key, tally.figures()))
            .collect();
        groups.sort_by(|(a_key, a), (b_key, b)| {
            b.handoffs.cmp(&a.handoffs).then_with(|| a_key.cmp(b_key))
        });
        (self.total.figures(), groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WrapUp;

    fn key(route: &str, connector: &str) -> OutcomeGroupKey {
        OutcomeGroupKey {
            route: route.into(),
            trigger: EscalationKind::ExplicitRequest,
            connector: connector.into(),
        }
    }

    fn fact(state: HandoffState, waited_ms: Option<i64>, group: OutcomeGroupKey) -> OutcomeFact {
        OutcomeFact {
            state,
            created_at_ms: 1_000,
            connected_at_ms: waited_ms.map(|w| 1_000 + w),
            group,
            judgements: None,
        }
    }

    fn yes_no(context_sufficient: bool, customer_repeated: bool) -> Outcome {
        Outcome {
            context_sufficient: Some(context_sufficient),
            customer_repeated: Some(customer_repeated),
            escalation_needed: None,
        }
    }

    #[test]
    fn figures_count_humans_reached_abandons_failures_and_answers() {
        let mut tally = OutcomeTally::default();
        let billing = key("billing", "queue");
        for waited in [1_000, 2_000, 3_000, 4_000] {
            let mut connected = fact(HandoffState::Completed, Some(waited), billing.clone());
            connected.judgements = Some(yes_no(waited < 4_000, waited == 4_000));
            tally.add(&connected);
        }
        tally.add(&fact(HandoffState::Cancelled, None, billing.clone()));
        tally.add(&fact(HandoffState::Failed, None, key("", "sip")));
        // Still waiting: neither abandoned nor failed yet.
        tally.add(&fact(HandoffState::Queued, None, billing.clone()));
        // Cancelled after a human had the customer is not an abandon.
        tally.add(&fact(HandoffState::Cancelled, Some(500), key("", "sip")));

        let (total, groups) = tally.finish();
        assert_eq!(total.handoffs, 8);
        assert_eq!(total.reached_human, 5);
        assert_eq!((total.abandoned, total.failed), (1, 1));
        assert_eq!(total.abandon_rate(), Some(1.0 / 7.0));
        assert_eq!(total.time_to_human_p50, Some(Duration::from_secs(2)));
        assert_eq!(total.time_to_human_p95, Some(Duration::from_secs(4)));
        assert_eq!(total.context_sufficient, JudgementCounts { yes: 3, no: 1 });
        assert_eq!(total.context_sufficient.rate(), Some(0.75));
        assert_eq!(total.customer_repeated, JudgementCounts { yes: 1, no: 3 });
        assert_eq!(total.escalation_needed.rate(), None);

        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, billing);
        assert_eq!(groups[0].1.handoffs, 6);
        assert_eq!(groups[0].1.abandoned, 1);
        assert_eq!(groups[1].0, key("", "sip"));
        assert_eq!(
            groups[1].1.time_to_human_p50,
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn no_handoffs_no_rates() {
        let (total, groups) = OutcomeTally::default().finish();
        assert_eq!(total, OutcomeFigures::default());
        assert_eq!(total.abandon_rate(), None);
        assert_eq!(total.time_to_human_p50, None);
        assert!(groups.is_empty());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&ms, 50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&ms, 95), Some(Duration::from_millis(95)));
        assert_eq!(percentile(&[7], 95), Some(Duration::from_millis(7)));
    }

    fn ended(state: HandoffState) -> Handoff {
        Handoff {
            state,
            updated_at_ms: 42,
            ..Handoff::default()
        }
    }

    #[test]
    fn an_outcome_is_recorded_once_and_only_after_a_human_had_the_customer() {
        let judged = yes_no(true, false);
        for state in [
            HandoffState::Queued,
            HandoffState::Connected,
            HandoffState::Failed,
            HandoffState::Cancelled,
        ] {
            assert_eq!(recording(&ended(state), judged), Recording::NotEnded(state));
        }
        let mut handoff = ended(HandoffState::Completed);
        assert_eq!(recording(&handoff, judged), Recording::Write);
        handoff.recorded_outcome = Some(RecordedOutcome {
            judgements: judged,
            source: OutcomeSource::Recorded,
            recorded_at_ms: 7,
        });
        assert_eq!(recording(&handoff, judged), Recording::AlreadyRecorded);
        assert_eq!(
            recording(&handoff, yes_no(false, false)),
            Recording::Conflict(OutcomeSource::Recorded)
        );
    }

    #[test]
    fn the_wrap_up_judgements_are_the_outcome_until_one_is_recorded() {
        let mut handoff = ended(HandoffState::HandedBack);
        handoff.wrap_up = Some(WrapUp::default());
        // A wrap-up without answers judges nothing.
        assert_eq!(handoff.outcome(), None);
        assert_eq!(recording(&handoff, yes_no(true, true)), Recording::Write);
        handoff.wrap_up = Some(WrapUp {
            outcome: yes_no(true, true),
            ..WrapUp::default()
        });
        assert_eq!(
            handoff.outcome(),
            Some(RecordedOutcome {
                judgements: yes_no(true, true),
                source: OutcomeSource::WrapUp,
                recorded_at_ms: 42,
            })
        );
        assert_eq!(
            recording(&handoff, yes_no(true, false)),
            Recording::Conflict(OutcomeSource::WrapUp)
        );
    }
}
