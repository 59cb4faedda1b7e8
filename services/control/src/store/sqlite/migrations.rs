//! The embedded store's schema: the SQL files of `migrations/sqlite`,
//! embedded at build time and applied in order, each in its own
//! transaction with `PRAGMA user_version` set to its number, so that a
//! store written by any earlier version upgrades where it stopped. A file
//! once released is never edited: a change is a new file (the tests below
//! hold the files and this list to each other, and each released file to
//! its pinned digest).

use rusqlite::Connection;

/// A migration file: its name (its number, then what it does) and its SQL.
struct Migration {
    name: &'static str,
    sql: &'static str,
}

macro_rules! migration {
    ($name:literal) => {
        Migration {
            name: $name,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/sqlite/",
                $name,
                ".sql"
            )),
        }
    };
}

/// Every migration in order: the one at index `i` brings the schema to
/// version `i + 1`.
const MIGRATIONS: &[Migration] = &[
    migration!("0001_handoffs"),
    migration!("0002_escalation_decision"),
    migration!("0003_wrap_up"),
    migration!("0004_connector_run"),
    migration!("0005_audit_and_retention"),
    migration!("0006_store_probe"),
    migration!("0007_audit_view_counts"),
    migration!("0008_event_tenant"),
    migration!("0009_audit_connector"),
    migration!("0010_chat_log"),
    migration!("0011_context_version"),
    migration!("0012_outcome"),
    migration!("0013_callback"),
];

/// The schema version this build writes (`user_version`): a file with a
/// newer one is refused.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Brings the schema to [`SCHEMA_VERSION`].
pub(super) fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(connection, SCHEMA_VERSION)
}

/// Applies the migrations after the file's version, up to `version`.
fn migrate_to(connection: &mut Connection, version: usize) -> rusqlite::Result<()> {
    let applied: usize = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().take(version).skip(applied) {
        tracing::info!(migration = migration.name, "migrating the control store");
        let tx = connection.transaction()?;
        tx.execute_batch(migration.sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use baton_service_kit::sqlite_file::{self, CONTROL_STORE};
    use rusqlite::params;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::domain::{
        Attempt, ConcreteTarget, ConnectorPosition, DEFAULT_TENANT, EventKind, HandoffState,
        NewEvent, PlannedTarget,
    };
    use crate::store::{HandoffLog, SqliteStore, StoreError};

    #[test]
    fn the_list_is_the_directory_numbered_from_one() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("the migrations directory")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(
            files, listed,
            "every file listed, in order, and nothing else"
        );
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.name[..4].parse::<usize>().ok(),
                Some(index + 1),
                "{} is version {}",
                migration.name,
                index + 1
            );
        }
    }

    /// The SHA-256 of every released migration file. A released file is
    /// never edited (stores in the field have already applied it, so an
    /// edit would leave them with a schema no build expects): a change is
    /// a new file, and a file is pinned here once it has been released.
    const RELEASED: &[(&str, &str)] = &[
        (
            "0001_handoffs",
            "c6f047f8f8376701d7632da0a239a5f7c217157d01922515728a695f0ac367f1",
        ),
        (
            "0002_escalation_decision",
            "5510e56b7bade4e13e9c832e64bfcbdb45e88835fce43d1949d2e9f5c200f3ba",
        ),
        (
            "0003_wrap_up",
            "f7fd9f17ab5e28173ed8dd1f26d43aad48868ec247694dd2df834fea9e2ec71e",
        ),
        (
            "0004_connector_run",
            "62428f77fdf999eac8924ee52f5fbf4598be994ed4bf778a44e0bcdc035f72c5",
        ),
        (
            "0005_audit_and_retention",
            "83d55c26153f586a81d806e62498c1ccc0a8281c636e0d457b43e7c1749b341b",
        ),
        (
            "0006_store_probe",
            "98122803ab46402d1323c7d06b782a63ae65384160fbef2d2ed4d7894fe2670a",
        ),
        (
            "0007_audit_view_counts",
            "41743e9515708bc57a6eefbf3b02a88f593c9317c2c4dad7745bed02e9d1130f",
        ),
        (
            "0008_event_tenant",
            "9d61b4592e4f2814e6974616e969ed3aa5ccb9e184f54c63e4166afbc5042043",
        ),
        (
            "0009_audit_connector",
            "9918a0412c7ee087f3da6756f37af179a9fcc48d87cd91eb8e21adf37462ff58",
        ),
    ];

    #[test]
    fn released_files_are_never_edited() {
        for (index, (name, pinned)) in RELEASED.iter().enumerate() {
            let migration = MIGRATIONS
                .get(index)
                .expect("a released migration is listed");
            assert_eq!(
                migration.name, *name,
                "released migrations keep their place"
            );
            let digest = Sha256::digest(migration.sql.as_bytes());
            let actual: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(actual, *pinned, "{name} was edited after its release");
        }
    }

    fn planned() -> PlannedTarget {
        PlannedTarget {
            connector: "c".into(),
            target: ConcreteTarget::SipUri {
                uri: "sip:a@b".into(),
            },
        }
    }

    /// A version-7 store (as baton-control wrote it before events had a
    /// tenant) holding one ringing handoff of `tenant` whose third event
    /// came from a connector.
    fn write_version_7(path: &Path, tenant: &str, id: &str) {
        sqlite_file::create(path, CONTROL_STORE, |connection| {
            migrate_to(connection, 7)?;
            let plan = serde_json::to_string(&[planned()]).expect("plan");
            connection.execute(
                "INSERT INTO handoffs (id, tenant, request_id, request_fingerprint, state, \
                 conversation, context, requested_target, mode, plan, customer_message, \
                 customer_message_language, created_at_ms, updated_at_ms, deadline_ms, \
                 current_attempt, last_sequence) VALUES (?1, ?2, 'r', 'f', 'ringing', X'', X'', \
                 X'', 'warm', ?3, 'm', 'en', 1, 3, 2, 1, 3)",
                params![id, tenant, plan],
            )?;
            for (sequence, kind, state, attempt, run, connector_sequence) in [
                (1, "created", "pending", None, "", None),
                (2, "target_started", "routing", Some(1), "", None),
                (3, "ringing", "ringing", Some(1), "run-1", Some(1)),
            ] {
                connection.execute(
                    "INSERT INTO handoff_events (handoff_id, sequence, kind, state, time_ms, \
                     attempt, detail, connector_run, connector_sequence) \
                     VALUES (?1, ?2, ?3, ?4, ?2, ?5, '', ?6, ?7)",
                    params![id, sequence, kind, state, attempt, run, connector_sequence],
                )?;
            }
            Ok(())
        })
        .expect("write a version-7 store");
    }

    #[tokio::test]
    async fn a_store_of_the_previous_version_upgrades_and_its_events_get_their_tenant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = uuid::Uuid::now_v7().to_string();
        write_version_7(&dir.path().join(super::super::FILE_NAME), "acme", &id);

        let store = SqliteStore::open(dir.path()).expect("open and upgrade");
        let connection =
            Connection::open(dir.path().join(super::super::FILE_NAME)).expect("inspect");
        let (marker, version) = sqlite_file::header(&connection).expect("header");
        assert_eq!(marker, CONTROL_STORE.application_id);
        assert_eq!(usize::try_from(version).ok(), Some(SCHEMA_VERSION));
        let tenants: Vec<String> = connection
            .prepare("SELECT tenant FROM handoff_events WHERE handoff_id = ?1 ORDER BY sequence")
            .and_then(|mut s| s.query_map([&id], |row| row.get(0))?.collect())
            .expect("tenants");
        assert_eq!(tenants, ["acme", "acme", "acme"]);

        let events = store
            .events_after("acme", &id, 0, 10)
            .await
            .expect("events");
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Created,
                EventKind::TargetStarted,
                EventKind::Ringing
            ]
        );
        assert!(matches!(
            store.events_after(DEFAULT_TENANT, &id, 0, 10).await,
            Err(StoreError::NotFound)
        ));
        // A connector event recorded before the upgrade is still known.
        let attempt = Attempt {
            number: 1,
            planned: planned(),
        };
        let mut replayed = NewEvent::new(EventKind::Ringing).attempt(attempt.clone());
        replayed.connector_position = Some(ConnectorPosition {
            run_id: "run-1".into(),
            sequence: 1,
        });
        assert!(matches!(
            store.append("acme", &id, replayed).await,
            Err(StoreError::Duplicate)
        ));
        let (connected, record) = store
            .append(
                "acme",
                &id,
                NewEvent::new(EventKind::Connected).attempt(attempt),
            )
            .await
            .expect("append after the upgrade");
        assert_eq!(connected.state, HandoffState::Connected);
        assert_eq!(record.sequence, 4);
        drop(store);

        // Opening again changes nothing.
        let store = SqliteStore::open(dir.path()).expect("open again");
        assert_eq!(
            store
                .events_after("acme", &id, 0, 10)
                .await
                .expect("events")
                .len(),
            4
        );
    }

    #[test]
    fn a_store_of_a_newer_version_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(super::super::FILE_NAME);
        sqlite_file::create(&path, CONTROL_STORE, |connection| {
            migrate(connection)?;
            connection.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        })
        .expect("create");
        let error = SqliteStore::open(dir.path()).expect_err("refused");
        assert!(matches!(error, StoreError::Refused(_)), "{error}");
        assert!(error.to_string().contains("newer"), "{error}");
    }
}
