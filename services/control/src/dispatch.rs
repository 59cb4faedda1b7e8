//! The dispatcher: carries each handoff through its plan, one target at a
//! time, turning the connector's transfer events into handoff events. On
//! start it resumes every handoff that was in flight; a connector
//! deduplicates `StartTransfer` by (handoff, attempt), so resuming re-attaches
//! to the running transfer, and the store drops events already recorded.
//!
//! A replica dispatches a handoff only while it holds the handoff's lease
//! in the store (see `store`): taken before dispatching, renewed every
//! third of its time to live, given up when dispatching stops. On start and
//! then periodically the dispatcher claims orphans (in-flight handoffs
//! whose lease is free or expired: never taken, or left by a replica that
//! died) and resumes them. With the embedded store there is one replica and
//! the leases are local; the code path is the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_proto::connector::v1::{
    CancelTransferRequest, ContextReference, StartTransferRequest, StartTransferResponse,
    TransferEventKind,
};
use baton_proto::types::v1::FailureReason;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::circuit::{
    Admission, Breakers, DispatchConfig, DispatchSettings, Permit, jittered_backoff,
};
use crate::domain::envelope::build_envelope;
use crate::domain::routing::kind_name;
use crate::domain::{
    Attempt, ConnectorPosition, EventKind, EventRecord, Failure, Handoff, HandoffState, NewEvent,
    QueueStatus,
};
use crate::hub::EventHub;
use crate::metrics::metrics;
use crate::registry::{ConnectorHandle, ConnectorRegistry};
use crate::store::{AuditEntry, HandoffStore, NewLease, StoreError};
use crate::token::{Purpose, TokenSigner};

/// How a transfer to one target ended, from the dispatcher's side.
enum TransferOutcome {
    /// Nothing more to do: completed, cancelled, or ended elsewhere.
    Finished,
    /// The target failed; try the next one.
    TargetFailed(Failure, Option<ConnectorPosition>),
    /// The handoff's deadline passed before a human was connected.
    DeadlineExceeded,
}

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
}

/// The default time to live of a dispatch lease.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// How long a graceful shutdown spends giving up leases.
const SHUTDOWN_RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// The most orphans claimed at once.
const CLAIM_BATCH: usize = 64;

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
        }
    }

    /// Sets the per-connector timeouts, retries and circuit breakers.
    pub fn with_dispatch(mut self, dispatch: DispatchConfig) -> Self {
        self.breakers = Breakers::new(self.registry.names(), &dispatch);
        self.dispatch = dispatch;
        self
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

    /// Sets how long this replica's dispatch leases live without renewal.
    pub fn with_lease_ttl(mut self, lease_ttl: Duration) -> Self {
        self.lease_ttl = lease_ttl;
        self
    }

    /// This replica's name as a lease owner.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Records an event, with `audit` in the same commit when given, and
    /// tells the watchers.
    pub async fn record(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        self.record_as(tenant, id, event, None, audit).await
    }

    /// Records an event of a handoff this replica dispatches, only while
    /// it holds the handoff's lease, and tells the watchers.
    async fn record_leased(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        self.record_as(tenant, id, event, Some(&self.replica), None)
            .await
    }

    /// Appends `event` (fenced by the lease of `owner` when given) in a
    /// span of its own, counts it, logs it and tells the watchers.
    async fn record_as(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: Option<&str>,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        let span = tracing::info_span!(
            "handoff.event",
            otel.name = %format_args!("handoff {:?}", event.kind),
            baton.event = ?event.kind,
            baton.state = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let (handoff, record) = self
            .store
            .append_as(tenant, id, event, owner, audit)
            .instrument(span.clone())
            .await?;
        metrics().store_operation("append", started.elapsed());
        span.record("baton.state", record.state.as_str());
        metrics().event_recorded(&handoff, &record, self.queued_at(&record));
        tracing::info!(
            handoff_id = %id,
            sequence = record.sequence,
            event = ?record.kind,
            state = ?record.state,
            "handoff event"
        );
        self.hub.publish(&record);
        Ok((handoff, record))
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

    /// When the current attempt of `record`'s handoff was queued, for the
    /// queue-wait metric; forgotten once the handoff connects or ends.
    fn queued_at(&self, record: &EventRecord) -> Option<i64> {
        let mut queued = self.queued_at_ms.lock().unwrap_or_else(|e| e.into_inner());
        match record.kind {
            EventKind::Queued => {
                queued
                    .entry(record.handoff_id.clone())
                    .or_insert(record.time_ms);
                None
            }
            EventKind::TargetStarted => {
                queued.remove(&record.handoff_id);
                None
            }
            EventKind::Connected => queued.remove(&record.handoff_id),
            _ if record.state.is_terminal() => queued.remove(&record.handoff_id),
            _ => None,
        }
    }

    /// The dispatch lease to create a handoff with, so that this replica
    /// may [`Self::spawn`] it as soon as it is created.
    pub fn new_lease(&self) -> NewLease<'_> {
        NewLease {
            owner: &self.replica,
            ttl: self.lease_ttl,
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
        let task = tokio::spawn(
            async move {
                dispatcher.run_leased(handoff).await;
                dispatcher.forget(&task_id);
            }
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

    /// Dispatches while renewing the lease, and gives it up when
    /// dispatching stops.
    async fn run_leased(&self, handoff: Handoff) {
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
            self.cancel_transfer(&handoff.id, attempt).await;
        }
    }

    /// Cancels an attempt: tries once and waits for it, then, if the
    /// connector did not confirm, keeps trying in the background for up to
    /// the re-attach window (a restarting connector still gets it).
    async fn cancel_transfer(&self, handoff_id: &str, attempt: &Attempt) {
        let Ok(handle) = self.registry.get(&attempt.planned.connector) else {
            return;
        };
        let settings = self.dispatch.settings(&handle.name);
        let now = Instant::now();
        if !fence(handle, &settings, handoff_id, attempt.number, now).await {
            self.fence_in_background(handle, handoff_id, attempt.number);
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

    /// Which attempt to run next, and whether its TARGET_STARTED is still to
    /// be recorded.
    async fn next_attempt(&self, handoff: &Handoff) -> Result<(u32, bool), StoreError> {
        let Some(current) = &handoff.current_attempt else {
            return Ok((1, true));
        };
        if handoff.state != HandoffState::Routing {
            return Ok((current.number, false));
        }
        // In routing, the last event says whether the current attempt had
        // started or had already failed.
        let last = self
            .store
            .events_after(&handoff.tenant, &handoff.id, handoff.last_sequence - 1, 1)
            .await?;
        let failed = last
            .first()
            .is_some_and(|e| e.kind == EventKind::TargetFailed);
        Ok(if failed {
            (current.number + 1, true)
        } else {
            (current.number, false)
        })
    }

    async fn run(&self, handoff: Handoff) {
        let (tenant, id) = (handoff.tenant.clone(), handoff.id.clone());
        if let Err(error) = self.run_plan(&handoff).await {
            match error {
                // The handoff ended elsewhere (e.g. cancelled), or another
                // replica took it over: nothing to do here.
                StoreError::IllegalTransition(_) | StoreError::Duplicate => {}
                StoreError::LeaseLost => {
                    tracing::warn!(handoff_id = %id, "dispatch lease lost; another replica took over");
                }
                // Nothing can be recorded now; the handoff stays in flight
                // and is claimed again once the store answers (its deadline
                // still applies then).
                StoreError::Unavailable(error) => {
                    tracing::warn!(handoff_id = %id, %error, "store unavailable; dispatch paused");
                }
                error => {
                    tracing::error!(handoff_id = %id, %error, "dispatch stopped");
                    let failure = Failure::new(
                        FailureReason::ConnectorError,
                        "internal error while routing",
                    );
                    let _ = self
                        .record_leased(
                            &tenant,
                            &id,
                            NewEvent::new(EventKind::Failed).failure(failure),
                        )
                        .await;
                }
            }
        }
    }

    async fn run_plan(&self, handoff: &Handoff) -> Result<(), StoreError> {
        let (tenant, id) = (handoff.tenant.as_str(), handoff.id.as_str());
        let (mut number, mut needs_start) = self.next_attempt(handoff).await?;
        let mut last_failure: Option<Failure> = None;
        loop {
            let connected = handoff.state == HandoffState::Connected && !needs_start;
            if !connected && now_ms() >= handoff.deadline_ms {
                return self.fail_deadline(handoff, number).await;
            }
            let Some(planned) = handoff.planned(number).cloned() else {
                let detail = match &last_failure {
                    Some(failure) => format!(
                        "all {} targets failed; the last with {:?}: {}",
                        handoff.plan.len(),
                        failure.reason,
                        failure.detail
                    ),
                    None => "no target to try".into(),
                };
                let failure = Failure::new(FailureReason::AllTargetsFailed, detail);
                self.record_leased(
                    tenant,
                    id,
                    NewEvent::new(EventKind::Failed).failure(failure),
                )
                .await?;
                return Ok(());
            };
            let attempt = Attempt { number, planned };
            if needs_start {
                self.record_leased(
                    tenant,
                    id,
                    NewEvent::new(EventKind::TargetStarted).attempt(attempt.clone()),
                )
                .await?;
            }
            match self
                .transfer(handoff, &attempt, connected, needs_start)
                .await?
            {
                TransferOutcome::Finished => return Ok(()),
                TransferOutcome::DeadlineExceeded => {
                    return self.fail_deadline(handoff, number).await;
                }
                TransferOutcome::TargetFailed(failure, position) => {
                    tracing::info!(
                        handoff_id = %id,
                        attempt = number,
                        connector = %attempt.planned.connector,
                        reason = ?failure.reason,
                        "target failed; trying the next"
                    );
                    let mut event = NewEvent::new(EventKind::TargetFailed)
                        .attempt(attempt)
                        .failure(failure.clone());
                    event.connector_position = position;
                    match self.record_leased(tenant, id, event).await {
                        Ok(_) | Err(StoreError::Duplicate) => {}
                        Err(error) => return Err(error),
                    }
                    last_failure = Some(failure);
                    number += 1;
                    needs_start = true;
                }
            }
        }
    }

    async fn fail_deadline(&self, handoff: &Handoff, number: u32) -> Result<(), StoreError> {
        if let Some(planned) = handoff.planned(number) {
            let attempt = Attempt {
                number,
                planned: planned.clone(),
            };
            self.cancel_transfer(&handoff.id, &attempt).await;
        }
        let failure = Failure::new(
            FailureReason::DeadlineExceeded,
            "no human was connected before the handoff's deadline",
        );
        self.record_leased(
            &handoff.tenant,
            &handoff.id,
            NewEvent::new(EventKind::Failed).failure(failure),
        )
        .await?;
        Ok(())
    }

    /// Runs one attempt: circuit breaker, capability check, StartTransfer,
    /// and the event stream until a terminal event. `fresh` says whether
    /// this is a new attempt (which an open circuit skips) or a resumed
    /// one (whose transfer the connector may already run).
    async fn transfer(
        &self,
        handoff: &Handoff,
        attempt: &Attempt,
        mut connected: bool,
        fresh: bool,
    ) -> Result<TransferOutcome, StoreError> {
        let name = attempt.planned.connector.as_str();
        let settings = self.dispatch.settings(name);
        let last_target = handoff.planned(attempt.number + 1).is_none();
        let mut permit = match self.breakers.get(name) {
            None => None,
            // An open circuit skips a connector to reach the next target
            // sooner; the last target has none, so it waits for its
            // connector (within the re-attach window) instead of failing.
            Some(breaker) if fresh && !last_target => match breaker.admit() {
                Admission::Admitted(permit) => Some(permit),
                Admission::Skipped { failures } => {
                    metrics().circuit_skip(name);
                    tracing::info!(handoff_id = %handoff.id, connector = name, "circuit open; skipping the connector");
                    return Ok(TransferOutcome::TargetFailed(
                        Failure::new(
                            FailureReason::ConnectorError,
                            format!(
                                "connector {name} skipped: its circuit is open after {failures} consecutive failures"
                            ),
                        ),
                        None,
                    ));
                }
            },
            Some(breaker) => Some(breaker.observe()),
        };
        let connector_error = |permit: &mut Option<Permit>, detail: String| {
            metrics().connector_error(name);
            if let Some(permit) = permit {
                permit.failure();
            }
            Ok(TransferOutcome::TargetFailed(
                Failure::new(FailureReason::ConnectorError, detail),
                None,
            ))
        };
        let handle = match self.registry.get(name) {
            Ok(handle) => handle,
            Err(error) => return connector_error(&mut permit, error.to_string()),
        };
        // Whether the connector may hold this transfer: a StartTransfer
        // reached it (accepted, or sent and unanswered), or this attempt
        // was started before this task (resumed after a restart of the
        // control service). Such a transfer is re-attached, never failed
        // over at once, and is fenced before any fallback.
        let mut held = !fresh;
        // Since when the connector has not taken this transfer's stream.
        let mut unreachable_since: Option<Instant> = None;
        let mut retried = 0;
        let deadline = instant_of(handoff.deadline_ms);
        let (info, checked_earlier) = loop {
            match handle.recent_check().await {
                Ok(checked) => break checked,
                // Nothing to wait for: the next target takes the customer.
                Err(error) if !held && !last_target => {
                    return connector_error(&mut permit, error.to_string());
                }
                Err(error) => {
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    let unreachable = Unreachable {
                        since,
                        held,
                        connected,
                        deadline,
                    };
                    match self
                        .after_unreachable(
                            handle,
                            attempt.number,
                            &handoff.id,
                            unreachable,
                            &mut retried,
                            error.to_string(),
                        )
                        .await
                    {
                        None => continue,
                        Some(Ok(outcome)) => return Ok(outcome),
                        Some(Err(detail)) => return connector_error(&mut permit, detail),
                    }
                }
            }
        };
        let kind = attempt.planned.target.kind();
        if !info.target_kinds().any(|k| k == kind) {
            return Ok(TransferOutcome::TargetFailed(
                Failure::new(
                    FailureReason::Unsupported,
                    format!(
                        "connector {} does not serve {} targets",
                        handle.name,
                        kind_name(kind)
                    ),
                ),
                None,
            ));
        }
        let mode = handoff.mode.to_proto();
        if !info.transfer_modes().any(|m| m == mode) {
            return Ok(TransferOutcome::TargetFailed(
                Failure::new(
                    FailureReason::Unsupported,
                    format!(
                        "connector {} does not support {:?} transfers",
                        handle.name, handoff.mode
                    ),
                ),
                None,
            ));
        }

        let envelope = build_envelope(
            self.reference(handoff),
            &handoff.conversation,
            &handoff.context,
            &info.context_capabilities,
        );
        let request = StartTransferRequest {
            handoff_id: handoff.id.clone(),
            attempt: attempt.number,
            target: Some(attempt.planned.target.to_proto()),
            mode: mode as i32,
            envelope: Some(envelope),
            deadline: Some(timestamp_of(handoff.deadline_ms)),
        };
        loop {
            let call = tracing::info_span!(
                "connector.start_transfer",
                otel.name = "baton.connector.v1.ConnectorService/StartTransfer",
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = "baton.connector.v1.ConnectorService",
                rpc.method = "StartTransfer",
                baton.connector = %handle.name,
                baton.attempt = attempt.number,
            );
            let followed = self
                .follow(
                    handoff,
                    attempt,
                    handle,
                    &settings,
                    request.clone(),
                    deadline,
                    fresh && retried == 0,
                    &mut connected,
                    &mut permit,
                )
                .instrument(call)
                .await?;
            let detail = match followed {
                Followed::Outcome(outcome) => {
                    if let TransferOutcome::TargetFailed(failure, _) = &outcome
                        && failure.reason == FailureReason::Unsupported
                    {
                        // Its capabilities may have changed since the check.
                        handle.forget_check();
                    }
                    return Ok(outcome);
                }
                Followed::Faulty(detail) => {
                    handle.forget_check();
                    // Hung or garbled: sending it again would only wait
                    // again. Whatever the connector did with the transfer
                    // is cancelled, and the cancel confirmed, before the
                    // next target rings, so that the customer is never
                    // with two humans.
                    tracing::warn!(handoff_id = %handoff.id, connector = %handle.name, %detail, "connector faulty; cancelling before the next target");
                    if !fence(handle, &settings, &handoff.id, attempt.number, deadline).await {
                        return Ok(TransferOutcome::DeadlineExceeded);
                    }
                    return connector_error(&mut permit, detail);
                }
                Followed::Broken { detail, reach } => {
                    handle.forget_check();
                    match reach {
                        Reach::Accepted => {
                            held = true;
                            unreachable_since = None;
                        }
                        Reach::Sent => held = true,
                        Reach::Refused => {}
                    }
                    detail
                }
            };
            let since = *unreachable_since.get_or_insert_with(Instant::now);
            if !held && !last_target {
                // The connector never had this transfer and another target
                // can take the customer: fail over as soon as the connector
                // is known to be down. A first call that failed on an
                // earlier check's word checks now, as it would have
                // without that check.
                if checked_earlier
                    && retried == 0
                    && let Err(error) = handle.recent_check().await
                {
                    return connector_error(&mut permit, error.to_string());
                }
                if retried >= settings.retries {
                    return connector_error(&mut permit, detail);
                }
            }
            let unreachable = Unreachable {
                since,
                held,
                connected,
                deadline,
            };
            match self
                .after_unreachable(
                    handle,
                    attempt.number,
                    &handoff.id,
                    unreachable,
                    &mut retried,
                    detail,
                )
                .await
            {
                None => {}
                Some(Ok(outcome)) => return Ok(outcome),
                Some(Err(detail)) => return connector_error(&mut permit, detail),
            }
        }
    }

    /// After the connector could not be reached or the stream broke: waits
    /// before the next try (None), or says how the attempt ends: an
    /// outcome, or a connector error (`Err`, which counts toward the
    /// breaker). A transfer the connector may hold is re-attached for the
    /// re-attach window, then cancelled (confirmed) and lost.
    async fn after_unreachable(
        &self,
        handle: &ConnectorHandle,
        number: u32,
        handoff_id: &str,
        unreachable: Unreachable,
        retried: &mut u32,
        detail: String,
    ) -> Option<Result<TransferOutcome, String>> {
        let settings = self.dispatch.settings(&handle.name);
        let Unreachable {
            since,
            held,
            connected,
            deadline,
        } = unreachable;
        if since.elapsed() >= settings.reattach_window {
            if connected {
                // The human has the customer; a connector that went away
                // after connecting does not undo that.
                tracing::warn!(handoff_id, connector = %handle.name, "connector gone after connect; the handoff stays connected");
                return Some(Ok(TransferOutcome::Finished));
            }
            if !held {
                return Some(Err(detail));
            }
            // Not a fault of this transfer: the breaker guards new work
            // (whose calls are refused while the connector is down).
            metrics().connector_error(&handle.name);
            if !fence(handle, &settings, handoff_id, number, deadline).await {
                return Some(Ok(TransferOutcome::DeadlineExceeded));
            }
            return Some(Ok(TransferOutcome::TargetFailed(
                Failure::new(
                    FailureReason::ConnectorLost,
                    format!(
                        "connector {} did not come back within {:?} ({detail}); its transfer was cancelled",
                        handle.name, settings.reattach_window
                    ),
                ),
                None,
            )));
        }
        if Instant::now() >= deadline {
            return Some(Ok(TransferOutcome::DeadlineExceeded));
        }
        // The connector may be restarting. Sending StartTransfer again is
        // safe: connectors deduplicate it by (handoff, attempt), journal it
        // across restarts, and replay or resume the transfer, so it
        // re-attaches instead of transferring twice.
        let backoff = jittered_backoff(settings.retry_backoff, *retried).min(MAX_REATTACH_PAUSE);
        *retried += 1;
        tracing::warn!(
            handoff_id,
            connector = %handle.name,
            %detail,
            retried = *retried,
            held,
            "connector unavailable or stream broke; re-attaching with StartTransfer again"
        );
        tokio::time::sleep_until((Instant::now() + backoff).min(deadline)).await;
        None
    }

    /// Fences an attempt on a task of its own, for up to the re-attach
    /// window: for cancels nothing waits on (the handoff was cancelled or
    /// its deadline passed), which must still reach a connector that is
    /// restarting.
    fn fence_in_background(&self, handle: &ConnectorHandle, handoff_id: &str, number: u32) {
        let settings = self.dispatch.settings(&handle.name);
        let until = Instant::now() + settings.reattach_window;
        let (handle, handoff_id) = (handle.clone(), handoff_id.to_owned());
        tokio::spawn(async move {
            fence(&handle, &settings, &handoff_id, number, until).await;
        });
    }

    /// One StartTransfer call and its stream, until an outcome, a break,
    /// or a fault (a hang or a breach of the contract).
    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &self,
        handoff: &Handoff,
        attempt: &Attempt,
        handle: &ConnectorHandle,
        settings: &DispatchSettings,
        request: StartTransferRequest,
        deadline: Instant,
        first_call: bool,
        connected: &mut bool,
        permit: &mut Option<Permit>,
    ) -> Result<Followed, StoreError> {
        // What is already recorded of this attempt: replays of the same run
        // are skipped; a new run (a restarted connector) is not. Nothing is
        // on the first call of an attempt this task has just started.
        let recorded = if first_call {
            None
        } else {
            self.store
                .last_connector_position(&handoff.id, attempt.number)
                .await?
        };
        // No grpc-timeout on the call: it would end the whole stream, which
        // lives as long as the transfer. Only its acceptance is timed.
        let mut request = tonic::Request::new(request);
        baton_service_kit::telemetry::inject_traceparent(request.metadata_mut());
        let started = tokio::time::timeout_at(
            (Instant::now() + settings.start_timeout).min(deadline),
            handle.client().start_transfer(request),
        )
        .await;
        let mut stream = match started {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                let detail = format!("{}: {}", handle.name, status.message());
                return Ok(match status.code() {
                    tonic::Code::Unimplemented | tonic::Code::InvalidArgument => {
                        Followed::Outcome(TransferOutcome::TargetFailed(
                            Failure::new(FailureReason::Unsupported, detail),
                            None,
                        ))
                    }
                    _ => Followed::Broken {
                        detail,
                        reach: reach_of(&status),
                    },
                });
            }
            Err(_) if Instant::now() >= deadline => {
                return Ok(Followed::Outcome(TransferOutcome::DeadlineExceeded));
            }
            Err(_) => {
                return Ok(Followed::Faulty(format!(
                    "{}: StartTransfer not accepted within {:?}",
                    handle.name, settings.start_timeout
                )));
            }
        };

        // The contract every stream keeps: one run, sequences 1, 2, 3…
        let mut stream_check = StreamCheck::default();
        // Whether the breaker was told that this stream works.
        let mut credited = false;
        let first_event_by = Instant::now() + settings.first_event_timeout;
        loop {
            let next = if *connected {
                // A human has the customer: the deadline no longer applies.
                Ok(stream.message().await)
            } else if stream_check.seen == 0 && first_event_by < deadline {
                match tokio::time::timeout_at(first_event_by, stream.message()).await {
                    Ok(next) => Ok(next),
                    Err(_) => {
                        return Ok(Followed::Faulty(format!(
                            "{}: no transfer event within {:?} of StartTransfer",
                            handle.name, settings.first_event_timeout
                        )));
                    }
                }
            } else {
                tokio::time::timeout_at(deadline, stream.message()).await
            };
            let message = match next {
                Err(_) => return Ok(Followed::Outcome(TransferOutcome::DeadlineExceeded)),
                Ok(Ok(Some(message))) => message,
                Ok(Ok(None)) | Ok(Err(_)) if *connected => {
                    // The human has the customer; losing the connector's
                    // stream now does not undo that.
                    tracing::warn!(handoff_id = %handoff.id, "connector stream ended after connect");
                    return Ok(Followed::Outcome(TransferOutcome::Finished));
                }
                Ok(Ok(None)) => {
                    return Ok(Followed::Broken {
                        detail: format!("{} ended the transfer without an outcome", handle.name),
                        reach: Reach::Accepted,
                    });
                }
                // Bytes that do not decode as the contract's messages.
                Ok(Err(status)) if status.code() == tonic::Code::Internal => {
                    return Ok(Followed::Faulty(format!(
                        "{}: malformed transfer event: {}",
                        handle.name,
                        status.message()
                    )));
                }
                Ok(Err(status)) => {
                    return Ok(Followed::Broken {
                        detail: format!("{}: {}", handle.name, status.message()),
                        reach: Reach::Accepted,
                    });
                }
            };
            if let Err(violation) = stream_check.admit(&message) {
                if *connected {
                    tracing::warn!(handoff_id = %handoff.id, connector = %handle.name, %violation, "connector broke the contract after connect");
                    return Ok(Followed::Outcome(TransferOutcome::Finished));
                }
                return Ok(Followed::Faulty(format!("{}: {violation}", handle.name)));
            }
            let replayed = recorded.as_ref().is_some_and(|(run, sequence)| {
                *run == message.run_id && message.sequence <= *sequence
            });
            let applied = if replayed {
                Applied::Continue {
                    now_connected: false,
                }
            } else {
                self.apply(handoff, attempt, &message).await?
            };
            if !credited
                && !matches!(applied, Applied::Violation(_))
                && let Some(permit) = permit.as_mut()
            {
                // The connector answers as the contract says: its circuit
                // closes.
                permit.success();
                credited = true;
            }
            match applied {
                Applied::Continue { now_connected } => *connected |= now_connected,
                Applied::Finished => return Ok(Followed::Outcome(TransferOutcome::Finished)),
                Applied::TargetFailed(failure) => {
                    return Ok(Followed::Outcome(TransferOutcome::TargetFailed(
                        failure,
                        Some(ConnectorPosition {
                            run_id: message.run_id.clone(),
                            sequence: message.sequence,
                        }),
                    )));
                }
                Applied::Violation(violation) if *connected => {
                    tracing::warn!(handoff_id = %handoff.id, connector = %handle.name, %violation, "connector broke the contract after connect");
                    return Ok(Followed::Outcome(TransferOutcome::Finished));
                }
                Applied::Violation(violation) => {
                    return Ok(Followed::Faulty(format!("{}: {violation}", handle.name)));
                }
            }
        }
    }

    /// Whether this attempt already recorded an event of `kind` (a
    /// restarted connector reports it again).
    async fn reported_before(
        &self,
        handoff: &Handoff,
        number: u32,
        kind: EventKind,
    ) -> Result<bool, StoreError> {
        let events = self
            .store
            .events_after(&handoff.tenant, &handoff.id, 0, 1000)
            .await?;
        Ok(events.iter().any(|event| {
            event.kind == kind && event.attempt.as_ref().is_some_and(|a| a.number == number)
        }))
    }

    async fn apply(
        &self,
        handoff: &Handoff,
        attempt: &Attempt,
        message: &StartTransferResponse,
    ) -> Result<Applied, StoreError> {
        let kind = match TransferEventKind::try_from(message.kind) {
            Ok(TransferEventKind::Queued) => EventKind::Queued,
            Ok(TransferEventKind::Offered) => EventKind::Offered,
            Ok(TransferEventKind::Ringing) => EventKind::Ringing,
            Ok(TransferEventKind::Answered) => EventKind::Answered,
            Ok(TransferEventKind::ContextDelivered) => EventKind::ContextDelivered,
            Ok(TransferEventKind::Connected) => EventKind::Connected,
            Ok(TransferEventKind::Completed) => EventKind::Completed,
            Ok(TransferEventKind::Cancelled) => EventKind::Cancelled,
            Ok(TransferEventKind::Failed) => {
                let reason = match FailureReason::try_from(message.failure_reason) {
                    Ok(FailureReason::Unspecified) | Err(_) => FailureReason::ConnectorError,
                    Ok(reason) => reason,
                };
                return Ok(Applied::TargetFailed(Failure::new(
                    reason,
                    message.detail.clone(),
                )));
            }
            Ok(TransferEventKind::Unspecified) => {
                return Ok(Applied::Violation(
                    "a transfer event without a kind (TRANSFER_EVENT_KIND_UNSPECIFIED)".into(),
                ));
            }
            Err(_) => {
                // A kind from a newer contract: skipped (StreamCheck bounds
                // how many).
                tracing::warn!(handoff_id = %handoff.id, kind = message.kind, "ignoring unknown transfer event");
                return Ok(Applied::Continue {
                    now_connected: false,
                });
            }
        };
        let mut event = NewEvent::new(kind)
            .attempt(attempt.clone())
            .detail(message.detail.clone());
        event.connector_position = Some(ConnectorPosition {
            run_id: message.run_id.clone(),
            sequence: message.sequence,
        });
        if kind == EventKind::Queued {
            event.queue_status = Some(QueueStatus {
                position: message.queue_position,
                estimated_wait: message
                    .estimated_wait
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or_default(),
            });
        }
        if kind == EventKind::Completed {
            event.wrap_up = message.wrap_up.clone();
        }
        if kind == EventKind::Cancelled {
            event.failure = Some(Failure::new(
                FailureReason::Cancelled,
                message.detail.clone(),
            ));
        }
        match self
            .record_leased(&handoff.tenant, &handoff.id, event)
            .await
        {
            Ok((_, record)) if record.state.is_terminal() => Ok(Applied::Finished),
            Ok((_, record)) => Ok(Applied::Continue {
                now_connected: record.state == HandoffState::Connected,
            }),
            Err(StoreError::Duplicate) => Ok(Applied::Continue {
                now_connected: false,
            }),
            // A restarted connector may report again a step the handoff is
            // past (CONNECTED twice): skip it, unless the handoff has ended.
            // A step this attempt never reported (COMPLETED before anyone
            // answered) breaks the contract.
            Err(StoreError::IllegalTransition(error)) => {
                let current = self.store.get(&handoff.tenant, &handoff.id).await?;
                if !current.state.is_terminal()
                    && !self.reported_before(handoff, attempt.number, kind).await?
                {
                    return Ok(Applied::Violation(format!(
                        "{kind:?} is not a legal next step: {error}"
                    )));
                }
                Ok(if current.state.is_terminal() {
                    Applied::Finished
                } else {
                    Applied::Continue {
                        now_connected: current.state == HandoffState::Connected,
                    }
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// The longest pause between re-attaches or cancels: a restarted
/// connector is found again within this.
const MAX_REATTACH_PAUSE: Duration = Duration::from_secs(2);

/// Cancels an attempt and waits until the connector confirms it (any
/// answer to CancelTransfer: cancelled, already ended or unknown), trying
/// again with backoff until `until`. Only a confirmed cancel lets the next
/// target ring; returns whether it was confirmed.
async fn fence(
    handle: &ConnectorHandle,
    settings: &DispatchSettings,
    handoff_id: &str,
    number: u32,
    until: Instant,
) -> bool {
    let mut tries = 0;
    loop {
        let mut request = tonic::Request::new(CancelTransferRequest {
            handoff_id: handoff_id.to_owned(),
            attempt: number,
        });
        request.set_timeout(handle.call_timeout());
        let answered = tokio::time::timeout(
            handle.call_timeout(),
            handle.client().cancel_transfer(request),
        )
        .await;
        match answered {
            Ok(Ok(response)) => {
                let outcome = response.into_inner().outcome();
                tracing::info!(handoff_id, connector = %handle.name, attempt = number, ?outcome, "transfer fenced");
                return true;
            }
            Ok(Err(status)) => {
                tracing::warn!(handoff_id, connector = %handle.name, code = ?status.code(), "connector did not confirm the cancel; trying again");
            }
            Err(_) => {
                tracing::warn!(handoff_id, connector = %handle.name, "connector did not answer the cancel; trying again");
            }
        }
        if Instant::now() >= until {
            tracing::warn!(handoff_id, connector = %handle.name, attempt = number, "cancel not confirmed in time");
            return false;
        }
        let pause = jittered_backoff(settings.retry_backoff, tries).min(MAX_REATTACH_PAUSE);
        tries += 1;
        tokio::time::sleep_until((Instant::now() + pause).min(until)).await;
    }
}

/// Where an attempt stands while its connector cannot be reached.
#[derive(Debug, Clone, Copy)]
struct Unreachable {
    /// Since when the connector has not taken the transfer's stream.
    since: Instant,
    /// Whether the connector may hold the transfer.
    held: bool,
    connected: bool,
    /// The handoff's deadline.
    deadline: Instant,
}

/// How far a StartTransfer call that did not follow the transfer to its
/// end got: whether the connector may hold the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The connector answered the call with an error, or the connection
    /// was refused: it does not have the transfer.
    Refused,
    /// The call was sent but not answered: it may.
    Sent,
    /// The connector accepted the call: it has the transfer.
    Accepted,
}

/// How far a StartTransfer that failed before its stream began got. A
/// status the connector sent itself (no transport error behind it) is its
/// refusal; a refused connection never reached it; any other transport
/// failure may have reached it after it took the transfer.
fn reach_of(status: &tonic::Status) -> Reach {
    let Some(source) = std::error::Error::source(status) else {
        return Reach::Refused;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Reach::Refused;
        }
        cause = error.source();
    }
    Reach::Sent
}

/// How one StartTransfer call ended.
enum Followed {
    Outcome(TransferOutcome),
    /// UNAVAILABLE, or the stream broke before an outcome: the connector
    /// may be restarting; sending StartTransfer again is safe.
    Broken {
        detail: String,
        reach: Reach,
    },
    /// The connector hung or broke the contract: not sent again.
    Faulty(String),
}

enum Applied {
    Continue {
        now_connected: bool,
    },
    Finished,
    TargetFailed(Failure),
    /// The event breaks the contract.
    Violation(String),
}

/// The most events of kinds this control service does not know that one
/// stream may send: a connector of a newer contract sends a few, a broken
/// one sends them forever.
const MAX_UNKNOWN_EVENTS: u32 = 16;

/// What one StartTransfer stream must keep to: every event of one run,
/// numbered 1, 2, 3… without gaps (a re-attached stream replays from 1).
#[derive(Debug, Default)]
struct StreamCheck {
    run_id: Option<String>,
    /// Events received on this stream.
    seen: u64,
    unknown: u32,
}

impl StreamCheck {
    fn admit(&mut self, message: &StartTransferResponse) -> Result<(), String> {
        self.seen += 1;
        if message.run_id.is_empty() {
            return Err(format!("event {} has no run_id", message.sequence));
        }
        match &self.run_id {
            None => self.run_id = Some(message.run_id.clone()),
            Some(run) if *run != message.run_id => {
                return Err(format!(
                    "run_id changed within one stream ({run} then {})",
                    message.run_id
                ));
            }
            Some(_) => {}
        }
        if message.sequence != self.seen {
            return Err(format!(
                "event sequence {} where {} was due",
                message.sequence, self.seen
            ));
        }
        if TransferEventKind::try_from(message.kind).is_err() {
            self.unknown += 1;
            if self.unknown > MAX_UNKNOWN_EVENTS {
                return Err(format!(
                    "more than {MAX_UNKNOWN_EVENTS} events of unknown kinds"
                ));
            }
        }
        Ok(())
    }
}

pub fn timestamp_of(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}
