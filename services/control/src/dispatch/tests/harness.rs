//! A test's world: a SQLite store in a temporary directory, scripted
//! connectors sharing one journal, dispatchers over them, and ways to wait
//! for a handoff and read what it recorded.

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use super::fake::{Call, Journal, ScriptedConnector};
use crate::circuit::DispatchConfig;
use crate::connector::ConnectorRegistry;
use crate::dispatch::{Dispatcher, now_ms};
use crate::domain::{
    ConcreteTarget, DEFAULT_TENANT, EventKind, EventRecord, Failure, Handoff, HandoffState,
    PlannedTarget, RequestedTarget, TargetKind,
};
use crate::hub::EventHub;
use crate::store::{ContextUpdate, ContextUpdateOutcome, HandoffStore, SqliteStore};
use crate::token::TokenSigner;

/// How long a test waits for the dispatcher before it gives up; only a
/// guard against a hang, never what a test measures.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Harness {
    _dir: TempDir,
    store: Arc<dyn HandoffStore>,
    pub journal: Journal,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        Self {
            _dir: dir,
            store: Arc::new(store),
            journal: Journal::default(),
        }
    }

    /// A dispatcher (a control service's, as after a start) over the
    /// given connectors, with pauses short enough for a test.
    pub fn dispatcher(
        &self,
        connectors: &[&Arc<ScriptedConnector>],
        config: DispatchConfig,
    ) -> Arc<Dispatcher> {
        let registry =
            ConnectorRegistry::from_connectors(connectors.iter().map(|fake| fake.connector()));
        Arc::new(
            Dispatcher::new(
                self.store.clone(),
                Arc::new(EventHub::default()),
                registry,
                TokenSigner::new([7; 32]),
                "http://baton.test".into(),
                Duration::from_secs(60),
            )
            .with_dispatch(config),
        )
    }

    /// Creates a handoff over `plan`, leased to `dispatcher`, and starts
    /// dispatching it.
    pub async fn start(
        &self,
        dispatcher: &Arc<Dispatcher>,
        plan: &[(&str, ConcreteTarget)],
    ) -> String {
        self.start_handoff(dispatcher, new_handoff(plan)).await
    }

    /// As [`start`](Self::start), for a callback to the customer.
    pub async fn start_callback(
        &self,
        dispatcher: &Arc<Dispatcher>,
        plan: &[(&str, ConcreteTarget)],
    ) -> String {
        let mut handoff = new_handoff(plan);
        handoff.callback = Some(crate::domain::callback::Callback {
            number: "+15550100123".into(),
            window_start_ms: None,
            window_end_ms: None,
            dial_attempts: 0,
        });
        self.start_handoff(dispatcher, handoff).await
    }

    async fn start_handoff(&self, dispatcher: &Arc<Dispatcher>, handoff: Handoff) -> String {
        let created = self
            .store
            .create(handoff, None, Some(dispatcher.new_lease()))
            .await
            .expect("create");
        let id = created.handoff.id.clone();
        dispatcher.spawn(created.handoff);
        id
    }

    /// Updates the handoff's context as UpdateHandoff does (the same
    /// context, one version on) and forwards it, as UpdateHandoff does in
    /// the background, before returning the new version.
    pub async fn update_context(&self, dispatcher: &Dispatcher, id: &str) -> u64 {
        let handoff = self.store.get(DEFAULT_TENANT, id).await.expect("get");
        let update = ContextUpdate {
            request_id: uuid::Uuid::now_v7().to_string(),
            fingerprint: "test".into(),
            expected_version: handoff.context_version,
            context: Some(handoff.context.clone()),
        };
        let outcome = self.store.update_context(DEFAULT_TENANT, id, update);
        let ContextUpdateOutcome::Applied { handoff, .. } = outcome.await.expect("update") else {
            panic!("the update was not applied");
        };
        dispatcher.forward(&handoff).await;
        handoff.context_version
    }

    /// Waits until the journal holds `line`.
    pub async fn journal_has(&self, line: &str) {
        let wait = async {
            while !self.journal().iter().any(|noted| noted == line) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("never journalled: {line}"));
    }

    /// Waits until the handoff is in `state` (or has ended).
    pub async fn reaches(&self, id: &str, state: HandoffState) -> Handoff {
        let wait = async {
            loop {
                let handoff = self.store.get(DEFAULT_TENANT, id).await.expect("get");
                if handoff.state == state || handoff.state.is_terminal() {
                    return handoff;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("the dispatcher got stuck")
    }

    pub async fn ended(&self, id: &str) -> Handoff {
        self.reaches(id, HandoffState::Completed).await
    }

    pub async fn events(&self, id: &str) -> Vec<EventRecord> {
        self.store
            .events_after(DEFAULT_TENANT, id, 0, 100)
            .await
            .expect("events")
    }

    /// The recorded events as (kind, attempt number).
    pub async fn history(&self, id: &str) -> Vec<(EventKind, u32)> {
        self.events(id)
            .await
            .iter()
            .map(|event| {
                let attempt = event.attempt.as_ref().map_or(0, |a| a.number);
                (event.kind, attempt)
            })
            .collect()
    }

    /// The failure of the first target that failed.
    pub async fn first_failure(&self, id: &str) -> Failure {
        self.events(id)
            .await
            .into_iter()
            .find(|event| event.kind == EventKind::TargetFailed)
            .and_then(|event| event.failure)
            .expect("the first target failed")
    }

    /// A connector of phone numbers answering its calls with `script`,
    /// writing to this world's journal.
    pub fn phone_connector(
        &self,
        name: &str,
        script: impl IntoIterator<Item = Call>,
    ) -> Arc<ScriptedConnector> {
        ScriptedConnector::new(name, &[TargetKind::PhoneNumber], script, &self.journal)
    }

    pub fn journal(&self) -> Vec<String> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub fn fast() -> DispatchConfig {
    DispatchConfig {
        start_timeout: Duration::from_secs(5),
        first_event_timeout: Duration::from_secs(5),
        retries: 2,
        retry_backoff: Duration::from_millis(1),
        reattach_window: Duration::from_secs(20),
        ..DispatchConfig::default()
    }
}

pub fn phone() -> ConcreteTarget {
    ConcreteTarget::PhoneNumber {
        number: "+14155550100".into(),
    }
}

pub fn queue() -> ConcreteTarget {
    ConcreteTarget::Queue {
        name: "billing".into(),
        skills: vec![],
    }
}

fn new_handoff(plan: &[(&str, ConcreteTarget)]) -> Handoff {
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    Handoff {
        request_id: id.clone(),
        id,
        tenant: DEFAULT_TENANT.into(),
        request_fingerprint: "test".into(),
        requested_target: RequestedTarget::Route("test".into()),
        plan: plan
            .iter()
            .map(|(connector, target)| PlannedTarget {
                connector: (*connector).into(),
                target: target.clone(),
            })
            .collect(),
        customer_message_language: "en".into(),
        created_at_ms: now,
        updated_at_ms: now,
        deadline_ms: now + 60_000,
        last_sequence: 1,
        ..Handoff::default()
    }
}
