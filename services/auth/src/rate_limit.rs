//! Per-tenant limits: a token-bucket rate limit as a tower layer, and a cap
//! on each tenant's concurrent streams for long-lived calls (WatchHandoff).
//!
//! Both key on the [`Principal`]'s tenant, so the rate limit layer sits
//! inside the auth layer. Calls without a principal (health, reflection)
//! are not limited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::{Either, Ready, ready};
use serde::{Deserialize, Serialize};
use tonic::codegen::http;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::principal::Principal;

/// Per-tenant rate limit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained calls per second per tenant. Default 50.
    pub requests_per_second: f64,
    /// Calls a tenant may make at once after being idle. Default 100.
    pub burst: u32,
    /// Most tenants tracked at once. Beyond it, refilled buckets are
    /// forgotten first (a fresh bucket is the same), then the one with the
    /// most tokens left. Default 10 000.
    pub max_tenants: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 50.0,
            burst: 100,
            max_tenants: 10_000,
        }
    }
}

/// Why a [`RateLimitConfig`] cannot be used. Names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitConfigError {
    #[error("rate_limit.requests_per_second: must be a positive number")]
    Rate,
    #[error("rate_limit.burst: must be at least 1")]
    Burst,
    #[error("rate_limit.max_tenants: must be at least 1")]
    MaxTenants,
}

impl RateLimitConfig {
    pub fn validate(&self) -> Result<(), RateLimitConfigError> {
        if !(self.requests_per_second.is_finite() && self.requests_per_second > 0.0) {
            return Err(RateLimitConfigError::Rate);
        }
        if self.burst == 0 {
            return Err(RateLimitConfigError::Burst);
        }
        if self.max_tenants == 0 {
            return Err(RateLimitConfigError::MaxTenants);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// One token bucket per tenant, in bounded memory.
#[derive(Debug)]
pub struct TenantBuckets {
    rate: f64,
    burst: f64,
    max_tenants: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TenantBuckets {
    pub fn new(config: &RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        config.validate()?;
        Ok(Self {
            rate: config.requests_per_second,
            burst: f64::from(config.burst),
            max_tenants: config.max_tenants,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Takes one token from `tenant`'s bucket at `now`, or says how long
    /// until one is there.
    pub fn take(&self, tenant: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(tenant) && buckets.len() >= self.max_tenants {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(tenant.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                updated: now,
            };
            Ok(())
        } else {
            *bucket = Bucket {
                tokens,
                updated: now,
            };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }

    /// Forgets the buckets that have refilled (a fresh bucket is the same),
    /// or else the fullest one.
    fn make_room(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
        if buckets.len() >= self.max_tenants {
            let fullest = buckets
                .iter()
                .max_by(|a, b| {
                    self.refilled(*a.1, now)
                        .total_cmp(&self.refilled(*b.1, now))
                })
                .map(|(tenant, _)| tenant.clone());
            if let Some(tenant) = fullest {
                buckets.remove(&tenant);
            }
        }
    }

    /// How many tenants are tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// `RESOURCE_EXHAUSTED` with `RetryInfo` saying when to try again.
pub fn rate_limited(retry_after: Duration) -> Status {
    // Whole milliseconds, rounded up, so that retrying at the time given
    // finds a token.
    let millis = retry_after.as_nanos().div_ceil(1_000_000);
    let retry_after = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
    baton_service_kit::status::retry_after(
        Code::ResourceExhausted,
        "RATE_LIMITED",
        format!(
            "the tenant's rate limit is reached; retry in {} ms",
            retry_after.as_millis()
        ),
        retry_after,
    )
}

/// Limits each tenant's call rate.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    buckets: Arc<TenantBuckets>,
}

impl RateLimitLayer {
    pub fn new(config: &RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        Ok(Self {
            buckets: Arc::new(TenantBuckets::new(config)?),
        })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            buckets: self.buckets.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct RateLimitService<S> {
    inner: S,
    buckets: Arc<TenantBuckets>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RateLimitService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if let Some(principal) = request.extensions().get::<Principal>()
            && let Err(retry_after) = self.buckets.take(&principal.tenant, Instant::now())
        {
            tracing::info!(
                tenant = %principal.tenant,
                method = request.uri().path(),
                "call refused: rate limit"
            );
            return Either::Right(ready(Ok(rate_limited(retry_after).into_http())));
        }
        Either::Left(self.inner.call(request))
    }
}

/// Caps each tenant's concurrent streams. Hold the [`StreamPermit`] for as
/// long as the stream lives; dropping it frees the slot. Memory holds only
/// tenants with a stream open.
#[derive(Debug, Clone)]
pub struct StreamLimiter {
    max_per_tenant: usize,
    active: Arc<Mutex<HashMap<String, usize>>>,
}

impl StreamLimiter {
    pub fn new(max_per_tenant: usize) -> Self {
        Self {
            max_per_tenant,
            active: Arc::default(),
        }
    }

    /// A slot for one more stream of `tenant`, or `RESOURCE_EXHAUSTED`.
    pub fn try_acquire(&self, tenant: &str) -> Result<StreamPermit, Status> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let count = active.entry(tenant.to_string()).or_insert(0);
        if *count >= self.max_per_tenant {
            if *count == 0 {
                active.remove(tenant);
            }
            return Err(baton_service_kit::status::with_reason(
                Code::ResourceExhausted,
                "TOO_MANY_STREAMS",
                format!(
                    "the tenant has {} streams open, the most allowed; close one first",
                    self.max_per_tenant
                ),
            ));
        }
        *count += 1;
        Ok(StreamPermit {
            tenant: tenant.to_string(),
            active: self.active.clone(),
        })
    }

    /// How many streams `tenant` has open.
    pub fn active(&self, tenant: &str) -> usize {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.get(tenant).copied().unwrap_or(0)
    }

    /// How many tenants have a stream open.
    pub fn tenants(&self) -> usize {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One open stream's slot; freed on drop.
#[derive(Debug)]
pub struct StreamPermit {
    tenant: String,
    active: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = active.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                active.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    fn buckets(rate: f64, burst: u32, max_tenants: usize) -> TenantBuckets {
        TenantBuckets::new(&RateLimitConfig {
            requests_per_second: rate,
            burst,
            max_tenants,
        })
        .expect("valid")
    }

    #[test]
    fn a_tenant_gets_its_burst_then_one_call_per_interval() {
        let limiter = buckets(2.0, 3, 10);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("acme", start), Ok(()));
        }
        assert_eq!(limiter.take("acme", start), Err(Duration::from_millis(500)));
        // Another tenant is not affected.
        assert_eq!(limiter.take("globex", start), Ok(()));
        // Half an interval later: still empty, a quarter second to go.
        let later = start + Duration::from_millis(250);
        assert_eq!(limiter.take("acme", later), Err(Duration::from_millis(250)));
        let refilled = start + Duration::from_millis(500);
        assert_eq!(limiter.take("acme", refilled), Ok(()));
        assert!(limiter.take("acme", refilled).is_err());
    }

    #[test]
    fn memory_stays_bounded_by_max_tenants() {
        let limiter = buckets(1.0, 2, 3);
        let now = Instant::now();
        for tenant in 0..100 {
            assert_eq!(limiter.take(&format!("t{tenant}"), now), Ok(()));
            assert!(limiter.tracked() <= 3);
        }
        // A drained tenant stays drained while there is room.
        let limiter = buckets(1.0, 1, 3);
        assert_eq!(limiter.take("a", now), Ok(()));
        assert_eq!(limiter.take("b", now), Ok(()));
        assert!(limiter.take("a", now).is_err());
    }

    #[test]
    fn bad_settings_name_their_key() {
        let base = RateLimitConfig::default();
        let cases = [
            (
                RateLimitConfig {
                    requests_per_second: 0.0,
                    ..base.clone()
                },
                "rate_limit.requests_per_second",
            ),
            (
                RateLimitConfig {
                    requests_per_second: f64::NAN,
                    ..base.clone()
                },
                "rate_limit.requests_per_second",
            ),
            (
                RateLimitConfig {
                    burst: 0,
                    ..base.clone()
                },
                "rate_limit.burst",
            ),
            (
                RateLimitConfig {
                    max_tenants: 0,
                    ..base
                },
                "rate_limit.max_tenants",
            ),
        ];
        for (config, key) in cases {
            let error = config.validate().expect_err("refused").to_string();
            assert!(error.starts_with(key), "{error}");
        }
    }

    #[test]
    fn rate_limited_status_carries_retry_info_rounded_up() {
        let status = rate_limited(Duration::from_micros(1500));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status
            .get_error_details()
            .retry_info()
            .expect("retry info")
            .retry_delay;
        assert_eq!(retry, Some(Duration::from_millis(2)));
    }

    #[test]
    fn streams_are_capped_per_tenant_and_freed_on_drop() {
        let limiter = StreamLimiter::new(2);
        let first = limiter.try_acquire("acme").expect("first");
        let second = limiter.try_acquire("acme").expect("second");
        let refused = limiter.try_acquire("acme").expect_err("third");
        assert_eq!(refused.code(), Code::ResourceExhausted);
        let other = limiter.try_acquire("globex").expect("other tenant");
        assert_eq!(limiter.active("acme"), 2);
        drop(first);
        let third = limiter.try_acquire("acme").expect("freed slot");
        drop((second, third, other));
        assert_eq!(limiter.tenants(), 0);
        let none = StreamLimiter::new(0);
        assert!(none.try_acquire("acme").is_err());
        assert_eq!(none.tenants(), 0);
    }
}
