//! The store contract, one suite per role (`store_contract/`: the handoff
//! log, dispatch leases, the audit log, retention, outcomes, the store's
//! health),
//! each run against both backends: the embedded SQLite store and
//! PostgreSQL (a real throwaway server from Debian's packages; the test
//! fails when PostgreSQL is missing). Each suite gets a store of its own (a
//! new directory, or a new server and database) that its cases share, each
//! case with request ids and tenants of its own. A new backend joins every
//! suite by a test function in `contract_suite!`.

use std::sync::Arc;
use std::time::Duration;

use baton_control::convert::context::encode_context;
use baton_control::domain::{
    Attempt, ConcreteTarget, DEFAULT_TENANT, EventKind, Handoff, NewEvent, PlannedTarget,
};
use baton_control::store::{AuditAction, AuditEntry, HandoffStore, NewLease, PgStore, SqliteStore};
use baton_proto::types::v1 as pb;
use baton_tests::postgres::Postgres;

/// A place to keep one store's data, which can be opened (again).
trait Backend {
    async fn open(&self) -> Arc<dyn HandoffStore>;
    /// Whether several processes share the store (and announce events).
    fn shared(&self) -> bool;
}

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn HandoffStore> {
        Arc::new(SqliteStore::open(self.0.path()).expect("open the SQLite store"))
    }
    fn shared(&self) -> bool {
        false
    }
}

/// A database of a running server (kept here so that it stops with the
/// suite).
struct Pg {
    _server: Postgres,
    url: String,
}

impl Backend for Pg {
    async fn open(&self) -> Arc<dyn HandoffStore> {
        Arc::new(
            PgStore::connect(&self.url, 8, Duration::from_secs(5))
                .await
                .expect("open the PostgreSQL store"),
        )
    }
    fn shared(&self) -> bool {
        true
    }
}

fn sqlite() -> Sqlite {
    Sqlite(tempfile::tempdir().expect("tempdir"))
}

fn postgres() -> Pg {
    let server = Postgres::start().expect("start PostgreSQL (apt-get install postgresql)");
    let url = server.create_database().expect("create a database");
    Pg {
        _server: server,
        url,
    }
}

/// A role's suite: the test functions `sqlite` and `postgres` of the
/// calling module, each running every case in order against one store.
macro_rules! contract_suite {
    ($($case:ident),+ $(,)?) => {
        #[tokio::test]
        async fn sqlite() {
            let backend = crate::sqlite();
            $(
                println!("store contract, SQLite: {}", stringify!($case));
                $case(&backend).await;
            )+
        }

        #[tokio::test]
        async fn postgres() {
            let backend = crate::postgres();
            $(
                println!("store contract, PostgreSQL: {}", stringify!($case));
                $case(&backend).await;
            )+
        }
    };
}

// One suite per role, in `store_contract/` (a test crate's root looks for
// its modules beside itself, hence the paths).
#[path = "store_contract/audit_log.rs"]
mod audit_log;
#[path = "store_contract/callbacks.rs"]
mod callbacks;
#[path = "store_contract/chat_log.rs"]
mod chat_log;
#[path = "store_contract/context_updates.rs"]
mod context_updates;
#[path = "store_contract/dispatch_leases.rs"]
mod dispatch_leases;
#[path = "store_contract/hand_back.rs"]
mod hand_back;
#[path = "store_contract/handoff_log.rs"]
mod handoff_log;
#[path = "store_contract/outcomes.rs"]
mod outcomes;
#[path = "store_contract/retention.rs"]
mod retention;
#[path = "store_contract/store_health.rs"]
mod store_health;

fn handoff(request_id: &str) -> Handoff {
    Handoff {
        id: uuid::Uuid::now_v7().to_string(),
        tenant: DEFAULT_TENANT.into(),
        request_id: request_id.into(),
        request_fingerprint: "f".into(),
        context: encode_context(&pb::HandoffContext {
            summary: "s".into(),
            ..Default::default()
        }),
        plan: vec![PlannedTarget {
            connector: "c".into(),
            target: ConcreteTarget::SipUri {
                uri: "sip:a@b".into(),
            },
        }],
        customer_message: "m".into(),
        customer_message_language: "en".into(),
        created_at_ms: 1,
        updated_at_ms: 1,
        deadline_ms: 2,
        ..Handoff::default()
    }
}

/// `handoff`'s first attempt, at the first target of its plan.
fn first_attempt(handoff: &Handoff) -> Attempt {
    Attempt {
        number: 1,
        planned: handoff.plan[0].clone(),
    }
}

/// Appends `kinds` to `handoff`'s log as events of its first attempt, and
/// returns that attempt.
async fn advance(store: &dyn HandoffStore, handoff: &Handoff, kinds: &[EventKind]) -> Attempt {
    let attempt = first_attempt(handoff);
    for kind in kinds {
        store
            .append(
                &handoff.tenant,
                &handoff.id,
                NewEvent::new(*kind).attempt(attempt.clone()),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
    attempt
}

/// `handoff` as another store on the same data reads it (a restarted or
/// second replica).
async fn read_again(backend: &impl Backend, handoff: &Handoff) -> Handoff {
    backend
        .open()
        .await
        .get(&handoff.tenant, &handoff.id)
        .await
        .expect("get")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

const LONG: Duration = Duration::from_secs(60);

/// Creates `handoff` with `owner`'s dispatch lease for `ttl`.
async fn create_leased(
    store: &Arc<dyn HandoffStore>,
    handoff: &Handoff,
    owner: &str,
    ttl: Duration,
) {
    let lease = NewLease { owner, ttl };
    let outcome = store
        .create(handoff.clone(), None, Some(lease))
        .await
        .expect("create");
    assert!(outcome.created_event.is_some());
}

fn audit(tenant: &str, handoff_id: &str, action: AuditAction, time_ms: i64) -> AuditEntry {
    AuditEntry {
        tenant: tenant.into(),
        handoff_id: handoff_id.into(),
        action,
        actor: "bot".into(),
        credential: "key:0123456789abcdef".into(),
        time_ms,
        detail: format!("{action:?}"),
        connector: String::new(),
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}
