//! Pacing of requests to a platform's API, so that a connector respects the
//! platform's published rate limit by queueing instead of being throttled.
//!
//! A [`Pacer`] is a GCRA (generic cell rate algorithm) limiter: a steady
//! `rate` per second with a `burst` of requests allowed back to back. Each
//! caller reserves the next free slot and waits for it; the reservation says
//! how long and how many requests are ahead, which is what a connector
//! reports in a QUEUED event.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// One platform limit, shared by every transfer that calls that platform
/// (one per account, per endpoint…).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// How far ahead of `now` the theoretical arrival time may run before a
    /// request has to wait: `(burst - 1) * interval`.
    tolerance: Duration,
    /// The theoretical arrival time of the next request.
    next: Mutex<Option<Instant>>,
}

/// A reserved slot: when the request may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// How long to wait before sending; zero when it may go now.
    pub wait: Duration,
    /// Requests reserved before this one that are still waiting.
    pub ahead: u32,
    at: Instant,
}

impl Slot {
    /// Waits until the slot's time.
    pub async fn ready(self) {
        tokio::time::sleep_until(self.at).await;
    }
}

impl Pacer {
    /// At most `rate` requests per second on average, `burst` (at least 1)
    /// of them back to back. `rate` must be positive.
    pub fn new(rate: f64, burst: u32) -> Self {
        let interval = Duration::from_secs_f64(1.0 / rate.max(f64::MIN_POSITIVE));
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            next: Mutex::new(None),
        }
    }

    /// The spacing between requests at the steady rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Reserves the next free slot. A slot reserved and not used is lost,
    /// which only makes the pacing more conservative.
    pub fn reserve(&self) -> Slot {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let arrival = next.map_or(now, |next| next.max(now));
        let at = arrival
            .checked_sub(self.tolerance)
            .map_or(now, |earliest| earliest.max(now));
        *next = Some(arrival + self.interval);
        let wait = at.saturating_duration_since(now);
        let ahead = (wait.as_secs_f64() / self.interval.as_secs_f64()).ceil() as u32;
        Slot { wait, ahead, at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_requests_are_spaced_by_the_interval() {
        let pacer = Pacer::new(2.0, 3);
        let slots: Vec<Slot> = (0..6).map(|_| pacer.reserve()).collect();
        let waits: Vec<u128> = slots.iter().map(|s| s.wait.as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 500, 1000, 1500]);
        assert_eq!(
            slots.iter().map(|s| s.ahead).collect::<Vec<_>>(),
            [0, 0, 0, 1, 2, 3]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pacer_refills_its_burst() {
        let pacer = Pacer::new(1.0, 2);
        assert_eq!(pacer.reserve().wait, Duration::ZERO);
        assert_eq!(pacer.reserve().wait, Duration::ZERO);
        assert_eq!(pacer.reserve().wait, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(pacer.reserve().wait, Duration::ZERO);
        assert_eq!(pacer.reserve().wait, Duration::ZERO);
        assert_eq!(pacer.reserve().wait, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_ready_at_its_time() {
        let pacer = Pacer::new(4.0, 1);
        pacer.reserve().ready().await;
        let start = Instant::now();
        let slot = pacer.reserve();
        slot.ready().await;
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }
}
