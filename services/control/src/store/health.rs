//! Readiness follows the store: a replica whose store does not answer
//! cannot acknowledge a handoff, so it reports NOT_SERVING until the store
//! answers again, and load balancers send new calls to other replicas.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::StoreError;

#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// Checks that the store answers and takes writes (readiness): a
    /// store that still answers reads with a full disk is not serving.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// How often the store is checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Checks the store every [`CHECK_INTERVAL`] and sets `services` and the
/// overall status ("") to SERVING or NOT_SERVING accordingly. Runs until
/// aborted (abort it before reporting not-serving at shutdown).
pub async fn report_store_health(
    store: Arc<dyn StoreHealth>,
    health: HealthReporter,
    services: Vec<&'static str>,
) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A check that hangs counts as a failed one.
        let answered = matches!(
            tokio::time::timeout(CHECK_INTERVAL * 4, store.ping()).await,
            Ok(Ok(()))
        );
        if answered == serving {
            continue;
        }
        serving = answered;
        let status = if serving {
            tracing::info!("the store answers again; serving");
            ServingStatus::Serving
        } else {
            tracing::error!("the store does not answer; not serving");
            ServingStatus::NotServing
        };
        for service in services.iter().copied().chain([""]) {
            health.set_service_status(service, status).await;
        }
    }
}
