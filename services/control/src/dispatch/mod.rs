//! The dispatcher: carries each handoff through its plan, one target at a
//! time, turning the connector's transfer events into handoff events. On
//! start it resumes every handoff that was in flight; a connector
//! deduplicates a transfer by (handoff, attempt), so resuming re-attaches
//! to the running transfer, and the store drops events already recorded.
//!
//! It reaches connectors only through the [`ConnectorPort`]
//! (`crate::connector`), never through tonic, so that all of it runs in
//! unit tests against an in-memory port. One concern per module:
//!
//! - `lease`: which replica dispatches a handoff (taking, renewing, giving
//!   up and claiming dispatch leases).
//! - `plan`: the walk over a handoff's targets, from the attempt to
//!   resume to the handoff's end.
//! - `attempt`: one attempt against one connector (circuit breaker,
//!   capabilities, re-attaching while the connector is away), with the
//!   check every transfer stream must pass.
//! - `fence`: cancelling an attempt and waiting until its connector
//!   confirms, before anything else rings.
//! - `disclose`: the context a connector is given, at a start and with
//!   each update, audited before it is sent.
//! - `forward`: an applied context update, to the current attempt's
//!   connector when it takes updates.
//! - `record`: turning transfer events into handoff events and recording
//!   them (store, metrics, watchers).
//!
//! [`ConnectorPort`]: crate::connector::ConnectorPort

mod attempt;
mod disclose;
mod fence;
mod forward;
mod lease;
mod plan;
mod record;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::ContextReference;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::circuit::{Breakers, DispatchConfig};
use crate::connector::ConnectorRegistry;
use crate::disclosure::DataPolicy;
use crate::domain::{Attempt, Handoff};
use crate::hub::EventHub;
use crate::store::HandoffStore;
use crate::token::{Purpose, TokenSigner};

pub use lease::DEFAULT_LEASE_TTL;

pub struct Dispatcher {
    store: Arc<dyn HandoffStore>,
    hub: Arc<EventHub>,
    registry: ConnectorRegistry,
    tokens: TokenSigner,
    public_url: String,
    token_ttl: Duration,
    running: Mutex<HashMap<String, JoinHandle<()>>>,
    /// When each queued handoff was queued (milliseconds), for metrics.
    queued_at_ms: Mutex<HashMap<String, i64>>,
    /// This replica's name as the owner of dispatch leases; unique per
    /// process, so a restarted replica never mistakes its predecessor's
    /// leases for its own.
    replica: String,
    lease_ttl: Duration,
    /// The periodic claim of orphaned handoffs.
    scanner: Mutex<Option<JoinHandle<()>>>,
    /// Timeouts and retries by connector.
    dispatch: DispatchConfig,
    /// Each connector's circuit breaker.
    breakers: Breakers,
    /// What of a handoff's context goes to which connector, in which form.
    data_policy: DataPolicy,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The monotonic instant of a wall-clock deadline in Unix milliseconds.
fn instant_of(deadline_ms: i64) -> Instant {
    let remaining = u64::try_from(deadline_ms.saturating_sub(now_ms())).unwrap_or(0);
    Instant::now() + Duration::from_millis(remaining)
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn HandoffStore>,
        hub: Arc<EventHub>,
        registry: ConnectorRegistry,
        tokens: TokenSigner,
        public_url: String,
        token_ttl: Duration,
    ) -> Self {
        Self {
            store,
            hub,
            tokens,
            public_url,
            token_ttl,
            running: Mutex::new(HashMap::new()),
            queued_at_ms: Mutex::new(HashMap::new()),
            replica: Uuid::now_v7().to_string(),
            lease_ttl: DEFAULT_LEASE_TTL,
            scanner: Mutex::new(None),
            breakers: Breakers::new(registry.names(), &DispatchConfig::default()),
            dispatch: DispatchConfig::default(),
            registry,
            data_policy: DataPolicy::default(),
        }
    }

    /// Sets the data policy applied to the context sent to connectors.
    pub fn with_data_policy(mut self, data_policy: DataPolicy) -> Self {
        self.data_policy = data_policy;
        self
    }

    /// Sets the per-connector timeouts, retries and circuit breakers.
    pub fn with_dispatch(mut self, dispatch: DispatchConfig) -> Self {
        self.breakers = Breakers::new(self.registry.names(), &dispatch);
        self.dispatch = dispatch;
        self
    }

    /// A configured connector by name (the chat relay reaches the one
    /// serving a handoff's current attempt).
    pub fn connector(
        &self,
        name: &str,
    ) -> Result<&crate::connector::Connector, crate::connector::ConnectorUnavailable> {
        self.registry.get(name)
    }

    /// Every connector's circuit breaker.
    pub fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    /// How many more handoffs this replica can dispatch now.
    pub fn room(&self) -> usize {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        self.dispatch.max_in_flight.saturating_sub(running.len())
    }

    /// The signed reference to a handoff's context.
    pub fn reference(&self, handoff: &Handoff) -> ContextReference {
        let expires_ms = handoff
            .deadline_ms
            .saturating_add(i64::try_from(self.token_ttl.as_millis()).unwrap_or(i64::MAX));
        let expires = u32::try_from(expires_ms / 1000).unwrap_or(u32::MAX);
        let token = match Uuid::parse_str(&handoff.id) {
            Ok(id) => self.tokens.sign(id, Purpose::ReadContext, expires),
            Err(_) => String::new(),
        };
        let base = format!("{}/v1/handoffs/{}", self.public_url, handoff.id);
        ContextReference {
            handoff_id: handoff.id.clone(),
            context_url: format!("{base}/context?token={token}"),
            screen_pop_url: format!("{base}/screen-pop?token={token}"),
            token,
        }
    }

    /// Carries `handoff`, whose lease this replica holds, through its plan
    /// on a task of its own, unless this replica already runs it.
    pub fn spawn(self: &Arc<Self>, handoff: Handoff) {
        let id = handoff.id.clone();
        // Held while spawning, so that the task cannot forget itself before
        // it is registered.
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&id).is_some_and(|task| !task.is_finished()) {
            return;
        }
        let dispatcher = self.clone();
        let task_id = id.clone();
        let span = tracing::info_span!(
            "handoff.dispatch",
            handoff_id = %id,
            trace_id = tracing::field::Empty,
        );
        baton_service_kit::telemetry::record_trace_id(&span);
        // Boxed: the plan's future holds an attempt's whole state machine,
        // and spawning it inline copied its many kilobytes into the task.
        let task = tokio::spawn(
            Box::pin(async move {
                dispatcher.run_leased(handoff).await;
                dispatcher.forget(&task_id);
            })
            .instrument(span),
        );
        running.insert(id, task);
    }

    fn forget(&self, id: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        // Only this task's own entry: a newer task may have replaced it.
        if running
            .get(id)
            .is_some_and(|task| Some(task.id()) == tokio::task::try_id())
        {
            running.remove(id);
        }
    }

    /// Stops dispatching a handoff that was cancelled, and tells its
    /// connector to cancel the transfer.
    pub async fn stop(&self, handoff: &Handoff) {
        let task = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.remove(&handoff.id)
        };
        if let Some(task) = task {
            task.abort();
        }
        if let Some(attempt) = &handoff.current_attempt {
            self.cancel_transfer(&handoff.tenant, &handoff.id, attempt)
                .await;
        }
    }

    /// Cancels an attempt: tries once and waits for it, then, if the
    /// connector did not confirm, keeps trying in the background for up to
    /// the re-attach window (a restarting connector still gets it).
    async fn cancel_transfer(&self, tenant: &str, handoff_id: &str, attempt: &Attempt) {
        let Ok(connector) = self.registry.get(&attempt.planned.connector) else {
            return;
        };
        let settings = self.dispatch.settings(&connector.name);
        let now = Instant::now();
        if !fence::fence(
            connector,
            &settings,
            tenant,
            handoff_id,
            attempt.number,
            now,
        )
        .await
        {
            self.fence_in_background(connector, tenant, handoff_id, attempt.number);
        }
    }
}
