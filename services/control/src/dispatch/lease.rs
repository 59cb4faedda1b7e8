//! Which replica dispatches a handoff. A replica dispatches a handoff only
//! while it holds the handoff's lease in the store: taken before
//! dispatching (with the create, or by claiming it), renewed every third of
//! its time to live, given up when dispatching stops. On start and then
//! periodically the dispatcher claims orphans (in-flight handoffs whose
//! lease is free or expired: never taken, or left by a replica that died)
//! and resumes them. With the embedded store there is one replica and the
//! leases are local; the code path is the same.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Dispatcher;
use crate::domain::Handoff;
use crate::store::{NewLease, StoreError};

/// The default time to live of a dispatch lease.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// How long a graceful shutdown spends giving up leases.
const SHUTDOWN_RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// The most orphans claimed at once.
const CLAIM_BATCH: usize = 64;

impl Dispatcher {
    /// Sets how long this replica's dispatch leases live without renewal.
    pub fn with_lease_ttl(mut self, lease_ttl: Duration) -> Self {
        self.lease_ttl = lease_ttl;
        self
    }

    /// This replica's name as a lease owner.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The dispatch lease to create a handoff with, so that this replica
    /// may [`Self::spawn`] it as soon as it is created.
    pub fn new_lease(&self) -> NewLease<'_> {
        NewLease {
            owner: &self.replica,
            ttl: self.lease_ttl,
        }
    }

    /// Dispatches while renewing the lease, and gives it up when
    /// dispatching stops.
    pub(super) async fn run_leased(&self, handoff: Handoff) {
        let (tenant, id) = (handoff.tenant.clone(), handoff.id.clone());
        tokio::select! {
            () = self.run(handoff) => {}
            () = self.keep_lease(&tenant, &id) => {
                tracing::warn!(handoff_id = %id, "dispatch lease lost; another replica takes over");
                return;
            }
        }
        if let Err(error) = self.store.release_lease(&tenant, &id, &self.replica).await {
            tracing::warn!(handoff_id = %id, %error, "cannot give up the dispatch lease; it expires");
        }
    }

    /// Renews the lease every third of its time to live; returns once it is
    /// lost: taken over, or not renewed within its time to live.
    async fn keep_lease(&self, tenant: &str, id: &str) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.lease_ttl / 3).await;
            match self
                .store
                .renew_lease(tenant, id, &self.replica, self.lease_ttl)
                .await
            {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(handoff_id = %id, %error, "cannot renew the dispatch lease");
                    if renewed.elapsed() >= self.lease_ttl {
                        return;
                    }
                }
            }
        }
    }

    /// Resumes every in-flight handoff no replica dispatches (all of them
    /// after a restart with the embedded store), then keeps claiming
    /// orphans every half lease: those of a replica that died, and those
    /// whose dispatch stopped while the store was unavailable.
    pub async fn resume_in_flight(self: &Arc<Self>) -> Result<usize, StoreError> {
        let resumed = self.claim_orphans().await?;
        let scanner = {
            let dispatcher = Arc::downgrade(self);
            let interval = self.lease_ttl / 2;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    let Some(dispatcher) = dispatcher.upgrade() else {
                        return;
                    };
                    if let Err(error) = dispatcher.claim_orphans().await {
                        tracing::warn!(%error, "cannot claim orphaned handoffs");
                    }
                }
            })
        };
        let previous = self
            .scanner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(scanner);
        if let Some(previous) = previous {
            previous.abort();
        }
        Ok(resumed)
    }

    async fn claim_orphans(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut count = 0;
        // Bounded: each round claims up to CLAIM_BATCH, and there are only
        // so many handoffs in flight.
        for _ in 0..1000 {
            // Never more than this replica can dispatch: the rest stay
            // orphans for another replica, or for a later round.
            let batch = CLAIM_BATCH.min(self.room());
            if batch == 0 {
                break;
            }
            let claimed = self
                .store
                .claim_orphans(&self.replica, self.lease_ttl, batch)
                .await?;
            let full = claimed.len() == batch;
            for handoff in claimed {
                tracing::info!(handoff_id = %handoff.id, state = ?handoff.state, "resuming handoff");
                count += 1;
                self.spawn(handoff);
            }
            if !full {
                break;
            }
        }
        Ok(count)
    }

    /// Stops dispatching (graceful shutdown) and gives up every lease, so
    /// that other replicas (or the next start) resume these handoffs at
    /// once instead of after the leases expire.
    pub async fn shutdown(&self) {
        if let Some(scanner) = self
            .scanner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            scanner.abort();
        }
        let tasks: Vec<(String, JoinHandle<()>)> = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.drain().collect()
        };
        let release = async {
            for (id, task) in tasks {
                task.abort();
                let _ = task.await;
                if let Ok(handoff) = self.store.find_by_id(&id).await {
                    let _ = self
                        .store
                        .release_lease(&handoff.tenant, &id, &self.replica)
                        .await;
                }
            }
        };
        // An unavailable store must not hold up the exit: leases expire.
        if tokio::time::timeout(SHUTDOWN_RELEASE_TIMEOUT, release)
            .await
            .is_err()
        {
            tracing::warn!("could not give up every dispatch lease; they expire");
        }
    }
}
