//! Every transfer of this connector, keyed by (handoff id, attempt): the
//! SDK's deduplication of StartTransfer, its deadlines, its cancels, its
//! drain, and (with a journal) what a restarted process takes over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::{CancelOutcome, StartTransferRequest};
use baton_proto::types::v1::FailureReason;
use baton_service_kit::status::{FieldViolation, invalid_argument, retry_after, with_reason};
use prost::Message;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::Instrument;

use crate::events::{EventLog, TransferEvents};
use crate::journal::{Journal, Journalled, Key};
use crate::{Connector, ConnectorInfo, Transfer};

/// How long an ended transfer is kept, so that a control service that
/// re-attaches after a restart can still replay its outcome.
pub(crate) const KEEP_ENDED: Duration = Duration::from_secs(15 * 60);

/// The most transfers one connector process runs at once; beyond it a new
/// StartTransfer is refused with RESOURCE_EXHAUSTED and RetryInfo (the
/// control service tries again later, or the next target). Re-attaching
/// to a running transfer is never refused.
pub const MAX_RUNNING_TRANSFERS: usize = 10_000;

/// A transfer this process runs, or one that ended (here or, replayed from
/// the journal, in a previous process).
#[derive(Debug)]
pub(crate) struct Running {
    /// Whose transfer it is: only that tenant re-attaches or cancels it.
    tenant: String,
    pub(crate) log: Arc<EventLog>,
    cancel: CancellationToken,
    /// The last context version applied through UpdateTransfer (0: none),
    /// held while one is applied so that updates apply one at a time.
    context_version: tokio::sync::Mutex<u64>,
}

/// A journalled transfer a previous process did not end (it crashed or
/// drained): nothing runs it until the control service re-attaches
/// (resume) or cancels it (clean up).
#[derive(Debug)]
struct Interrupted {
    request: StartTransferRequest,
    /// The previous run's events; a cancel ends this run.
    log: Arc<EventLog>,
    remembered: Option<String>,
}

#[derive(Debug, Clone)]
enum Entry {
    Running(Arc<Running>),
    Interrupted(Arc<Interrupted>),
}

impl Entry {
    /// Whether `tenant` may re-attach to or cancel the transfer: the tenant
    /// it was started for, or any for one journalled before requests
    /// carried a tenant (so that an upgrade does not strand it).
    fn belongs_to(&self, tenant: &str) -> bool {
        let recorded = match self {
            Self::Running(running) => &running.tenant,
            Self::Interrupted(interrupted) => &interrupted.request.tenant,
        };
        recorded.is_empty() || recorded == tenant
    }
}

/// Every transfer this process runs or recently ran.
pub(crate) struct Transfers<C> {
    connector: Arc<C>,
    info: ConnectorInfo,
    journal: Option<Journal>,
    /// Ordered, so that a handoff's attempts are found without a scan.
    entries: Mutex<BTreeMap<Key, Entry>>,
    /// Transfers started (or resumed) and not yet ended.
    active: AtomicUsize,
    max_active: usize,
    /// Set when the connector drains: new transfers are refused.
    draining: AtomicBool,
    /// Woken whenever a transfer ends, for the drain.
    ended: Notify,
}

impl<C: Connector> Transfers<C> {
    /// The transfers of a connector; with a journal, those it holds are
    /// taken over: ended ones are replayed, unended ones are interrupted.
    /// The connector serving these transfers.
    pub(crate) fn connector(&self) -> &Arc<C> {
        &self.connector
    }

    pub(crate) fn new(connector: Arc<C>, journal: Option<(Journal, Vec<Journalled>)>) -> Arc<Self> {
        Self::with_max_active(connector, journal, MAX_RUNNING_TRANSFERS)
    }

    pub(crate) fn with_max_active(
        connector: Arc<C>,
        journal: Option<(Journal, Vec<Journalled>)>,
        max_active: usize,
    ) -> Arc<Self> {
        let (journal, journalled) = match journal {
            Some((journal, journalled)) => (Some(journal), journalled),
            None => (None, Vec::new()),
        };
        let transfers = Arc::new(Self {
            info: connector.info(),
            connector,
            journal,
            entries: Mutex::default(),
            active: AtomicUsize::new(0),
            max_active,
            draining: AtomicBool::new(false),
            ended: Notify::new(),
        });
        transfers.take_over(journalled);
        transfers
    }

    fn take_over(self: &Arc<Self>, journalled: Vec<Journalled>) {
        let (mut ended, mut interrupted) = (0, 0);
        for transfer in journalled {
            let key = transfer.key;
            let log = EventLog::restored(transfer.run_id, transfer.events, self.journal_of(&key));
            let entry = if transfer.ended {
                ended += 1;
                let kept =
                    KEEP_ENDED.saturating_sub(transfer.updated.elapsed().unwrap_or_default());
                self.forget_after(key.clone(), kept);
                Entry::Running(Arc::new(Running {
                    tenant: transfer.tenant,
                    log,
                    cancel: CancellationToken::new(),
                    context_version: tokio::sync::Mutex::new(0),
                }))
            } else {
                interrupted += 1;
                Entry::Interrupted(Arc::new(Interrupted {
                    request: transfer.request,
                    log,
                    remembered: transfer.note,
                }))
            };
            self.lock().insert(key, entry);
        }
        if let Some(journal) = &self.journal {
            tracing::info!(
                journal = %journal.path().display(),
                ended,
                interrupted,
                "transfer journal loaded: ended transfers replay, interrupted ones resume when the control service re-attaches"
            );
        }
    }

    fn journal_of(&self, key: &Key) -> Option<(Journal, Key)> {
        self.journal.clone().map(|journal| (journal, key.clone()))
    }

    /// Forgets an ended transfer once it has been kept long enough.
    fn forget_after(self: &Arc<Self>, key: Key, kept: Duration) {
        let transfers = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(kept).await;
            if let Some(transfers) = transfers.upgrade() {
                transfers.lock().remove(&key);
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn has_journal(&self) -> bool {
        self.journal.is_some()
    }

    /// The log of the transfer a StartTransfer names: the one already known
    /// (running, or ended and replayed), or a new one: started, or resumed
    /// when a previous process was interrupted while running it. A new one
    /// is refused while draining or when as many transfers as allowed run.
    /// With a journal, a new run is journalled before this returns.
    pub(crate) async fn start(
        self: &Arc<Self>,
        request: StartTransferRequest,
    ) -> Result<Arc<EventLog>, Status> {
        let encoded = request.encode_to_vec();
        let mut transfer = Transfer::from_request(request, &self.info)?;
        let key = (transfer.handoff_id.clone(), transfer.attempt);
        let (entry, previous) = {
            let mut entries = self.lock();
            let previous = entries.get(&key).cloned();
            if let Some(previous) = &previous
                && !previous.belongs_to(&transfer.tenant)
            {
                return Err(invalid_argument(&[FieldViolation::new(
                    "tenant",
                    format!(
                        "handoff {} attempt {} is another tenant's transfer",
                        key.0, key.1
                    ),
                )]));
            }
            match &previous {
                Some(Entry::Running(existing)) => {
                    tracing::info!(handoff_id = %key.0, attempt = key.1, "StartTransfer repeated; following the existing transfer");
                    return Ok(existing.log.clone());
                }
                Some(Entry::Interrupted(interrupted)) => {
                    transfer.remembered.clone_from(&interrupted.remembered);
                }
                None => {}
            }
            if self.draining.load(Ordering::SeqCst) {
                return Err(with_reason(
                    Code::Unavailable,
                    "CONNECTOR_DRAINING",
                    "this connector is draining before it stops; retry (another replica, or this connector once restarted)",
                ));
            }
            if self.active.load(Ordering::SeqCst) >= self.max_active {
                return Err(retry_after(
                    Code::ResourceExhausted,
                    "TOO_MANY_TRANSFERS",
                    format!(
                        "this connector runs {} transfers, as many as it may; retry",
                        self.max_active
                    ),
                    Duration::from_secs(1),
                ));
            }
            self.active.fetch_add(1, Ordering::SeqCst);
            let entry = Arc::new(Running {
                tenant: transfer.tenant.clone(),
                log: EventLog::new(self.journal_of(&key)),
                cancel: CancellationToken::new(),
                context_version: tokio::sync::Mutex::new(0),
            });
            entries.insert(key.clone(), Entry::Running(entry.clone()));
            (entry, previous)
        };
        if let Some(journal) = &self.journal
            && let Err(e) = journal
                .begin_run(&key, &transfer.tenant, encoded, entry.log.run_id())
                .await
        {
            tracing::error!(error = format!("{e:#}"), handoff_id = %key.0, attempt = key.1, "transfer not journalled; refused");
            let mut entries = self.lock();
            match previous {
                Some(previous) => entries.insert(key, previous),
                None => entries.remove(&key),
            };
            drop(entries);
            self.finished();
            return Err(Status::unavailable(
                "this connector cannot journal the transfer; retry",
            ));
        }
        let resume = previous.is_some();
        if resume {
            tracing::info!(handoff_id = %key.0, attempt = key.1, "resuming a transfer interrupted by a restart");
        }

        let transfers = self.clone();
        let log = entry.log.clone();
        // A child of the StartTransfer call's span, so that the transfer
        // continues the control service's trace; it ends with the transfer,
        // not with the time the outcome is kept.
        let span = tracing::info_span!(
            "connector.transfer",
            handoff_id = %transfer.handoff_id,
            attempt = transfer.attempt,
            baton.target_kind = transfer.target.kind().as_str_name(),
            resume,
        );
        tokio::spawn(async move {
            transfers
                .drive(transfer, &entry, resume)
                .instrument(span)
                .await;
            transfers.finished();
            transfers.forget_after(key, KEEP_ENDED);
        });
        Ok(log)
    }

    fn finished(&self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.ended.notify_waiters();
    }

    async fn drive(&self, transfer: Transfer, entry: &Running, resume: bool) {
        let target_kind = transfer.target.kind().as_str_name();
        let started = std::time::Instant::now();
        crate::metrics::metrics().started(target_kind);
        let events = TransferEvents::new(entry.log.clone());
        let remaining = transfer
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        // Boxed: a connector's transfer future is large (a SIP call's whole
        // state machine), and moving it inline into this future and then
        // into the spawned task's cell copied it several times per transfer.
        let work = Box::pin(async {
            if resume {
                self.connector
                    .resume(transfer.clone(), events.clone())
                    .await;
            } else {
                self.connector.start(transfer.clone(), events.clone()).await;
            }
        });
        tokio::select! {
            () = work => {
                if !events.is_ended() {
                    if entry.log.was_connected() {
                        events.completed("").await;
                    } else {
                        events.failed(FailureReason::ConnectorError, "the connector finished without an outcome").await;
                    }
                }
            }
            () = tokio::time::sleep(remaining), if !entry.log.was_connected() => {
                self.connector.cancel(&transfer).await;
                events.failed(FailureReason::DeadlineExceeded, "the deadline passed before a human was connected").await;
            }
            () = entry.cancel.cancelled() => {
                self.connector.cancel(&transfer).await;
                events.cancelled("cancelled by the control service").await;
            }
        }
        crate::metrics::metrics().finished(target_kind, entry.log.outcome(), started.elapsed());
    }

    /// Cancels the transfer of a handoff (one attempt, or any when
    /// `attempt` is 0): CANCELLED when one had not ended (a running one,
    /// or one interrupted by a restart, which is cleaned up and ends
    /// CANCELLED before this returns), ALREADY_ENDED when all had ended,
    /// UNKNOWN when none is known. Another tenant's transfers are unknown
    /// to `tenant`.
    pub(crate) async fn cancel(
        self: &Arc<Self>,
        tenant: &str,
        handoff_id: &str,
        attempt: u32,
    ) -> CancelOutcome {
        let id = handoff_id.to_owned();
        let attempts = if attempt == 0 {
            (id.clone(), 0)..=(id, u32::MAX)
        } else {
            (id.clone(), attempt)..=(id, attempt)
        };
        let mut outcome = CancelOutcome::Unknown;
        let mut interrupted = Vec::new();
        {
            let mut entries = self.lock();
            let theirs = entries
                .range_mut(attempts)
                .filter(|(_, entry)| entry.belongs_to(tenant));
            for (key, entry) in theirs {
                match entry {
                    Entry::Running(running) if running.log.is_ended() => {
                        if outcome == CancelOutcome::Unknown {
                            outcome = CancelOutcome::AlreadyEnded;
                        }
                    }
                    Entry::Running(running) => {
                        running.cancel.cancel();
                        outcome = CancelOutcome::Cancelled;
                    }
                    Entry::Interrupted(stopped) => {
                        // Followed from now on as any other transfer, so
                        // that a StartTransfer meanwhile sees the CANCELLED.
                        let stopped = stopped.clone();
                        *entry = Entry::Running(Arc::new(Running {
                            tenant: stopped.request.tenant.clone(),
                            log: stopped.log.clone(),
                            cancel: CancellationToken::new(),
                            context_version: tokio::sync::Mutex::new(0),
                        }));
                        interrupted.push((key.clone(), stopped));
                        outcome = CancelOutcome::Cancelled;
                    }
                }
            }
        }
        for (key, stopped) in interrupted {
            self.clean_up(&stopped).await;
            self.forget_after(key, KEEP_ENDED);
        }
        outcome
    }

    /// Lets the connector release what an interrupted transfer holds, and
    /// ends its run CANCELLED.
    async fn clean_up(&self, stopped: &Interrupted) {
        match Transfer::from_request(stopped.request.clone(), &self.info) {
            Ok(mut transfer) => {
                transfer.remembered.clone_from(&stopped.remembered);
                self.connector.cancel(&transfer).await;
            }
            Err(e) => tracing::warn!(
                error = %e.message(),
                "an interrupted transfer no longer fits this connector; cancelled without the connector's clean-up"
            ),
        }
        TransferEvents::new(stopped.log.clone())
            .cancelled("cancelled by the control service after the connector restarted")
            .await;
    }

    /// Number of transfers running in this process.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Refuses new transfers from now on; known ones are still served.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Waits until no transfer runs or `timeout` passes; returns how many
    /// still run.
    pub(crate) async fn drained(&self, timeout: Duration) -> usize {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let active = self.active();
            if active == 0 {
                return 0;
            }
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep_until(until) => return self.active(),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
mod update;
