//! What the supervisor's panel shows, shaped from `GetOutcomeMetrics`
//! answers: the day's figures in total and per route, trigger and
//! connector, and the day cut into 24 one-hour windows for the chart.
//! Plain functions, so that the shaping is tested without a network.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_proto::handoff::v1 as api;
use baton_proto::types::v1 as pb;
use serde::Serialize;

/// The window the panel covers.
pub const DAY: Duration = Duration::from_secs(24 * 3600);
/// One bar of the chart.
pub const HOUR: Duration = Duration::from_secs(3600);
/// Bars in the chart.
pub const HOURS: usize = 24;

/// The panel's JSON (`GET /api/supervisor/outcomes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomesView {
    /// Always true here; `{"configured": false}` without `[outcomes]`.
    pub configured: bool,
    /// The tenant whose handoffs these are (the credential's).
    pub tenant: String,
    /// The window, in milliseconds since the epoch: `until` is when the
    /// figures were read, `since` 24 hours before.
    pub since: u64,
    pub until: u64,
    pub total: Figures,
    /// Per route, trigger and connector, largest first (as the control
    /// service orders them).
    pub groups: Vec<Group>,
    /// The 24 one-hour windows of [since, until), oldest first: together
    /// exactly the total's window.
    pub hours: Vec<Hour>,
    /// The window held more handoffs than the control service counts in
    /// one answer: the figures cover the oldest ones.
    pub truncated: bool,
}

/// What a set of handoffs achieved. A rate or a time is `null` when there
/// was nothing to divide or measure.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub handoffs: u64,
    pub reached_human: u64,
    pub abandoned: u64,
    pub failed: u64,
    pub abandon_rate: Option<f64>,
    pub time_to_human_p50_seconds: Option<f64>,
    pub time_to_human_p95_seconds: Option<f64>,
    pub context_sufficient: Judgements,
    pub customer_repeated: Judgements,
    pub escalation_needed: Judgements,
}

/// The humans' yes and no to one question; `rate` is yes / (yes + no).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Judgements {
    pub yes: u64,
    pub no: u64,
    pub rate: Option<f64>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Empty for a handoff to a direct target.
    pub route: String,
    /// The escalation's kind in lower case (`explicit_request`, …).
    pub trigger: String,
    /// Empty when no target was tried.
    pub connector: String,
    pub figures: Figures,
}

/// One bar of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hour {
    /// The window, in milliseconds since the epoch.
    pub since: u64,
    pub until: u64,
    pub handoffs: u64,
    pub reached_human: u64,
    pub abandoned: u64,
    pub failed: u64,
}

/// The 24 one-hour windows ending at `until`, oldest first.
pub fn hour_windows(until: SystemTime) -> Vec<(SystemTime, SystemTime)> {
    let start = until - DAY;
    (0..HOURS as u32)
        .map(|i| (start + HOUR * i, start + HOUR * (i + 1)))
        .collect()
}

/// The view of the day's answer (`total`, for [until - 24h, until)) and
/// of the answers of [`hour_windows`], in the same order.
pub fn view(
    tenant: &str,
    until: SystemTime,
    total: api::GetOutcomeMetricsResponse,
    hours: Vec<api::GetOutcomeMetricsResponse>,
) -> OutcomesView {
    let windows = hour_windows(until);
    let truncated = total.truncated || hours.iter().any(|h| h.truncated);
    let hours = windows
        .into_iter()
        .zip(hours)
        .map(|((since, until), answer)| {
            let figures = figures(answer.total);
            Hour {
                since: millis(since),
                until: millis(until),
                handoffs: figures.handoffs,
                reached_human: figures.reached_human,
                abandoned: figures.abandoned,
                failed: figures.failed,
            }
        })
        .collect();
    OutcomesView {
        configured: true,
        tenant: tenant.to_owned(),
        since: millis(until - DAY),
        until: millis(until),
        total: figures(total.total),
        groups: total
            .groups
            .into_iter()
            .map(|g| Group {
                trigger: trigger_name(g.trigger),
                route: g.route,
                connector: g.connector,
                figures: figures(g.figures),
            })
            .collect(),
        hours,
        truncated,
    }
}

fn figures(figures: Option<api::OutcomeFigures>) -> Figures {
    let Some(f) = figures else {
        return Figures::default();
    };
    // Times are medians over the handoffs that reached a human: none, none.
    let time = |d: Option<prost_types::Duration>| {
        d.filter(|_| f.reached_human > 0)
            .map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
    };
    Figures {
        handoffs: f.handoffs,
        reached_human: f.reached_human,
        abandoned: f.abandoned,
        failed: f.failed,
        abandon_rate: f.abandon_rate,
        time_to_human_p50_seconds: time(f.time_to_human_p50),
        time_to_human_p95_seconds: time(f.time_to_human_p95),
        context_sufficient: judgements(f.context_sufficient),
        customer_repeated: judgements(f.customer_repeated),
        escalation_needed: judgements(f.escalation_needed),
    }
}

fn judgements(counts: Option<api::JudgementCounts>) -> Judgements {
    counts
        .map(|c| Judgements {
            yes: c.yes,
            no: c.no,
            rate: c.rate,
        })
        .unwrap_or_default()
}

/// `ESCALATION_KIND_EXPLICIT_REQUEST` → `explicit_request`.
fn trigger_name(kind: i32) -> String {
    pb::EscalationKind::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("ESCALATION_KIND_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("kind {kind}"))
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(handoffs: u64, abandoned: u64) -> api::GetOutcomeMetricsResponse {
        api::GetOutcomeMetricsResponse {
            total: Some(api::OutcomeFigures {
                handoffs,
                abandoned,
                reached_human: handoffs - abandoned,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_day_is_cut_into_24_adjacent_hours_ending_at_until() {
        let until = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let windows = hour_windows(until);
        assert_eq!(windows.len(), 24);
        assert_eq!(windows[0].0, until - DAY);
        assert_eq!(windows[23].1, until);
        for pair in windows.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "adjacent");
            assert_eq!(pair[0].1.duration_since(pair[0].0).ok(), Some(HOUR));
        }
    }

    #[test]
    fn the_view_carries_the_total_the_groups_and_one_bar_per_hour() {
        let until = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let total = api::GetOutcomeMetricsResponse {
            total: Some(api::OutcomeFigures {
                handoffs: 3,
                reached_human: 1,
                abandoned: 1,
                failed: 1,
                time_to_human_p50: Some(prost_types::Duration {
                    seconds: 12,
                    nanos: 500_000_000,
                }),
                time_to_human_p95: Some(prost_types::Duration {
                    seconds: 40,
                    nanos: 0,
                }),
                abandon_rate: Some(1.0 / 3.0),
                context_sufficient: Some(api::JudgementCounts {
                    yes: 1,
                    no: 0,
                    rate: Some(1.0),
                }),
                customer_repeated: Some(api::JudgementCounts {
                    yes: 0,
                    no: 1,
                    rate: Some(0.0),
                }),
                escalation_needed: None,
            }),
            groups: vec![api::OutcomeGroup {
                route: "support".into(),
                trigger: pb::EscalationKind::ExplicitRequest as i32,
                connector: "queue".into(),
                figures: Some(api::OutcomeFigures {
                    handoffs: 3,
                    time_to_human_p50: Some(prost_types::Duration::default()),
                    ..Default::default()
                }),
            }],
            truncated: false,
        };
        let mut hours: Vec<_> = (0..24).map(|_| answer(0, 0)).collect();
        hours[2] = answer(1, 0);
        hours[23] = answer(2, 1);
        let view = view("acme", until, total, hours);

        assert_eq!(view.tenant, "acme");
        assert_eq!(view.until - view.since, 24 * 3600 * 1000);
        let total = &view.total;
        assert_eq!(
            (
                total.handoffs,
                total.reached_human,
                total.abandoned,
                total.failed
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(total.abandon_rate, Some(1.0 / 3.0));
        assert_eq!(total.time_to_human_p50_seconds, Some(12.5));
        assert_eq!(total.time_to_human_p95_seconds, Some(40.0));
        assert_eq!(total.context_sufficient.rate, Some(1.0));
        assert_eq!(
            total.customer_repeated,
            Judgements {
                yes: 0,
                no: 1,
                rate: Some(0.0)
            }
        );
        assert_eq!(total.escalation_needed, Judgements::default(), "unanswered");

        assert_eq!(view.groups.len(), 1);
        assert_eq!(view.groups[0].trigger, "explicit_request");
        assert_eq!(view.groups[0].route, "support");
        assert_eq!(
            view.groups[0].figures.time_to_human_p50_seconds, None,
            "nobody reached a human: no time to human"
        );

        assert_eq!(view.hours.len(), 24);
        assert_eq!(view.hours[0].since, view.since);
        assert_eq!(view.hours[23].until, view.until);
        assert_eq!((view.hours[2].handoffs, view.hours[2].abandoned), (1, 0));
        assert_eq!((view.hours[23].handoffs, view.hours[23].abandoned), (2, 1));
        assert_eq!(view.hours.iter().map(|h| h.handoffs).sum::<u64>(), 3);
        assert!(!view.truncated);

        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(
            json["total"]["escalation_needed"]["rate"],
            serde_json::Value::Null
        );
        assert_eq!(json["hours"][23]["abandoned"], 1);
    }

    #[test]
    fn a_truncated_hour_marks_the_view_truncated_and_missing_figures_are_zero() {
        let until = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let mut hours: Vec<_> = (0..24)
            .map(|_| api::GetOutcomeMetricsResponse::default())
            .collect();
        hours[5].truncated = true;
        let view = view(
            "acme",
            until,
            api::GetOutcomeMetricsResponse::default(),
            hours,
        );
        assert!(view.truncated);
        assert_eq!(view.total, Figures::default());
        assert_eq!(view.total.abandon_rate, None);
        assert!(view.hours.iter().all(|h| h.handoffs == 0));
    }

    #[test]
    fn an_unknown_trigger_is_shown_by_its_number() {
        assert_eq!(trigger_name(9999), "kind 9999");
        assert_eq!(trigger_name(0), "unspecified");
    }
}
