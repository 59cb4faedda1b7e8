//! The call budget: a token bucket that holds one minute's worth of calls
//! and refills evenly, so a burst can spend the minute at once but the
//! average never passes `max_calls_per_minute`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct CallBudget {
    capacity: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl CallBudget {
    /// A full bucket of `per_minute` calls (at least 1).
    pub(crate) fn per_minute(per_minute: u32) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            capacity,
            per_second: capacity / 60.0,
            state: Mutex::new(Bucket {
                tokens: capacity,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Takes one call from the budget, if there is one.
    pub(crate) fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> bool {
        // A poisoned lock only means another caller panicked between two
        // float assignments; the bucket is still a bucket.
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now
            .checked_duration_since(bucket.refilled_at)
            .unwrap_or(Duration::ZERO);
        bucket.tokens =
            (bucket.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
        bucket.refilled_at = bucket.refilled_at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_minute_of_calls_then_refuses() {
        let budget = CallBudget::per_minute(3);
        let now = Instant::now();
        assert!(budget.try_take_at(now));
        assert!(budget.try_take_at(now));
        assert!(budget.try_take_at(now));
        assert!(!budget.try_take_at(now));
    }

    #[test]
    fn the_bucket_refills_evenly_and_no_higher_than_its_capacity() {
        let budget = CallBudget::per_minute(60);
        let start = Instant::now();
        for _ in 0..60 {
            assert!(budget.try_take_at(start));
        }
        assert!(!budget.try_take_at(start));
        // One call a second comes back.
        assert!(!budget.try_take_at(start + Duration::from_millis(500)));
        assert!(budget.try_take_at(start + Duration::from_millis(1_000)));
        assert!(!budget.try_take_at(start + Duration::from_millis(1_100)));
        // An hour idle refills one minute's worth, not sixty.
        let later = start + Duration::from_secs(3_600);
        for _ in 0..60 {
            assert!(budget.try_take_at(later));
        }
        assert!(!budget.try_take_at(later));
    }

    #[test]
    fn a_clock_read_out_of_order_does_not_mint_calls() {
        let budget = CallBudget::per_minute(1);
        let now = Instant::now() + Duration::from_secs(1);
        assert!(budget.try_take_at(now));
        assert!(!budget.try_take_at(now - Duration::from_millis(500)));
        assert!(!budget.try_take_at(now));
    }
}
