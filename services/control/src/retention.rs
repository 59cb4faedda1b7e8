//! The retention policy: transcripts and context of handoffs that ended
//! longer ago than `retention.context_ttl` are deleted, periodically. The
//! handoff record, its events and the audit log stay.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::RetentionConfig;
use crate::store::{HandoffStore, StoreError};

/// Handoffs purged per commit: bounds how long one purge holds the writer.
const BATCH: usize = 500;

/// Purges every handoff that ended before `now - context_ttl`, in batches.
/// Returns how many were purged.
pub async fn purge_once(
    store: &dyn HandoffStore,
    context_ttl: Duration,
    now: SystemTime,
) -> Result<usize, StoreError> {
    let cutoff = now
        .checked_sub(context_ttl)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut total = 0;
    // Bounded: each batch purges what it selects, so the next one selects
    // others; stop at a short batch (or after a generous number of them).
    for _ in 0..10_000 {
        let purged = store.purge_contexts(cutoff, BATCH).await?;
        total += purged;
        if purged < BATCH {
            break;
        }
    }
    Ok(total)
}

/// Runs [`purge_once`] at start and then every `purge_interval`, forever.
pub async fn purge_periodically(store: Arc<dyn HandoffStore>, config: RetentionConfig) {
    let mut ticks = tokio::time::interval(config.purge_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match purge_once(store.as_ref(), config.context_ttl, SystemTime::now()).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "retention: transcripts and context deleted"),
            Err(error) => tracing::warn!(%error, "retention purge failed; retrying later"),
        }
    }
}
