//! Every connector's transfer metrics, the same for all platforms: how many
//! transfers start and how they end, how long they take, and how many run.
//!
//! Instruments come from the global meter provider that
//! `baton_service_kit::telemetry::init` installs (Prometheus, and OTLP when
//! configured). Labels are the target kind and the outcome, never a target
//! or anything a customer said.

use std::sync::OnceLock;
use std::time::Duration;

use baton_proto::connector::v1::TransferEventKind;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};

pub(crate) struct TransferMetrics {
    started: Counter<u64>,
    finished: Counter<u64>,
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
}

pub(crate) fn metrics() -> &'static TransferMetrics {
    static METRICS: OnceLock<TransferMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("baton-connector");
        TransferMetrics {
            started: meter
                .u64_counter("baton.connector.transfers.started")
                .with_description("Transfers started, by target kind")
                .build(),
            finished: meter
                .u64_counter("baton.connector.transfers.finished")
                .with_description("Transfers ended, by target kind and outcome")
                .build(),
            duration: meter
                .f64_histogram("baton.connector.transfer.duration")
                .with_unit("s")
                .with_description(
                    "From StartTransfer to the transfer's end, by target kind and outcome",
                )
                .with_boundaries(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
                ])
                .build(),
            active: meter
                .i64_up_down_counter("baton.connector.transfers.active")
                .with_description("Transfers not yet ended")
                .build(),
        }
    })
}

impl TransferMetrics {
    pub(crate) fn started(&self, target_kind: &'static str) {
        let labels = [KeyValue::new("target_kind", target_kind)];
        self.started.add(1, &labels);
        self.active.add(1, &labels);
    }

    pub(crate) fn finished(
        &self,
        target_kind: &'static str,
        outcome: Option<TransferEventKind>,
        took: Duration,
    ) {
        let outcome = match outcome {
            Some(TransferEventKind::Completed) => "completed",
            Some(TransferEventKind::Failed) => "failed",
            Some(TransferEventKind::Cancelled) => "cancelled",
            Some(TransferEventKind::HandedBack) => "handed_back",
            _ => "unknown",
        };
        self.active
            .add(-1, &[KeyValue::new("target_kind", target_kind)]);
        let labels = [
            KeyValue::new("target_kind", target_kind),
            KeyValue::new("outcome", outcome),
        ];
        self.finished.add(1, &labels);
        self.duration.record(took.as_secs_f64(), &labels);
    }
}
