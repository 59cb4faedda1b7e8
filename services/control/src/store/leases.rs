//! Dispatch leases: which replica dispatches an in-flight handoff, until
//! when. A store shared by several processes keeps them in its rows under
//! the database's clock; a store one process owns keeps them in memory
//! ([`LeaseTable`]), where after a restart every in-flight handoff is an
//! orphan, claimed at once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::StoreError;
use crate::domain::Handoff;

#[async_trait]
pub trait DispatchLeases: Send + Sync + 'static {
    /// Extends `owner`'s lease to `ttl` from now. Returns false when
    /// `owner` no longer holds it (taken over, or the handoff ended): the
    /// owner must stop dispatching the handoff.
    async fn renew_lease(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives up `owner`'s lease, so that another replica may take the
    /// handoff at once. Nothing happens when `owner` does not hold it.
    /// `append` clears the lease itself when a handoff reaches a terminal
    /// state.
    async fn release_lease(&self, tenant: &str, id: &str, owner: &str) -> Result<(), StoreError>;

    /// Leases to `owner`, until `ttl` from now, up to `limit` in-flight
    /// handoffs whose lease is free or expired (orphans: never leased, or
    /// left by a replica that stopped or died), and returns them as they
    /// are now, in id order. Two replicas claiming at once never get the
    /// same handoff.
    async fn claim_orphans(
        &self,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError>;

    /// The run id and sequence of the last connector event recorded for an
    /// attempt, if any: where a replica that takes a handoff over resumes
    /// the connector's stream.
    async fn last_connector_position(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<Option<(String, u64)>, StoreError>;
}

/// A lease's time to live in milliseconds, as stored beside a clock.
pub(super) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// A claim of orphans: by whom, for how long, how many at most, when.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim<'a> {
    pub(super) owner: &'a str,
    pub(super) ttl: Duration,
    pub(super) limit: usize,
    pub(super) now: Instant,
}

/// Dispatch leases by handoff id, in memory, for a store one process owns.
/// Every method takes the moment it acts at, so that the arithmetic is
/// tested without waiting.
#[derive(Debug, Default)]
pub(super) struct LeaseTable {
    leases: Mutex<HashMap<String, Lease>>,
}

#[derive(Debug)]
struct Lease {
    tenant: String,
    owner: String,
    expires: Instant,
}

impl LeaseTable {
    fn leases(&self) -> MutexGuard<'_, HashMap<String, Lease>> {
        // A panic while holding the lock left the map whole: each change
        // is one insert or remove.
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leases `tenant`'s handoff `id` to `owner` until `ttl` after `now`,
    /// whoever held it.
    pub(super) fn grant(&self, tenant: &str, id: &str, owner: &str, ttl: Duration, now: Instant) {
        self.leases().insert(
            id.to_owned(),
            Lease {
                tenant: tenant.to_owned(),
                owner: owner.to_owned(),
                expires: now + ttl,
            },
        );
    }

    /// Whether `owner` holds `id`'s lease, expired or not: an owner may
    /// record until another has taken the handoff over.
    pub(super) fn held_by(&self, id: &str, owner: &str) -> bool {
        self.leases()
            .get(id)
            .is_some_and(|lease| lease.owner == owner)
    }

    pub(super) fn renew(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
        now: Instant,
    ) -> bool {
        match self.leases().get_mut(id) {
            Some(lease) if lease.owner == owner && lease.tenant == tenant => {
                lease.expires = now + ttl;
                true
            }
            _ => false,
        }
    }

    pub(super) fn release(&self, tenant: &str, id: &str, owner: &str) {
        let mut leases = self.leases();
        if leases
            .get(id)
            .is_some_and(|lease| lease.owner == owner && lease.tenant == tenant)
        {
            leases.remove(id);
        }
    }

    /// Forgets `id`'s lease: the handoff ended.
    pub(super) fn end(&self, id: &str) {
        self.leases().remove(id);
    }

    /// Leases to `owner` up to `limit` of the in-flight handoffs
    /// `candidates` (each known by its tenant and id, `key`) whose lease is
    /// free or expired at `now`, and returns them.
    pub(super) fn claim<T>(
        &self,
        candidates: Vec<T>,
        key: impl Fn(&T) -> (&str, &str),
        claim: Claim<'_>,
    ) -> Vec<T> {
        let mut leases = self.leases();
        let mut claimed = Vec::new();
        for candidate in candidates {
            if claimed.len() >= claim.limit {
                break;
            }
            let (tenant, id) = key(&candidate);
            if leases
                .get(id)
                .is_some_and(|lease| lease.expires > claim.now)
            {
                continue;
            }
            let lease = Lease {
                tenant: tenant.to_owned(),
                owner: claim.owner.to_owned(),
                expires: claim.now + claim.ttl,
            };
            leases.insert(id.to_owned(), lease);
            claimed.push(candidate);
        }
        claimed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    /// Claims among handoffs of tenant "t" known by id alone.
    fn claim<'a>(
        table: &LeaseTable,
        ids: &[&'a str],
        owner: &str,
        limit: usize,
        now: Instant,
    ) -> Vec<&'a str> {
        let claim = Claim {
            owner,
            ttl: TTL,
            limit,
            now,
        };
        table.claim(ids.to_vec(), |id| ("t", id), claim)
    }

    #[test]
    fn a_lease_is_the_owners_until_it_expires_or_is_released() {
        let table = LeaseTable::default();
        let start = Instant::now();
        table.grant("t", "h", "a", TTL, start);
        assert!(table.held_by("h", "a"));
        assert!(!table.held_by("h", "b"));
        assert!(claim(&table, &["h"], "b", 10, start).is_empty());
        // Only the owner, in the handoff's tenant, renews.
        assert!(!table.renew("t", "h", "b", TTL, start));
        assert!(!table.renew("other", "h", "a", TTL, start));
        assert!(table.renew("t", "h", "a", TTL, start + TTL / 2));
        assert!(
            claim(&table, &["h"], "b", 10, start + TTL).is_empty(),
            "renewed past the first expiry"
        );
        // Expired: taken over, and the old owner may no longer record.
        let later = start + TTL * 2;
        assert_eq!(claim(&table, &["h"], "b", 10, later), ["h"]);
        assert!(!table.held_by("h", "a"));
        assert!(!table.renew("t", "h", "a", TTL, later));
        // Released by another than its owner: nothing happens.
        table.release("t", "h", "a");
        assert!(table.held_by("h", "b"));
        table.release("t", "h", "b");
        assert!(!table.held_by("h", "b"));
        assert_eq!(claim(&table, &["h"], "c", 10, later), ["h"]);
    }

    #[test]
    fn claims_stop_at_the_limit_and_skip_held_leases() {
        let table = LeaseTable::default();
        let now = Instant::now();
        table.grant("t", "b", "other", TTL, now);
        let claimed = claim(&table, &["a", "b", "c", "d"], "me", 2, now);
        assert_eq!(claimed, ["a", "c"]);
        assert!(table.held_by("c", "me"));
        assert!(!table.held_by("d", "me"));
    }

    #[test]
    fn an_ended_handoff_has_no_lease() {
        let table = LeaseTable::default();
        let now = Instant::now();
        table.grant("t", "h", "a", TTL, now);
        table.end("h");
        assert!(!table.held_by("h", "a"));
        assert!(!table.renew("t", "h", "a", TTL, now));
    }
}
