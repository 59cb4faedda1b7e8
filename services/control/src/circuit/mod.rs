//! Per-connector failure handling: how long the dispatcher waits for a
//! connector, how often it tries again, and a circuit breaker per
//! connector that skips one that keeps failing.
//!
//! The breaker is a plain type rather than a tower layer on the connector's
//! channel: whether a `StartTransfer` worked is only known from its event
//! stream (the first event, or a broken or garbled stream), long after a
//! tower service would have returned the response. The dispatcher asks the
//! breaker before it starts an attempt and tells it how the attempt went.
//!
//! States: closed (calls go through; consecutive failures are counted) →
//! open after `failure_threshold` of them (new attempts skip the connector
//! at once and go to the route's next target) → half-open once
//! `open_cooldown` has passed (exactly one attempt, the probe, goes
//! through; the others still skip) → closed when the probe works, open
//! again for another cool-down when it fails.
//!
//! `settings` holds the `[dispatch]` section all of this follows.

mod settings;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

pub use settings::{DispatchConfig, DispatchOverrides, DispatchSettings, jittered_backoff};

/// A circuit's state; the number is the metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl CircuitState {
    /// The state as the `baton.connector.circuit.state` gauge reports it.
    pub fn level(self) -> i64 {
        self as i64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// Whether an attempt may use the connector now.
#[derive(Debug)]
pub enum Admission {
    Admitted(Permit),
    /// The circuit is open: skip the connector. `failures` is how many
    /// consecutive failures opened it.
    Skipped {
        failures: u32,
    },
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    consecutive_failures: u32,
    opened_at: Instant,
    /// Whether the half-open probe is out.
    probing: bool,
}

/// One connector's circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    failure_threshold: u32,
    open_cooldown: Duration,
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
}

impl CircuitBreaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn state(&self) -> CircuitState {
        self.lock().state
    }

    /// Asks to start a new attempt on the connector.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut inner = self.lock();
        match inner.state {
            CircuitState::Closed => Admission::Admitted(self.permit(false)),
            CircuitState::Open if inner.opened_at.elapsed() >= self.open_cooldown => {
                inner.probing = true;
                self.set(&mut inner, CircuitState::HalfOpen);
                Admission::Admitted(self.permit(true))
            }
            CircuitState::HalfOpen if !inner.probing => {
                inner.probing = true;
                Admission::Admitted(self.permit(true))
            }
            CircuitState::Open | CircuitState::HalfOpen => Admission::Skipped {
                failures: inner.consecutive_failures,
            },
        }
    }

    /// A permit for calls that are not new attempts (re-attaching to a
    /// transfer the connector already has): never refused, but their
    /// outcomes count.
    pub fn observe(self: &Arc<Self>) -> Permit {
        self.permit(false)
    }

    fn permit(self: &Arc<Self>, probe: bool) -> Permit {
        Permit {
            breaker: self.clone(),
            probe,
        }
    }

    fn set(&self, inner: &mut Inner, state: CircuitState) {
        if inner.state == state {
            return;
        }
        tracing::warn!(
            connector = %self.name,
            from = inner.state.as_str(),
            to = state.as_str(),
            failures = inner.consecutive_failures,
            "connector circuit changed"
        );
        inner.state = state;
        crate::metrics::metrics().circuit_state(&self.name, state.level());
        self.changes.send_modify(|generation| *generation += 1);
    }

    fn succeeded(&self, probe: bool) {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        if probe {
            inner.probing = false;
        }
        self.set(&mut inner, CircuitState::Closed);
    }

    fn failed(&self, probe: bool) {
        let mut inner = self.lock();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        if probe {
            inner.probing = false;
        }
        let open = match inner.state {
            CircuitState::Closed => inner.consecutive_failures >= self.failure_threshold,
            // A failed probe, or a failure of a call admitted before the
            // circuit opened: (re)start the cool-down.
            CircuitState::HalfOpen | CircuitState::Open => true,
        };
        if open {
            inner.opened_at = Instant::now();
            self.set(&mut inner, CircuitState::Open);
        }
    }

    /// A probe that ended without an outcome (its handoff was cancelled,
    /// or the target was unsupported): let another one go.
    fn abandoned(&self) {
        let mut inner = self.lock();
        if inner.state == CircuitState::HalfOpen && inner.probing {
            inner.probing = false;
        }
    }
}

/// The right to call a connector for one attempt; reports how it went.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    probe: bool,
}

impl Permit {
    /// The connector answered as the contract says (an event of the
    /// transfer, even a FAILED one: the connector works, the target did
    /// not).
    pub fn success(&mut self) {
        self.breaker.succeeded(self.probe);
        self.probe = false;
    }

    /// The connector was unreachable, hung, or broke the contract.
    pub fn failure(&mut self) {
        self.breaker.failed(self.probe);
        self.probe = false;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.abandoned();
        }
    }
}

/// Every connector's breaker, by name.
#[derive(Debug, Clone)]
pub struct Breakers {
    breakers: Arc<BTreeMap<String, Arc<CircuitBreaker>>>,
    changes: watch::Receiver<u64>,
}

impl Breakers {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, config: &DispatchConfig) -> Self {
        let (changes, receiver) = watch::channel(0);
        let breakers = names
            .into_iter()
            .map(|name| {
                let settings = config.settings(name);
                crate::metrics::metrics().circuit_state(name, CircuitState::Closed.level());
                let breaker = CircuitBreaker {
                    name: name.to_owned(),
                    failure_threshold: settings.failure_threshold,
                    open_cooldown: settings.open_cooldown,
                    inner: Mutex::new(Inner {
                        state: CircuitState::Closed,
                        consecutive_failures: 0,
                        opened_at: Instant::now(),
                        probing: false,
                    }),
                    changes: changes.clone(),
                };
                (name.to_owned(), Arc::new(breaker))
            })
            .collect();
        Self {
            breakers: Arc::new(breakers),
            changes: receiver,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<CircuitBreaker>> {
        self.breakers.get(name)
    }

    /// Every circuit's state, by connector.
    pub fn states(&self) -> Vec<(String, CircuitState)> {
        self.breakers
            .iter()
            .map(|(name, breaker)| (name.clone(), breaker.state()))
            .collect()
    }

    /// Wakes when any circuit changes state.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }
}

/// The gRPC health service name of a connector as the control service
/// sees it: NOT_SERVING while its circuit is open or half-open.
pub fn health_service_name(connector: &str) -> String {
    format!("baton.connector/{connector}")
}

/// Keeps each connector's health entry in step with its circuit, until the
/// breakers are dropped. The control service itself stays SERVING: an open
/// circuit only means that connector's targets are skipped.
pub async fn report_circuit_health(
    breakers: Breakers,
    health: tonic_health::server::HealthReporter,
) {
    let mut changes = breakers.changes();
    loop {
        for (name, state) in breakers.states() {
            let status = match state {
                CircuitState::Closed => tonic_health::ServingStatus::Serving,
                CircuitState::HalfOpen | CircuitState::Open => {
                    tonic_health::ServingStatus::NotServing
                }
            };
            health
                .set_service_status(health_service_name(&name), status)
                .await;
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers(threshold: u32, cooldown: Duration) -> Breakers {
        let config = DispatchConfig {
            failure_threshold: threshold,
            open_cooldown: cooldown,
            ..DispatchConfig::default()
        };
        Breakers::new(["sip"], &config)
    }

    fn admitted(breaker: &Arc<CircuitBreaker>) -> Permit {
        match breaker.admit() {
            Admission::Admitted(permit) => permit,
            Admission::Skipped { .. } => panic!("expected the call to be admitted"),
        }
    }

    #[test]
    fn consecutive_failures_open_the_circuit_and_a_success_resets_the_count() {
        let all = breakers(3, Duration::from_secs(3600));
        let breaker = all.get("sip").expect("breaker");
        admitted(breaker).failure();
        admitted(breaker).failure();
        admitted(breaker).success();
        admitted(breaker).failure();
        admitted(breaker).failure();
        assert_eq!(breaker.state(), CircuitState::Closed);
        admitted(breaker).failure();
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(matches!(
            breaker.admit(),
            Admission::Skipped { failures: 3 }
        ));
        // Re-attaching to a running transfer is never refused.
        breaker.observe().success();
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cool_down_one_probe_goes_through_and_decides() {
        let all = breakers(1, Duration::from_secs(10));
        let breaker = all.get("sip").expect("breaker");
        let mut changes = all.changes();
        admitted(breaker).failure();
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(changes.has_changed().expect("open"));
        changes.mark_unchanged();

        tokio::time::advance(Duration::from_secs(11)).await;
        let mut probe = admitted(breaker);
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        assert!(
            matches!(breaker.admit(), Admission::Skipped { .. }),
            "one probe at a time"
        );
        probe.failure();
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(matches!(breaker.admit(), Admission::Skipped { .. }));

        tokio::time::advance(Duration::from_secs(11)).await;
        let abandoned = admitted(breaker);
        drop(abandoned);
        // An abandoned probe lets the next one go.
        admitted(breaker).success();
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert!(changes.has_changed().expect("changes"));
    }
}
