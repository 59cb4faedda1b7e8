//! The `[dispatch]` settings: how long the dispatcher waits for each
//! connector, how often it tries again and how long it pauses between
//! tries, and when a connector's circuit opens. The defaults hold for
//! every connector; `[dispatch.connectors.<name>]` overrides them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::*;

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
