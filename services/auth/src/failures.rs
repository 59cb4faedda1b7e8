//! A limit on failed authentication per source address, so that an
//! anonymous caller cannot try credentials (or fill the log with refusals)
//! as fast as the network allows. Only failures take from a source's
//! bucket: a valid credential is never refused by it, even from an address
//! that has been failing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::rate_limit::{RateLimitConfig, TenantBuckets};

/// How many failed authentications a source address may make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailedAuthConfig {
    /// Sustained failures per minute per source address. Default 30.
    pub per_minute: f64,
    /// Failures a source may make at once after a quiet spell. Default 20.
    pub burst: u32,
    /// Most source addresses tracked at once; beyond it the ones whose
    /// bucket has refilled are forgotten first, then the fullest. Default
    /// 10 000.
    pub max_sources: usize,
}

impl Default for FailedAuthConfig {
    fn default() -> Self {
        Self {
            per_minute: 30.0,
            burst: 20,
            max_sources: 10_000,
        }
    }
}

impl FailedAuthConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.per_minute.is_finite() && self.per_minute > 0.0) {
            return Err("failed_auth.per_minute: must be a positive number".into());
        }
        if self.burst == 0 {
            return Err("failed_auth.burst: must be at least 1".into());
        }
        if self.max_sources == 0 {
            return Err("failed_auth.max_sources: must be at least 1".into());
        }
        Ok(())
    }
}

/// One token bucket of failures per source address, in bounded memory.
/// Cheap to clone; clones share the buckets (the gRPC and HTTP listeners
/// of one service count failures together).
#[derive(Debug, Clone)]
pub struct FailureLimiter {
    buckets: Arc<TenantBuckets>,
}

impl FailureLimiter {
    pub fn new(config: &FailedAuthConfig) -> Result<Self, String> {
        config.validate()?;
        let buckets = TenantBuckets::new(&RateLimitConfig {
            requests_per_second: config.per_minute / 60.0,
            burst: config.burst,
            max_tenants: config.max_sources,
        })
        .map_err(|e| format!("failed_auth: {e}"))?;
        Ok(Self {
            buckets: Arc::new(buckets),
        })
    }

    /// Counts a failed authentication from `source`: `Ok` while it is
    /// within its allowance, else how long until the next is allowed.
    pub fn failed(&self, source: IpAddr) -> Result<(), Duration> {
        self.buckets.take(&source.to_string(), Instant::now())
    }

    /// How many sources are tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.tracked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_burst_of_failures_and_others_are_unaffected() {
        let limiter = FailureLimiter::new(&FailedAuthConfig {
            per_minute: 6.0,
            burst: 3,
            max_sources: 2,
        })
        .expect("valid");
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(limiter.failed(a), Ok(()));
        }
        let wait = limiter.failed(a).expect_err("limited");
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10));
        assert_eq!(limiter.failed("192.0.2.2".parse().expect("ip")), Ok(()));
        for i in 0..50 {
            let _ = limiter.failed(format!("198.51.100.{i}").parse().expect("ip"));
            assert!(limiter.tracked() <= 2);
        }
    }

    #[test]
    fn bad_settings_name_their_key() {
        let bad = |config: FailedAuthConfig| config.validate().expect_err("refused");
        assert!(
            bad(FailedAuthConfig {
                per_minute: 0.0,
                ..Default::default()
            })
            .starts_with("failed_auth.per_minute")
        );
        assert!(
            bad(FailedAuthConfig {
                burst: 0,
                ..Default::default()
            })
            .starts_with("failed_auth.burst")
        );
        assert!(
            bad(FailedAuthConfig {
                max_sources: 0,
                ..Default::default()
            })
            .starts_with("failed_auth.max_sources")
        );
    }
}
