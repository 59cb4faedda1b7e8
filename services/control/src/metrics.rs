//! The control service's metrics: what answers "how long until a human?".
//!
//! Instruments come from the global meter provider that
//! `baton_service_kit::telemetry::init` installs (Prometheus, and OTLP when
//! configured); before that, and in unit tests, they are no-ops. Labels
//! never carry customer data nor tenant names: routes and queues by name
//! only when the configuration names them (a caller may send any queue
//! name: those fold into `queue:other`, so the number of series stays
//! bounded), phone numbers and SIP URIs only by kind, connectors by their
//! configured name.

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};

use baton_proto::types::v1 as pb;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, UpDownCounter};

use crate::domain::{ConcreteTarget, EventKind, EventRecord, Handoff, Outcome, RequestedTarget};

/// Every instrument of the control service.
pub struct ControlMetrics {
    started: Counter<u64>,
    finished: Counter<u64>,
    time_to_human: Histogram<f64>,
    queue_wait: Histogram<f64>,
    fallbacks: Counter<u64>,
    connector_errors: Counter<u64>,
    active_streams: UpDownCounter<i64>,
    store_duration: Histogram<f64>,
    circuit_state: Gauge<i64>,
    circuit_skips: Counter<u64>,
    overloaded: Counter<u64>,
    judgements: Counter<u64>,
}

/// The process's instruments, created on first use.
pub fn metrics() -> &'static ControlMetrics {
    static METRICS: OnceLock<ControlMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("baton-control");
        // Seconds from a customer's wait to a human's hello: buckets from
        // an instant answer to a long queue.
        let wait_buckets = vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
        ];
        ControlMetrics {
            started: meter
                .u64_counter("baton.handoffs.started")
                .with_description("Handoffs accepted, by route and escalation reason")
                .build(),
            finished: meter
                .u64_counter("baton.handoffs.finished")
                .with_description(
                    "Handoffs that reached a terminal state, by outcome, failure reason, route and connector",
                )
                .build(),
            time_to_human: meter
                .f64_histogram("baton.handoff.time_to_human")
                .with_unit("s")
                .with_description("From CreateHandoff to a connected human")
                .with_boundaries(wait_buckets.clone())
                .build(),
            queue_wait: meter
                .f64_histogram("baton.handoff.queue_wait")
                .with_unit("s")
                .with_description("From QUEUED to a connected human")
                .with_boundaries(wait_buckets)
                .build(),
            fallbacks: meter
                .u64_counter("baton.handoff.fallbacks")
                .with_description("Targets given up for the route's next one, by connector and reason")
                .build(),
            connector_errors: meter
                .u64_counter("baton.connector.errors")
                .with_description("Connector calls that failed, by connector")
                .build(),
            active_streams: meter
                .i64_up_down_counter("baton.watch.streams.active")
                .with_description("Open WatchHandoff streams")
                .build(),
            store_duration: meter
                .f64_histogram("baton.store.operation.duration")
                .with_unit("s")
                .with_description("Durable store operations, by operation")
                .with_boundaries(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ])
                .build(),
            circuit_state: meter
                .i64_gauge("baton.connector.circuit.state")
                .with_description(
                    "Each connector's circuit breaker, by connector: 0 closed, 1 half-open, 2 open",
                )
                .build(),
            circuit_skips: meter
                .u64_counter("baton.connector.circuit.skips")
                .with_description("Targets skipped because their connector's circuit was open, by connector")
                .build(),
            overloaded: meter
                .u64_counter("baton.overloaded")
                .with_description("Calls refused because a bounded queue was full, by queue")
                .build(),
            judgements: meter
                .u64_counter("baton.handoff.judgements")
                .with_description(
                    "The human's answers at wrap-up (context_sufficient, customer_repeated, escalation_needed: yes or no), by route, escalation reason and connector; a rate is yes / (yes + no)",
                )
                .build(),
        }
    })
}

impl ControlMetrics {
    /// A handoff was accepted.
    pub fn handoff_started(&self, handoff: &Handoff) {
        self.started.add(
            1,
            &[
                KeyValue::new("route", route_label(&handoff.requested_target)),
                KeyValue::new("reason", escalation_label(handoff)),
            ],
        );
    }

    /// An event was recorded: terminal states, connections and fallbacks
    /// are counted and timed here, in the one place every event passes.
    pub fn event_recorded(
        &self,
        handoff: &Handoff,
        record: &EventRecord,
        queued_at_ms: Option<i64>,
    ) {
        let connector = record
            .attempt
            .as_ref()
            .or(handoff.current_attempt.as_ref())
            .map(|attempt| attempt.planned.connector.clone())
            .unwrap_or_default();
        let route = route_label(&handoff.requested_target);
        match record.kind {
            EventKind::Connected => {
                let labels = [
                    KeyValue::new("route", route.clone()),
                    KeyValue::new("connector", connector.clone()),
                ];
                self.time_to_human
                    .record(seconds(record.time_ms - handoff.created_at_ms), &labels);
                if let Some(queued) = queued_at_ms {
                    self.queue_wait
                        .record(seconds(record.time_ms - queued), &labels);
                }
            }
            EventKind::TargetFailed => {
                let reason =
                    reason_name(record.failure.as_ref()).unwrap_or("FAILURE_REASON_UNSPECIFIED");
                self.fallbacks.add(
                    1,
                    &[
                        KeyValue::new("connector", connector.clone()),
                        KeyValue::new("reason", reason),
                    ],
                );
            }
            _ => {}
        }
        if let Some(wrap_up) = &record.wrap_up {
            self.judged(handoff, &wrap_up.outcome);
        }
        if record.state.is_terminal() {
            let reason = reason_name(handoff.failure.as_ref()).unwrap_or("");
            self.finished.add(
                1,
                &[
                    KeyValue::new("outcome", record.state.as_str()),
                    KeyValue::new("reason", reason),
                    KeyValue::new("route", route),
                    KeyValue::new("connector", connector),
                ],
            );
        }
    }

    /// A human judged `handoff` (at wrap-up, or through RecordOutcome):
    /// each answer is counted by route, escalation reason and connector.
    pub fn judged(&self, handoff: &Handoff, outcome: &Outcome) {
        let connector = handoff
            .current_attempt
            .as_ref()
            .map(|attempt| attempt.planned.connector.clone())
            .unwrap_or_default();
        let answered = [
            ("context_sufficient", outcome.context_sufficient),
            ("customer_repeated", outcome.customer_repeated),
            ("escalation_needed", outcome.escalation_needed),
        ];
        for (judgement, answer) in answered {
            let Some(answer) = answer else { continue };
            self.judgements.add(
                1,
                &[
                    KeyValue::new("judgement", judgement),
                    KeyValue::new("answer", if answer { "yes" } else { "no" }),
                    KeyValue::new("route", route_label(&handoff.requested_target)),
                    KeyValue::new("reason", escalation_label(handoff)),
                    KeyValue::new("connector", connector.clone()),
                ],
            );
        }
    }

    pub fn connector_error(&self, connector: &str) {
        self.connector_errors
            .add(1, &[KeyValue::new("connector", connector.to_string())]);
    }

    /// A connector's circuit is now `level`: 0 closed, 1 half-open, 2 open.
    /// A number rather than the circuit's own type, so that metrics, which
    /// every module reports to, depend on none of them.
    pub fn circuit_state(&self, connector: &str, level: i64) {
        self.circuit_state
            .record(level, &[KeyValue::new("connector", connector.to_string())]);
    }

    pub fn circuit_skip(&self, connector: &str) {
        self.circuit_skips
            .add(1, &[KeyValue::new("connector", connector.to_string())]);
    }

    /// A call was refused because `queue` was full.
    pub fn overloaded(&self, queue: &'static str) {
        self.overloaded.add(1, &[KeyValue::new("queue", queue)]);
    }

    /// Counts a watch stream for as long as the returned guard lives.
    pub fn stream_opened(&'static self) -> StreamGuard {
        self.active_streams.add(1, &[]);
        StreamGuard(self)
    }

    pub fn store_operation(&self, operation: &'static str, elapsed: std::time::Duration) {
        self.store_duration.record(
            elapsed.as_secs_f64(),
            &[KeyValue::new("operation", operation)],
        );
    }
}

/// Decrements the open-stream gauge when a watch stream ends.
pub struct StreamGuard(&'static ControlMetrics);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.active_streams.add(-1, &[]);
    }
}

/// The contract's name of a failure's reason (`FAILURE_REASON_…`).
fn reason_name(failure: Option<&crate::domain::Failure>) -> Option<&'static str> {
    failure.map(|failure| crate::convert::types::failure_reason_name(failure.reason))
}

fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// The route and queue names the configuration holds: the only ones that
/// become label values.
#[derive(Debug, Default)]
struct KnownNames {
    routes: HashSet<String>,
    queues: HashSet<String>,
}

static KNOWN: RwLock<Option<KnownNames>> = RwLock::new(None);

/// Names the routes and queues that metrics may carry as labels: the
/// configured routes, and the queues they match or target. Called at
/// start; until then every name folds into `other`.
pub fn set_known_names(routes: &[crate::domain::routing::RouteConfig]) {
    let mut known = KnownNames::default();
    for route in routes {
        known.routes.insert(route.name.clone());
        known.queues.extend(route.queues.iter().cloned());
        known
            .queues
            .extend(route.targets.iter().filter_map(|t| t.queue.clone()));
    }
    *KNOWN.write().unwrap_or_else(|e| e.into_inner()) = Some(known);
}

fn known(name: &str, pick: fn(&KnownNames) -> &HashSet<String>) -> &str {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    match known.as_ref() {
        Some(names) if pick(names).contains(name) => name,
        _ => "other",
    }
}

/// A label for where a handoff was sent that names no customer and stays
/// bounded: configured route and queue names, `other` for the rest,
/// numbers and URIs only by kind.
fn route_label(target: &RequestedTarget) -> String {
    match target {
        RequestedTarget::Route(name) => format!("route:{}", known(name, |k| &k.routes)),
        RequestedTarget::Concrete(ConcreteTarget::Queue { name, .. }) => {
            format!("queue:{}", known(name, |k| &k.queues))
        }
        RequestedTarget::Concrete(ConcreteTarget::PhoneNumber { .. }) => "phone_number".into(),
        RequestedTarget::Concrete(ConcreteTarget::SipUri { .. }) => "sip_uri".into(),
        RequestedTarget::Unset => "none".into(),
    }
}

/// Why the AI escalated, by the context's reason: the context is kept
/// encoded, and this is read once per handoff.
fn escalation_label(handoff: &Handoff) -> &'static str {
    crate::convert::context::context(&handoff.context)
        .reason
        .as_ref()
        .and_then(|reason| pb::EscalationKind::try_from(reason.kind).ok())
        .unwrap_or(pb::EscalationKind::Unspecified)
        .as_str_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_routes_and_queues_but_never_numbers() {
        let route: crate::domain::routing::RouteConfig =
            serde_json::from_value(serde_json::json!({
                "name": "billing",
                "queues": ["billing"],
                "targets": [{"connector": "q", "queue": "tier2"}],
            }))
            .expect("route");
        set_known_names(&[route]);
        let concrete = |target| route_label(&RequestedTarget::Concrete(target));
        let number = "+14155550100".to_owned();
        assert_eq!(
            concrete(ConcreteTarget::PhoneNumber { number }),
            "phone_number"
        );
        let uri = "sip:jane@pbx.example.com".to_owned();
        assert_eq!(concrete(ConcreteTarget::SipUri { uri }), "sip_uri");
        let queue = |name: &str| {
            concrete(ConcreteTarget::Queue {
                name: name.into(),
                skills: vec![],
            })
        };
        assert_eq!(queue("billing"), "queue:billing");
        assert_eq!(queue("tier2"), "queue:tier2");
        assert_eq!(queue("acme-vip-4711"), "queue:other");
        let route = RequestedTarget::Route("nowhere".into());
        assert_eq!(route_label(&route), "route:other");
    }
}
