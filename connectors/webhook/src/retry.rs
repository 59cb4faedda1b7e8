//! When a delivery is retried, and after how long: 5xx, 429 and transport
//! failures (timeouts, refused connections) are retried with full-jitter
//! exponential backoff, or after the endpoint's `Retry-After`; any other
//! answer (2xx excepted) is final.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::config::RetryConfig;

/// What one HTTP answer (or its absence) means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Try again, after `retry_after` when the endpoint said.
    Retry {
        retry_after: Option<Duration>,
    },
    /// Final: the endpoint refused the message (4xx other than 429, 3xx).
    Rejected,
}

/// Classifies an HTTP status (with its `Retry-After` header, if any).
pub fn classify(status: u16, retry_after: Option<&str>, now: SystemTime) -> Verdict {
    match status {
        200..=299 => Verdict::Accepted,
        429 | 500..=599 => Verdict::Retry {
            retry_after: retry_after.and_then(|value| parse_retry_after(value, now)),
        },
        _ => Verdict::Rejected,
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); a
/// date in the past means now. Anything else is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait before retry number `retry` (1 for the first retry): uniform in
/// `[0, min(max_backoff, initial_backoff * 2^(retry-1))]`, so that many
/// connectors failing together do not retry together.
pub fn backoff(policy: &RetryConfig, retry: u32, rng: &mut impl Rng) -> Duration {
    let ceiling = policy
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
        .min(policy.max_backoff);
    ceiling.mul_f64(rng.random_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn server_errors_and_throttling_are_retried_client_errors_are_not() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(classify(204, None, now), Verdict::Accepted);
        assert_eq!(
            classify(503, None, now),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(
            classify(429, Some("7"), now),
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        for status in [301, 400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(
                classify(status, Some("5"), now),
                Verdict::Rejected,
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        // 2015-10-21T07:28:00Z is 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_is_jittered_below_it() {
        let policy = RetryConfig {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (retry, ceiling) in [(1, 100), (2, 200), (3, 400), (4, 500), (9, 500)] {
            let waits: Vec<Duration> = (0..200)
                .map(|_| backoff(&policy, retry, &mut rng))
                .collect();
            let ceiling = Duration::from_millis(ceiling);
            assert!(waits.iter().all(|w| *w <= ceiling), "retry {retry}");
            // Jittered: spread over the range, not pinned to the ceiling.
            assert!(waits.iter().any(|w| *w < ceiling / 2), "retry {retry}");
            assert!(waits.iter().any(|w| *w > ceiling / 2), "retry {retry}");
        }
    }
}
