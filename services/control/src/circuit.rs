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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

/// The `[dispatch]` section: settings for every connector, overrides by
/// connector name under `[dispatch.connectors.<name>]`, and the bound on
/// handoffs in flight.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// How long `StartTransfer` may take to be accepted (response headers).
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// How long after `StartTransfer` was accepted the first event may
    /// take; a connector silent for longer is treated as hung: the
    /// transfer is cancelled and the route's next target tried.
    #[serde(with = "humantime_serde")]
    pub first_event_timeout: Duration,
    /// How often a `StartTransfer` that failed with UNAVAILABLE, or whose
    /// stream broke, is sent again (same handoff and attempt, which
    /// connectors deduplicate) before the target counts as failed.
    pub retries: u32,
    /// The first pause before a retry; it doubles each time, and each
    /// pause is drawn at random between half of it and all of it.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// How long the dispatcher keeps re-attaching (StartTransfer again,
    /// with backoff) to a transfer the connector may hold, after its stream
    /// broke or the connector became unreachable: a connector restart
    /// shorter than this is not a failure. Past it the transfer is
    /// cancelled, confirmed by the connector, and fails with
    /// CONNECTOR_LOST. The last target of a route waits as long for a
    /// connector that is down, since there is nothing to fall back to.
    #[serde(with = "humantime_serde")]
    pub reattach_window: Duration,
    /// Consecutive failed attempts that open the connector's circuit.
    pub failure_threshold: u32,
    /// How long an open circuit skips the connector before one probe.
    #[serde(with = "humantime_serde")]
    pub open_cooldown: Duration,
    /// Overrides by connector name; unset keys take the values above.
    pub connectors: BTreeMap<String, DispatchOverrides>,
    /// The most handoffs this replica dispatches at once; `CreateHandoff`
    /// answers RESOURCE_EXHAUSTED with RetryInfo beyond it.
    pub max_in_flight: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        let defaults = DispatchSettings::default();
        Self {
            start_timeout: defaults.start_timeout,
            first_event_timeout: defaults.first_event_timeout,
            retries: defaults.retries,
            retry_backoff: defaults.retry_backoff,
            reattach_window: defaults.reattach_window,
            failure_threshold: defaults.failure_threshold,
            open_cooldown: defaults.open_cooldown,
            connectors: BTreeMap::new(),
            max_in_flight: 10_000,
        }
    }
}

/// How the dispatcher treats one connector (see [`DispatchConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    pub start_timeout: Duration,
    pub first_event_timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub reattach_window: Duration,
    pub failure_threshold: u32,
    pub open_cooldown: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            start_timeout: Duration::from_secs(5),
            first_event_timeout: Duration::from_secs(10),
            retries: 5,
            retry_backoff: Duration::from_millis(200),
            reattach_window: Duration::from_secs(60),
            failure_threshold: 5,
            open_cooldown: Duration::from_secs(10),
        }
    }
}

/// Per-connector overrides of [`DispatchSettings`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchOverrides {
    #[serde(with = "humantime_serde")]
    pub start_timeout: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub first_event_timeout: Option<Duration>,
    pub retries: Option<u32>,
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub reattach_window: Option<Duration>,
    pub failure_threshold: Option<u32>,
    #[serde(with = "humantime_serde")]
    pub open_cooldown: Option<Duration>,
}

/// The most retries of one call: the pauses double, so more would only
/// outlast any deadline.
const MAX_RETRIES: u32 = 10;

impl DispatchConfig {
    /// The settings of connectors without overrides.
    pub fn defaults(&self) -> DispatchSettings {
        DispatchSettings {
            start_timeout: self.start_timeout,
            first_event_timeout: self.first_event_timeout,
            retries: self.retries,
            retry_backoff: self.retry_backoff,
            reattach_window: self.reattach_window,
            failure_threshold: self.failure_threshold,
            open_cooldown: self.open_cooldown,
        }
    }

    /// The settings of one connector: its overrides over the defaults.
    pub fn settings(&self, connector: &str) -> DispatchSettings {
        let d = self.defaults();
        let Some(o) = self.connectors.get(connector) else {
            return d;
        };
        DispatchSettings {
            start_timeout: o.start_timeout.unwrap_or(d.start_timeout),
            first_event_timeout: o.first_event_timeout.unwrap_or(d.first_event_timeout),
            retries: o.retries.unwrap_or(d.retries),
            retry_backoff: o.retry_backoff.unwrap_or(d.retry_backoff),
            reattach_window: o.reattach_window.unwrap_or(d.reattach_window),
            failure_threshold: o.failure_threshold.unwrap_or(d.failure_threshold),
            open_cooldown: o.open_cooldown.unwrap_or(d.open_cooldown),
        }
    }

    /// Checks every value; the error names the key.
    pub fn check(&self, connectors: &[&str]) -> Result<(), String> {
        if self.max_in_flight == 0 {
            return Err("dispatch.max_in_flight: must be at least 1".into());
        }
        check_settings("dispatch", &self.defaults())?;
        for name in self.connectors.keys() {
            if !connectors.contains(&name.as_str()) {
                return Err(format!(
                    "dispatch.connectors.{name}: no connector named {name:?} is configured"
                ));
            }
            check_settings(&format!("dispatch.connectors.{name}"), &self.settings(name))?;
        }
        Ok(())
    }
}

fn check_settings(prefix: &str, settings: &DispatchSettings) -> Result<(), String> {
    let positive = [
        ("start_timeout", settings.start_timeout),
        ("first_event_timeout", settings.first_event_timeout),
        ("reattach_window", settings.reattach_window),
        ("open_cooldown", settings.open_cooldown),
    ];
    for (key, value) in positive {
        if value.is_zero() {
            return Err(format!("{prefix}.{key}: must be more than 0s"));
        }
    }
    if settings.retries > MAX_RETRIES {
        return Err(format!("{prefix}.retries: must be at most {MAX_RETRIES}"));
    }
    if settings.failure_threshold == 0 {
        return Err(format!("{prefix}.failure_threshold: must be at least 1"));
    }
    Ok(())
}

/// The pause before retry number `retry` (0 for the first): the backoff
/// doubled `retry` times, then drawn at random between half and all of it,
/// so that many handoffs retrying a connector do not retry in step.
pub fn jittered_backoff(base: Duration, retry: u32) -> Duration {
    let full = base.saturating_mul(2u32.saturating_pow(retry.min(MAX_RETRIES)));
    let half = full / 2;
    let spread = u64::try_from((full - half).as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(rand::random_range(0..=spread))
}

/// A circuit's state; the number is the metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl CircuitState {
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
        crate::metrics::metrics().circuit_state(&self.name, state);
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
                crate::metrics::metrics().circuit_state(name, CircuitState::Closed);
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

    #[test]
    fn backoff_doubles_and_stays_within_its_jitter() {
        let base = Duration::from_millis(100);
        for retry in 0..4 {
            let full = base * 2u32.pow(retry);
            for _ in 0..50 {
                let pause = jittered_backoff(base, retry);
                assert!(pause >= full / 2 && pause <= full, "{pause:?} for {retry}");
            }
        }
    }

    #[test]
    fn overrides_apply_per_connector_and_bad_values_name_their_key() {
        let mut config = DispatchConfig::default();
        config.connectors.insert(
            "sip".into(),
            DispatchOverrides {
                first_event_timeout: Some(Duration::from_secs(2)),
                ..DispatchOverrides::default()
            },
        );
        assert_eq!(
            config.settings("sip").first_event_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(config.settings("sip").retries, 5);
        assert_eq!(config.settings("queue"), DispatchSettings::default());
        config.check(&["sip"]).expect("valid");
        let error = config.check(&["queue"]).expect_err("unknown connector");
        assert!(error.starts_with("dispatch.connectors.sip:"), "{error}");
        config
            .connectors
            .get_mut("sip")
            .expect("sip")
            .failure_threshold = Some(0);
        let error = config.check(&["sip"]).expect_err("zero threshold");
        assert_eq!(
            error,
            "dispatch.connectors.sip.failure_threshold: must be at least 1"
        );
    }
}
