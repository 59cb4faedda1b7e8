//! Did the handoffs work? RecordOutcome (the human's judgements of one
//! handoff, for humans Baton cannot ask at wrap-up) and GetOutcomeMetrics
//! (what a tenant's handoffs of a window achieved). The rules and the
//! counting are the domain's (`domain::outcome`); this module reads the
//! requests and the store.

use std::time::Duration;

use baton_proto::handoff::v1 as api;
use baton_service_kit::status::FieldViolation;

use super::HandoffApi;
use super::fields::{now_ms, parse_id, reject_any};
use crate::convert;
use crate::domain::outcome::{
    JudgementCounts, OutcomeFact, OutcomeFigures, OutcomeGroupKey, OutcomeSource, OutcomeTally,
    RecordedOutcome, Recording, recording,
};
use crate::domain::{Handoff, RequestedTarget};
use crate::error::ControlError;
use crate::store::OutcomeWindow;

/// The window when the request names none.
const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest window one request may ask for.
const MAX_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);
/// The most handoffs one answer counts (`truncated` beyond).
const MAX_COUNTED: usize = 100_000;
/// Handoffs read from the store at a time: memory stays bounded by a page
/// and the percentiles' durations, whatever the window.
const PAGE: usize = 1_000;

impl HandoffApi {
    /// RecordOutcome for `tenant`.
    pub(super) async fn record_outcome(
        &self,
        tenant: &str,
        request: api::RecordOutcomeRequest,
    ) -> Result<api::RecordOutcomeResponse, ControlError> {
        parse_id(&request.handoff_id)?;
        let judgements = convert::types::judgements_from(
            request.context_sufficient(),
            request.customer_repeated(),
            request.escalation_needed(),
        );
        if !judgements.is_answered() {
            return Err(ControlError::invalid_field(
                "context_sufficient",
                "answer at least one of context_sufficient, customer_repeated and \
                 escalation_needed",
            ));
        }
        let id = &request.handoff_id;
        let mut handoff = self.store.get(tenant, id).await?;
        // Twice at most: a concurrent record that stored first is read back
        // and judged like any other.
        for _ in 0..2 {
            match recording(&handoff, judgements) {
                Recording::Write => {
                    let recorded = RecordedOutcome {
                        judgements,
                        source: OutcomeSource::Recorded,
                        recorded_at_ms: now_ms(),
                    };
                    if self.store.record_outcome(tenant, id, &recorded).await? {
                        crate::metrics::metrics().judged(&handoff, &judgements);
                        handoff.recorded_outcome = Some(recorded);
                        return Ok(answer(&handoff));
                    }
                    handoff = self.store.get(tenant, id).await?;
                }
                Recording::AlreadyRecorded => return Ok(answer(&handoff)),
                Recording::Conflict(source) => {
                    return Err(ControlError::OutcomeRecorded(match source {
                        OutcomeSource::WrapUp => "by the human's wrap-up",
                        OutcomeSource::Recorded => "by RecordOutcome",
                    }));
                }
                Recording::NotEnded(state) => return Err(ControlError::NotJudgeable(state)),
            }
        }
        Err(ControlError::NotJudgeable(handoff.state))
    }

    /// GetOutcomeMetrics for `tenant`.
    pub(super) async fn outcome_metrics(
        &self,
        tenant: &str,
        request: api::GetOutcomeMetricsRequest,
    ) -> Result<api::GetOutcomeMetricsResponse, ControlError> {
        let mut window = window(tenant, &request)?;
        let mut tally = OutcomeTally::default();
        let mut counted = 0;
        let truncated = 'pages: loop {
            let page = self.store.outcome_page(&window, PAGE).await?;
            for (handoff, connected_at_ms) in &page {
                if counted == MAX_COUNTED {
                    break 'pages true;
                }
                tally.add(&fact(handoff, *connected_at_ms));
                counted += 1;
            }
            if page.len() < PAGE {
                break false;
            }
            window.after = page
                .last()
                .map(|(handoff, _)| (handoff.created_at_ms, handoff.id.clone()));
        };
        let (total, groups) = tally.finish();
        Ok(api::GetOutcomeMetricsResponse {
            total: Some(figures(&total)),
            groups: groups
                .iter()
                .map(|(key, figures_of)| api::OutcomeGroup {
                    route: key.route.clone(),
                    trigger: convert::types::escalation_kind(key.trigger),
                    connector: key.connector.clone(),
                    figures: Some(figures(figures_of)),
                })
                .collect(),
            truncated,
        })
    }
}

fn answer(handoff: &Handoff) -> api::RecordOutcomeResponse {
    api::RecordOutcomeResponse {
        handoff: Some(convert::handoff(handoff)),
    }
}

/// The request's window: `until` (now when unset) back to `since` (a day
/// before `until` when unset), at most [`MAX_WINDOW`] long.
fn window(
    tenant: &str,
    request: &api::GetOutcomeMetricsRequest,
) -> Result<OutcomeWindow, ControlError> {
    let mut violations = Vec::new();
    let mut millis = |field: &str, time: &Option<prost_types::Timestamp>| {
        let time = time.as_ref()?;
        let ms = time
            .seconds
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(i64::from(time.nanos) / 1_000_000))
            .filter(|_| (0..1_000_000_000).contains(&time.nanos));
        if ms.is_none() {
            violations.push(FieldViolation::new(field, "is not a valid timestamp"));
        }
        ms
    };
    let until_ms = millis("until", &request.until).unwrap_or_else(now_ms);
    let since_ms = millis("since", &request.since)
        .unwrap_or_else(|| until_ms.saturating_sub(duration_ms(DEFAULT_WINDOW)));
    if since_ms >= until_ms {
        violations.push(FieldViolation::new("since", "must be before until"));
    } else if until_ms - since_ms > duration_ms(MAX_WINDOW) {
        violations.push(FieldViolation::new(
            "until",
            "must be at most 31 days after since",
        ));
    }
    reject_any(violations)?;
    Ok(OutcomeWindow {
        tenant: tenant.to_owned(),
        since_ms,
        until_ms,
        after: None,
    })
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What the figures need of `handoff`. A purged handoff's context is gone,
/// and with it the escalation reason: it counts as unspecified.
fn fact(handoff: &Handoff, connected_at_ms: Option<i64>) -> OutcomeFact {
    let trigger = convert::context::context(&handoff.context)
        .reason
        .map_or(0, |reason| reason.kind);
    OutcomeFact {
        state: handoff.state,
        created_at_ms: handoff.created_at_ms,
        connected_at_ms,
        group: OutcomeGroupKey {
            route: match &handoff.requested_target {
                RequestedTarget::Route(name) => name.clone(),
                _ => String::new(),
            },
            trigger: convert::types::escalation_kind_from(trigger),
            connector: handoff
                .current_attempt
                .as_ref()
                .map(|attempt| attempt.planned.connector.clone())
                .unwrap_or_default(),
        },
        judgements: handoff.outcome().map(|outcome| outcome.judgements),
    }
}

fn figures(figures: &OutcomeFigures) -> api::OutcomeFigures {
    let duration = |d: Option<Duration>| d.and_then(|d| prost_types::Duration::try_from(d).ok());
    api::OutcomeFigures {
        handoffs: figures.handoffs,
        reached_human: figures.reached_human,
        abandoned: figures.abandoned,
        failed: figures.failed,
        time_to_human_p50: duration(figures.time_to_human_p50),
        time_to_human_p95: duration(figures.time_to_human_p95),
        abandon_rate: figures.abandon_rate(),
        context_sufficient: Some(counts(figures.context_sufficient)),
        customer_repeated: Some(counts(figures.customer_repeated)),
        escalation_needed: Some(counts(figures.escalation_needed)),
    }
}

fn counts(counts: JudgementCounts) -> api::JudgementCounts {
    api::JudgementCounts {
        yes: counts.yes,
        no: counts.no,
        rate: counts.rate(),
    }
}
