use super::*;
use crate::events::is_terminal;
use baton_proto::connector::v1::{ContextEnvelope, StartTransferResponse, TransferEventKind};
use baton_proto::types::v1::{TargetKind, TransferMode};

use crate::testing;

/// Rings and then holds until cancelled.
struct Holding;

impl Connector for Holding {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("holding", "0")
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm])
    }

    async fn start(&self, _transfer: Transfer, events: TransferEvents) {
        events.ringing("").await;
        std::future::pending::<()>().await;
    }
}

pub(super) fn request(handoff_id: &str) -> StartTransferRequest {
    testing::transfer_request(
        handoff_id,
        testing::queue("q", &[]),
        ContextEnvelope::default(),
    )
}

#[tokio::test]
async fn beyond_the_running_bound_new_transfers_are_refused_with_retry_info() {
    let transfers = Transfers::with_max_active(Arc::new(Holding), None, 2);
    transfers.start(request("a")).await.expect("first");
    transfers.start(request("b")).await.expect("second");
    let refused = transfers.start(request("c")).await.expect_err("full");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let details = tonic_types::StatusExt::get_error_details(&refused);
    assert!(details.retry_info().is_some());
    // Re-attaching to a running transfer is never refused.
    transfers.start(request("a")).await.expect("re-attach");
    // An ended transfer frees its place.
    assert_eq!(
        transfers.cancel("acme", "a", 1).await,
        CancelOutcome::Cancelled
    );
    for _ in 0..100 {
        if transfers.active() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    transfers.start(request("c")).await.expect("room again");
}

/// What the test connectors were asked to do.
#[derive(Debug, Default, Clone)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn record(&self, call: String) {
        self.0.lock().expect("calls").push(call);
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().expect("calls").clone()
    }
}

/// A transfer to handoff "done…" connects and completes; one to "back…"
/// connects and is handed back to the AI with an instruction; any other rings,
/// remembers the dialog it would have to end, and holds until cancelled.
/// `resume` is the trait's default.
struct Scripted(Calls);

impl Connector for Scripted {
    fn info(&self) -> ConnectorInfo {
        Holding.info()
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        self.0.record(format!("start {}", transfer.handoff_id));
        if transfer.handoff_id.starts_with("done") {
            events.connected("").await;
            events.completed("").await;
            return;
        }
        if transfer.handoff_id.starts_with("back") {
            events.connected("").await;
            let wrap_up = baton_proto::types::v1::WrapUp {
                disposition: "verified".into(),
                notes: "n".into(),
                instruction: "finish the address change".into(),
                ..Default::default()
            };
            events.handed_back("", wrap_up).await;
            return;
        }
        events
            .remember(&format!("dialog of {}", transfer.handoff_id))
            .await;
        events.ringing("").await;
        std::future::pending::<()>().await;
    }

    async fn cancel(&self, transfer: &Transfer) {
        self.0.record(format!(
            "cancel {} remembering {:?}",
            transfer.handoff_id, transfer.remembered
        ));
    }
}

/// Like [`Scripted`], and resumes by connecting the transfer it was given.
struct Resuming(Scripted);

impl Connector for Resuming {
    fn info(&self) -> ConnectorInfo {
        self.0.info()
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        self.0.start(transfer, events).await;
    }

    async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        self.0.0.record(format!(
            "resume {} remembering {:?}",
            transfer.handoff_id, transfer.remembered
        ));
        events.connected("").await;
        events.completed("").await;
    }

    async fn cancel(&self, transfer: &Transfer) {
        self.0.cancel(transfer).await;
    }
}

fn open(path: &std::path::Path) -> Option<(Journal, Vec<Journalled>)> {
    Some(Journal::open(path).expect("journal opens"))
}

/// The events of a log up to `count` of them, or to its terminal event.
async fn follow(log: &EventLog, count: usize) -> Vec<StartTransferResponse> {
    let mut events: Vec<StartTransferResponse> = Vec::new();
    while events.len() < count && !events.last().is_some_and(|e| is_terminal(e.kind)) {
        let batch = tokio::time::timeout(Duration::from_secs(5), log.read_from(events.len()))
            .await
            .expect("the transfer goes on");
        events.extend(batch);
    }
    events
}

fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    events.iter().map(StartTransferResponse::kind).collect()
}

#[tokio::test]
async fn after_a_restart_an_ended_transfer_replays_the_same_run_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data/transfers.sqlite3");
    let calls = Calls::default();
    let first = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = first.start(request("done-1")).await.expect("started");
    let ran = follow(&log, usize::MAX).await;
    assert_eq!(
        kinds(&ran),
        [TransferEventKind::Connected, TransferEventKind::Completed]
    );
    drop(first);

    let second = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = second.start(request("done-1")).await.expect("replayed");
    assert_eq!(follow(&log, usize::MAX).await, ran, "same run, same events");
    assert_eq!(calls.all(), ["start done-1"]);
    assert_eq!(
        second.cancel("acme", "done-1", 0).await,
        CancelOutcome::AlreadyEnded
    );
}

#[tokio::test]
async fn after_a_restart_a_hand_back_is_replayed_with_its_instruction() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transfers.sqlite3");
    let calls = Calls::default();
    let first = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = first.start(request("back-1")).await.expect("started");
    let ran = follow(&log, usize::MAX).await;
    assert_eq!(
        kinds(&ran),
        [TransferEventKind::Connected, TransferEventKind::HandedBack]
    );
    drop(first);

    let second = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = second.start(request("back-1")).await.expect("replayed");
    let replayed = follow(&log, usize::MAX).await;
    assert_eq!(replayed, ran, "same run, same events");
    let wrap_up = replayed[1]
        .wrap_up
        .as_ref()
        .expect("a hand-back carries its wrap-up");
    assert_eq!(wrap_up.instruction, "finish the address change");
    assert_eq!(calls.all(), ["start back-1"], "never started again");
    assert_eq!(
        second.cancel("acme", "back-1", 0).await,
        CancelOutcome::AlreadyEnded
    );
}

#[tokio::test]
async fn after_a_restart_an_unended_transfer_is_resumed_by_default_as_interrupted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transfers.sqlite3");
    let calls = Calls::default();
    let first = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = first.start(request("held")).await.expect("started");
    let before = follow(&log, 1).await;
    // The first process "crashes": its transfer never ends.
    let second = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = second.start(request("held")).await.expect("resumed");
    let resumed = follow(&log, usize::MAX).await;
    assert_eq!(kinds(&resumed), [TransferEventKind::Failed]);
    assert_eq!(resumed[0].failure_reason(), FailureReason::Interrupted);
    assert_eq!(resumed[0].sequence, 1, "a new run starts at 1");
    assert_ne!(resumed[0].run_id, before[0].run_id, "a new run");
    assert_eq!(
        calls.all(),
        [
            "start held",
            "cancel held remembering Some(\"dialog of held\")"
        ],
        "cleaned up with what the first process remembered, never started again"
    );

    // And the outcome of the resumed run is itself replayed after another restart.
    let third = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = third.start(request("held")).await.expect("replayed");
    assert_eq!(follow(&log, usize::MAX).await, resumed);
    assert_eq!(calls.all().len(), 2);
}

#[tokio::test]
async fn a_connector_that_can_resume_gets_what_it_remembered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transfers.sqlite3");
    let calls = Calls::default();
    let first = Transfers::new(Arc::new(Resuming(Scripted(calls.clone()))), open(&path));
    let log = first.start(request("held")).await.expect("started");
    follow(&log, 1).await;
    let second = Transfers::new(Arc::new(Resuming(Scripted(calls.clone()))), open(&path));
    let log = second.start(request("held")).await.expect("resumed");
    assert_eq!(
        kinds(&follow(&log, usize::MAX).await),
        [TransferEventKind::Connected, TransferEventKind::Completed]
    );
    assert_eq!(
        calls.all(),
        [
            "start held",
            "resume held remembering Some(\"dialog of held\")"
        ]
    );
}

#[tokio::test]
async fn a_fresh_transfer_remembers_nothing() {
    let calls = Calls::default();
    let transfers = Transfers::new(Arc::new(Resuming(Scripted(calls.clone()))), None);
    let log = transfers.start(request("held")).await.expect("started");
    follow(&log, 1).await;
    assert_eq!(
        transfers.cancel("acme", "held", 1).await,
        CancelOutcome::Cancelled
    );
    follow(&log, usize::MAX).await;
    assert_eq!(calls.all(), ["start held", "cancel held remembering None"]);
}

#[tokio::test]
async fn cancel_tells_unknown_from_already_ended_from_cancelled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transfers.sqlite3");
    let calls = Calls::default();
    let first = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    assert_eq!(
        first.cancel("acme", "nobody", 0).await,
        CancelOutcome::Unknown
    );
    assert_eq!(
        first.cancel("acme", "nobody", 1).await,
        CancelOutcome::Unknown
    );

    let done = first.start(request("done")).await.expect("started");
    follow(&done, usize::MAX).await;
    assert_eq!(
        first.cancel("acme", "done", 1).await,
        CancelOutcome::AlreadyEnded
    );
    assert_eq!(
        first.cancel("acme", "done", 2).await,
        CancelOutcome::Unknown
    );

    let running = first.start(request("running")).await.expect("started");
    follow(&running, 1).await;
    assert_eq!(
        first.cancel("acme", "running", 0).await,
        CancelOutcome::Cancelled
    );
    let cancelled = follow(&running, usize::MAX).await;
    assert_eq!(
        kinds(&cancelled),
        [TransferEventKind::Ringing, TransferEventKind::Cancelled]
    );
    assert_eq!(
        first.cancel("acme", "running", 1).await,
        CancelOutcome::AlreadyEnded
    );

    let held = first.start(request("held")).await.expect("started");
    let before = follow(&held, 1).await;
    // A restart interrupts "held"; the next process knows all three.
    let second = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    assert_eq!(
        second.cancel("acme", "nobody", 0).await,
        CancelOutcome::Unknown
    );
    assert_eq!(
        second.cancel("acme", "done", 0).await,
        CancelOutcome::AlreadyEnded
    );
    assert_eq!(
        second.cancel("acme", "running", 0).await,
        CancelOutcome::AlreadyEnded
    );
    assert_eq!(
        second.cancel("acme", "held", 0).await,
        CancelOutcome::Cancelled
    );
    assert_eq!(
        second.cancel("acme", "held", 0).await,
        CancelOutcome::AlreadyEnded
    );
    assert_eq!(
        calls.all().last().map(String::as_str),
        Some("cancel held remembering Some(\"dialog of held\")")
    );

    // The interrupted run ends CANCELLED, and so it replays, here and
    // after one more restart; nothing starts it again.
    let log = second.start(request("held")).await.expect("replayed");
    let ended = follow(&log, usize::MAX).await;
    assert_eq!(
        kinds(&ended),
        [TransferEventKind::Ringing, TransferEventKind::Cancelled]
    );
    assert_eq!(ended[0], before[0]);
    assert_eq!(ended[1].run_id, before[0].run_id);
    let third = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    assert_eq!(
        third.cancel("acme", "held", 1).await,
        CancelOutcome::AlreadyEnded
    );
    let log = third.start(request("held")).await.expect("replayed");
    assert_eq!(follow(&log, usize::MAX).await, ended);
    assert_eq!(
        calls
            .all()
            .iter()
            .filter(|c| c.starts_with("start"))
            .count(),
        3,
        "done, running and held, each once"
    );
}

#[tokio::test]
async fn a_draining_connector_refuses_new_transfers_and_lets_running_ones_end() {
    let transfers = Transfers::new(Arc::new(Holding), None);
    let log = transfers.start(request("a")).await.expect("started");
    follow(&log, 1).await;
    transfers.drain();
    let refused = transfers.start(request("b")).await.expect_err("draining");
    assert_eq!(refused.code(), Code::Unavailable);
    transfers.start(request("a")).await.expect("re-attach");
    assert_eq!(transfers.drained(Duration::from_millis(50)).await, 1);
    let drained = tokio::spawn({
        let transfers = transfers.clone();
        async move { transfers.drained(Duration::from_secs(5)).await }
    });
    assert_eq!(
        transfers.cancel("acme", "a", 1).await,
        CancelOutcome::Cancelled
    );
    assert_eq!(drained.await.expect("drain"), 0);
}

#[tokio::test]
async fn after_a_restart_an_interrupted_transfer_is_resumed_or_cancelled_by_its_tenant_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("transfers.sqlite3");
    let calls = Calls::default();
    let first = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let log = first.start(request("held")).await.expect("started");
    follow(&log, 1).await;
    drop(first);

    let second = Transfers::new(Arc::new(Scripted(calls.clone())), open(&path));
    let globex = StartTransferRequest {
        tenant: "globex".into(),
        ..request("held")
    };
    let refused = second.start(globex).await.expect_err("not globex's");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("tenant: "), "{refused:?}");
    assert_eq!(
        second.cancel("globex", "held", 0).await,
        CancelOutcome::Unknown
    );
    assert_eq!(
        second.cancel("acme", "held", 0).await,
        CancelOutcome::Cancelled
    );
}
