//! The replies of server transactions (RFC 3261 17.2), kept so that a
//! retransmitted request gets the same reply again without being handled
//! twice. The cache holds untrusted bytes (a reply copies every Via of its
//! request), so it is bounded twice: by age, since retransmissions stop
//! within 64*T1 (timers J and H), expired on every insert; and by bytes,
//! the oldest replies going first, so that a flood of large requests
//! cannot grow the process.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Replies by server transaction (branch and method), oldest first.
#[derive(Debug)]
pub struct ReplyCache {
    /// By key: the insertion's number, its time and the reply.
    replies: HashMap<String, (u64, Instant, Vec<u8>)>,
    /// Insertion order, for expiry and eviction from the oldest.
    order: VecDeque<(u64, Instant, String)>,
    next: u64,
    bytes: usize,
    max_bytes: usize,
    keep: Duration,
}

impl ReplyCache {
    /// Keeps each reply for `keep` (64*T1), at most `max_bytes` in all.
    pub fn new(keep: Duration, max_bytes: usize) -> Self {
        Self {
            replies: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            bytes: 0,
            max_bytes,
            keep,
        }
    }

    /// The reply already sent for `key`, if still fresh at `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<&[u8]> {
        self.replies
            .get(key)
            .filter(|(_, at, _)| now.saturating_duration_since(*at) < self.keep)
            .map(|(_, _, reply)| reply.as_slice())
    }

    /// Remembers `reply` for `key` at `now`, first dropping what expired,
    /// then the oldest until it fits. A reply larger than the whole bound
    /// is not kept (its retransmissions are handled again).
    pub fn insert(&mut self, key: String, reply: Vec<u8>, now: Instant) {
        while let Some((_, at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.keep {
                break;
            }
            self.evict_oldest();
        }
        if reply.len() > self.max_bytes {
            return;
        }
        while self.bytes + reply.len() > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        let number = self.next;
        self.next += 1;
        self.bytes += reply.len();
        if let Some((_, _, old)) = self.replies.insert(key.clone(), (number, now, reply)) {
            self.bytes -= old.len();
        }
        self.order.push_back((number, now, key));
        // A key answered twice leaves a stale entry in `order`; the map
        // and the byte count stay exact, and stale entries are swept here.
        if self.order.len() > 2 * self.replies.len() + 64 {
            let replies = &self.replies;
            self.order
                .retain(|(n, _, key)| replies.get(key).is_some_and(|(kept, _, _)| kept == n));
        }
    }

    /// Drops the oldest reply; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some((number, _, key)) = self.order.pop_front() else {
            return false;
        };
        // Only if this entry is the one kept (not replaced since).
        if self
            .replies
            .get(&key)
            .is_some_and(|(kept, _, _)| *kept == number)
            && let Some((_, _, reply)) = self.replies.remove(&key)
        {
            self.bytes -= reply.len();
        }
        true
    }

    /// The bytes of replies held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The replies held.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(32);

    #[test]
    fn replies_expire_by_age_on_every_insert() {
        let start = Instant::now();
        let mut cache = ReplyCache::new(KEEP, 1 << 20);
        cache.insert("a".into(), vec![1; 100], start);
        assert_eq!(cache.get("a", start + KEEP / 2), Some(&[1u8; 100][..]));
        // Past 64*T1 the reply is no longer served…
        assert_eq!(cache.get("a", start + KEEP), None);
        // …and the next insert frees it.
        cache.insert("b".into(), vec![2; 10], start + KEEP);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.bytes(), 10);
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest_first_and_refuses_a_giant() {
        let start = Instant::now();
        let mut cache = ReplyCache::new(KEEP, 1000);
        for i in 0..25u8 {
            cache.insert(format!("k{i}"), vec![i; 100], start);
            assert!(cache.bytes() <= 1000);
        }
        assert_eq!(cache.len(), 10);
        assert_eq!(cache.get("k14", start), None);
        assert!(cache.get("k15", start).is_some());
        cache.insert("giant".into(), vec![0; 1001], start);
        assert_eq!(cache.get("giant", start), None);
        assert_eq!(cache.bytes(), 1000);
    }

    #[test]
    fn a_key_answered_again_is_counted_once() {
        let start = Instant::now();
        let mut cache = ReplyCache::new(KEEP, 1000);
        for _ in 0..500 {
            cache.insert("same".into(), vec![0; 100], start);
        }
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.bytes(), 100);
        assert!(cache.order.len() <= 66);
        cache.insert("other".into(), vec![0; 950], start);
        assert_eq!(cache.bytes(), 950);
        assert_eq!(cache.get("same", start), None);
    }
}
