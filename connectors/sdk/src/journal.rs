//! The durable transfer journal: every transfer this connector accepted,
//! with its request, its run, whether it ended, the connector's note and
//! every event, in one embedded SQLite file, so that a restarted process
//! replays what ended and resumes (or cleanly fails) what did not, instead
//! of delivering a transfer twice.
//!
//! One thread owns the connection and applies writes in the order they are
//! sent; callers await an acknowledgement, so a write is committed before
//! what depends on it (the StartTransfer answer, an event reaching its
//! followers) happens. rusqlite's blocking calls never run on the async
//! runtime.
//!
//! Durability: WAL with `synchronous = NORMAL`. A committed write survives
//! a crash of the process (kill -9, a panic, an OOM kill), which is the
//! fault the journal exists for; it may be lost if the machine itself
//! loses power before the OS writes its cache back, a fault the control
//! service covers by failing the transfer over (CONNECTOR_LOST).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use baton_proto::connector::v1::{StartTransferRequest, StartTransferResponse};
use baton_service_kit::sqlite_file::{self, TRANSFER_JOURNAL};
use prost::Message;
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

/// A transfer's identity: (handoff id, attempt).
pub(crate) type Key = (String, u32);

/// The schema version this SDK writes (`user_version`); a journal of an
/// earlier version is migrated when opened (see [`MIGRATIONS`]).
const SCHEMA_VERSION: i32 = 2;
/// How often the writer prunes what is no longer kept.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How long an interrupted transfer nobody re-attached to or cancelled is
/// kept: far past any handoff's deadline, so the control service has long
/// moved on, yet bounded so that a journal does not grow with every crash.
pub(crate) const KEEP_INTERRUPTED: Duration = Duration::from_secs(24 * 60 * 60);

const SCHEMA: &str = "
CREATE TABLE transfers (
    handoff_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    -- The StartTransferRequest of the current run, encoded.
    request BLOB NOT NULL,
    run_id TEXT NOT NULL,
    ended INTEGER NOT NULL DEFAULT 0,
    -- Milliseconds since the Unix epoch of the last write.
    updated_ms INTEGER NOT NULL,
    -- What the connector remembered (TransferEvents::remember).
    note TEXT,
    -- The tenant whose customer it is; empty for a transfer journalled
    -- before requests carried one (version 1).
    tenant TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (handoff_id, attempt)
) WITHOUT ROWID;
CREATE TABLE events (
    handoff_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    -- The StartTransferResponse, encoded.
    event BLOB NOT NULL,
    PRIMARY KEY (handoff_id, attempt, sequence)
) WITHOUT ROWID;
";

/// What takes a journal of version `n` (the index + 1) to `n + 1`, in the
/// transaction that records the new version.
const MIGRATIONS: &[&str] = &[
    // 1 -> 2: transfers carry their tenant.
    "ALTER TABLE transfers ADD COLUMN tenant TEXT NOT NULL DEFAULT '';",
];

/// One journalled transfer, as loaded at open.
#[derive(Debug)]
pub(crate) struct Journalled {
    pub(crate) key: Key,
    /// The tenant whose customer it is (empty: journalled before requests
    /// carried one).
    pub(crate) tenant: String,
    pub(crate) request: StartTransferRequest,
    pub(crate) run_id: String,
    pub(crate) ended: bool,
    pub(crate) updated: SystemTime,
    pub(crate) note: Option<String>,
    pub(crate) events: Vec<StartTransferResponse>,
}

type Ack = oneshot::Sender<rusqlite::Result<()>>;

enum Write {
    /// A new run of a transfer: its request and run id, no events yet.
    Run {
        key: Key,
        tenant: String,
        request: Vec<u8>,
        run_id: String,
        ack: Ack,
    },
    Event {
        key: Key,
        sequence: u64,
        event: Vec<u8>,
        terminal: bool,
        ack: Ack,
    },
    Note {
        key: Key,
        note: String,
        ack: Ack,
    },
}

/// The handle of an open journal; clones share its writer thread, which
/// ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    writes: mpsc::Sender<Write>,
    path: PathBuf,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Write")
    }
}

impl Journal {
    /// Opens the journal at `path`, creating it (and its directory) when
    /// there is no file; refuses a file that is empty, corrupt or not a
    /// journal, naming it. Blocking: call it off the runtime.
    pub(crate) fn open(path: &Path) -> anyhow::Result<(Self, Vec<Journalled>)> {
        let shown = path.display();
        let refused = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "transfer journal {shown}: {e}; it is left untouched: move it away to start \
                 with a new journal"
            )
        };
        if !sqlite_file::exists(path).map_err(|e| refused(&e))? {
            create(path).map_err(|e| anyhow::anyhow!("transfer journal {shown}: {e}"))?;
        }
        let connection = sqlite_file::open_existing(path).map_err(|e| refused(&e))?;
        let version = check(&connection).map_err(|e| refused(&e))?;
        migrate(&connection, version).with_context(|| {
            format!("transfer journal {shown}: cannot migrate it from version {version}")
        })?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .and_then(|()| connection.busy_timeout(Duration::from_secs(5)))
            .with_context(|| format!("transfer journal {shown}: cannot configure it"))?;
        prune(&connection, SystemTime::now())
            .with_context(|| format!("transfer journal {shown}: cannot prune it"))?;
        let loaded = load(&connection).with_context(|| format!("transfer journal {shown}"))?;
        let (writes, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("baton-journal".into())
            .spawn(move || write_loop(&connection, &receiver))
            .with_context(|| format!("transfer journal {shown}: cannot start its writer"))?;
        Ok((
            Self {
                writes,
                path: path.to_owned(),
            },
            loaded,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    async fn send(&self, write: impl FnOnce(Ack) -> Write) -> anyhow::Result<()> {
        let (ack, acked) = oneshot::channel();
        self.writes
            .send(write(ack))
            .map_err(|_| anyhow::anyhow!("the journal's writer has stopped"))?;
        acked
            .await
            .map_err(|_| anyhow::anyhow!("the journal's writer has stopped"))?
            .with_context(|| format!("transfer journal {}", self.path.display()))
    }

    /// Records a new run of a transfer (its first, or a resumption after a
    /// restart): its tenant, request and run id, forgetting the previous
    /// run's events; the connector's note is kept.
    pub(crate) async fn begin_run(
        &self,
        key: &Key,
        tenant: &str,
        request: Vec<u8>,
        run_id: &str,
    ) -> anyhow::Result<()> {
        self.send(|ack| Write::Run {
            key: key.clone(),
            tenant: tenant.to_owned(),
            request,
            run_id: run_id.to_owned(),
            ack,
        })
        .await
    }

    /// Records one event of the current run; a terminal one ends the
    /// transfer.
    pub(crate) async fn event(
        &self,
        key: &Key,
        event: &StartTransferResponse,
        terminal: bool,
    ) -> anyhow::Result<()> {
        self.send(|ack| Write::Event {
            key: key.clone(),
            sequence: event.sequence,
            event: event.encode_to_vec(),
            terminal,
            ack,
        })
        .await
    }

    /// Records the connector's note for the transfer, replacing the last.
    pub(crate) async fn remember(&self, key: &Key, note: &str) -> anyhow::Result<()> {
        self.send(|ack| Write::Note {
            key: key.clone(),
            note: note.to_owned(),
            ack,
        })
        .await
    }
}

/// Creates a journal (see [`sqlite_file::create`]: a crash while creating
/// leaves no half-made file at `path`).
fn create(path: &Path) -> Result<(), sqlite_file::FileError> {
    sqlite_file::create(path, TRANSFER_JOURNAL, |connection| {
        connection.execute_batch(&format!(
            "BEGIN; PRAGMA user_version = {SCHEMA_VERSION}; {SCHEMA} COMMIT;"
        ))
    })
}

/// The file is a sound SQLite database that this SDK created, of a
/// schema version it reads or migrates; returns that version.
fn check(connection: &Connection) -> Result<i32, String> {
    sqlite_file::verify(connection, TRANSFER_JOURNAL, None).map_err(|e| e.to_string())?;
    let (_, version) = sqlite_file::header(connection).map_err(|e| e.to_string())?;
    if !(1..=SCHEMA_VERSION).contains(&version) {
        return Err(format!(
            "schema version {version}, this connector reads versions 1 to {SCHEMA_VERSION}"
        ));
    }
    Ok(version)
}

/// Brings a journal of `version` to [`SCHEMA_VERSION`], one step per
/// transaction, so that a crash leaves it at one version or the next.
fn migrate(connection: &Connection, version: i32) -> rusqlite::Result<()> {
    for from in version..SCHEMA_VERSION {
        let step = usize::try_from(from - 1)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
            .ok_or_else(|| rusqlite::Error::InvalidQuery)?;
        connection.execute_batch(&format!(
            "BEGIN; {step} PRAGMA user_version = {}; COMMIT;",
            from + 1
        ))?;
    }
    Ok(())
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Forgets ended transfers older than [`crate::transfers::KEEP_ENDED`]
/// and interrupted ones older than [`KEEP_INTERRUPTED`].
fn prune(connection: &Connection, now: SystemTime) -> rusqlite::Result<()> {
    let ended_before = millis(now - crate::transfers::KEEP_ENDED);
    let interrupted_before = millis(now - KEEP_INTERRUPTED);
    let stale = "(ended = 1 AND updated_ms < ?1) OR updated_ms < ?2";
    let transaction = connection.unchecked_transaction()?;
    transaction.execute(
        &format!(
            "DELETE FROM events WHERE (handoff_id, attempt) IN \
             (SELECT handoff_id, attempt FROM transfers WHERE {stale})"
        ),
        params![ended_before, interrupted_before],
    )?;
    transaction.execute(
        &format!("DELETE FROM transfers WHERE {stale}"),
        params![ended_before, interrupted_before],
    )?;
    transaction.commit()
}

fn load(connection: &Connection) -> anyhow::Result<Vec<Journalled>> {
    let mut transfers = Vec::new();
    let mut statement = connection.prepare(
        "SELECT handoff_id, attempt, request, run_id, ended, updated_ms, note, tenant \
         FROM transfers",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let key: Key = (row.get(0)?, row.get(1)?);
        let request: Vec<u8> = row.get(2)?;
        let request = StartTransferRequest::decode(request.as_slice()).with_context(|| {
            format!(
                "the request of handoff {} attempt {} cannot be decoded",
                key.0, key.1
            )
        })?;
        let updated: i64 = row.get(5)?;
        // A version 1 row has no tenant column value; its request may.
        let tenant: String = row.get(7)?;
        transfers.push(Journalled {
            key,
            tenant: if tenant.is_empty() {
                request.tenant.clone()
            } else {
                tenant
            },
            request,
            run_id: row.get(3)?,
            ended: row.get(4)?,
            updated: UNIX_EPOCH + Duration::from_millis(u64::try_from(updated).unwrap_or(0)),
            note: row.get(6)?,
            events: Vec::new(),
        });
    }
    let mut statement = connection.prepare(
        "SELECT event FROM events WHERE handoff_id = ?1 AND attempt = ?2 ORDER BY sequence",
    )?;
    for transfer in &mut transfers {
        let mut rows = statement.query(params![transfer.key.0, transfer.key.1])?;
        while let Some(row) = rows.next()? {
            let event: Vec<u8> = row.get(0)?;
            let event = StartTransferResponse::decode(event.as_slice()).with_context(|| {
                format!(
                    "an event of handoff {} attempt {} cannot be decoded",
                    transfer.key.0, transfer.key.1
                )
            })?;
            transfer.events.push(event);
        }
    }
    Ok(transfers)
}

/// The writer thread: applies writes in order, acknowledging each once it
/// is committed, and prunes now and then; ends when every handle is gone.
fn write_loop(connection: &Connection, writes: &mpsc::Receiver<Write>) {
    let mut pruned = Instant::now();
    loop {
        match writes.recv_timeout(PRUNE_EVERY) {
            Ok(write) => apply(connection, write),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            if let Err(e) = prune(connection, SystemTime::now()) {
                tracing::warn!(error = %e, "cannot prune the transfer journal");
            }
        }
    }
}

fn apply(connection: &Connection, write: Write) {
    let now = millis(SystemTime::now());
    let (result, ack) = match write {
        Write::Run {
            key,
            tenant,
            request,
            run_id,
            ack,
        } => {
            let result = connection.unchecked_transaction().and_then(|transaction| {
                transaction.execute(
                    "INSERT INTO transfers \
                     (handoff_id, attempt, request, run_id, ended, updated_ms, tenant) \
                     VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6) \
                     ON CONFLICT (handoff_id, attempt) DO UPDATE SET request = ?3, run_id = ?4, \
                     ended = 0, updated_ms = ?5, tenant = ?6",
                    params![key.0, key.1, request, run_id, now, tenant],
                )?;
                transaction.execute(
                    "DELETE FROM events WHERE handoff_id = ?1 AND attempt = ?2",
                    params![key.0, key.1],
                )?;
                transaction.commit()
            });
            (result, ack)
        }
        Write::Event {
            key,
            sequence,
            event,
            terminal,
            ack,
        } => {
            let result = connection.unchecked_transaction().and_then(|transaction| {
                transaction.execute(
                    "INSERT OR REPLACE INTO events (handoff_id, attempt, sequence, event) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![key.0, key.1, sequence, event],
                )?;
                transaction.execute(
                    "UPDATE transfers SET ended = ended OR ?3, updated_ms = ?4 \
                     WHERE handoff_id = ?1 AND attempt = ?2",
                    params![key.0, key.1, terminal, now],
                )?;
                transaction.commit()
            });
            (result, ack)
        }
        Write::Note { key, note, ack } => {
            let result = connection
                .execute(
                    "UPDATE transfers SET note = ?3, updated_ms = ?4 \
                     WHERE handoff_id = ?1 AND attempt = ?2",
                    params![key.0, key.1, note, now],
                )
                .map(drop);
            (result, ack)
        }
    };
    if let Err(e) = &result {
        tracing::error!(error = %e, "transfer journal write failed");
    }
    let _ = ack.send(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(path: &Path) -> String {
        let error = Journal::open(path).expect_err("refused");
        format!("{error:#}")
    }

    #[test]
    fn a_new_journal_is_created_with_its_directory_and_opens_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a/b/transfers.sqlite3");
        let (journal, loaded) = Journal::open(&path).expect("created");
        assert!(loaded.is_empty());
        drop(journal);
        Journal::open(&path).expect("opens again");
    }

    #[test]
    fn an_empty_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        std::fs::write(&path, b"").expect("written");
        let error = refusal(&path);
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("empty"), "{error}");
        assert_eq!(std::fs::metadata(&path).expect("kept").len(), 0);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        let garbage = b"not a database, but long enough to look like a header..".repeat(100);
        std::fs::write(&path, &garbage).expect("written");
        let error = refusal(&path);
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("not a readable SQLite database"), "{error}");
        assert_eq!(std::fs::read(&path).expect("kept"), garbage);
    }

    #[test]
    fn a_corrupted_journal_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        create(&path).expect("created");
        // Keep the header (a valid SQLite file) and trash the schema that
        // follows it on the first page, and the tables' pages.
        let mut bytes = std::fs::read(&path).expect("read");
        for byte in &mut bytes[100..] {
            *byte = 0xA5;
        }
        std::fs::write(&path, &bytes).expect("written");
        let error = refusal(&path);
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            error.contains("corrupt") || error.contains("not a readable SQLite database"),
            "{error}"
        );
    }

    #[test]
    fn a_database_that_is_not_a_journal_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE other (x INTEGER)"))
            .expect("another database");
        let error = refusal(&path);
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("Baton transfer journal"), "{error}");
    }

    #[tokio::test]
    async fn runs_events_and_notes_are_loaded_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        let (journal, _) = Journal::open(&path).expect("created");
        let key: Key = ("h".into(), 2);
        let request = StartTransferRequest {
            tenant: "acme".into(),
            handoff_id: "h".into(),
            attempt: 2,
            ..Default::default()
        };
        journal
            .begin_run(&key, "acme", request.encode_to_vec(), "run-1")
            .await
            .expect("run");
        let event = StartTransferResponse {
            sequence: 1,
            run_id: "run-1".into(),
            ..Default::default()
        };
        journal.event(&key, &event, false).await.expect("event");
        journal.remember(&key, "dialog").await.expect("note");
        drop(journal);
        let (_journal, loaded) = Journal::open(&path).expect("opens");
        assert_eq!(loaded.len(), 1);
        let transfer = &loaded[0];
        assert_eq!(transfer.key, key);
        assert_eq!(transfer.tenant, "acme");
        assert_eq!(transfer.request, request);
        assert_eq!(transfer.run_id, "run-1");
        assert!(!transfer.ended);
        assert_eq!(transfer.note.as_deref(), Some("dialog"));
        assert_eq!(transfer.events, [event]);
    }

    /// A journal as version 1 of this SDK created it, with one interrupted
    /// transfer whose request carries no tenant and one whose does.
    fn version_1_journal(path: &Path) {
        const VERSION_1: &str = "
            CREATE TABLE transfers (handoff_id TEXT NOT NULL, attempt INTEGER NOT NULL,
                request BLOB NOT NULL, run_id TEXT NOT NULL, ended INTEGER NOT NULL DEFAULT 0,
                updated_ms INTEGER NOT NULL, note TEXT, PRIMARY KEY (handoff_id, attempt))
                WITHOUT ROWID;
            CREATE TABLE events (handoff_id TEXT NOT NULL, attempt INTEGER NOT NULL,
                sequence INTEGER NOT NULL, event BLOB NOT NULL,
                PRIMARY KEY (handoff_id, attempt, sequence)) WITHOUT ROWID;";
        sqlite_file::create(path, TRANSFER_JOURNAL, |connection| {
            connection.execute_batch(&format!(
                "BEGIN; PRAGMA user_version = 1; {VERSION_1} COMMIT;"
            ))
        })
        .expect("created");
        let connection = Connection::open(path).expect("opens");
        let now = millis(SystemTime::now());
        for (id, tenant) in [("old", ""), ("tagged", "acme")] {
            let request = StartTransferRequest {
                handoff_id: id.into(),
                attempt: 1,
                tenant: tenant.into(),
                ..Default::default()
            };
            connection
                .execute(
                    "INSERT INTO transfers VALUES (?1, 1, ?2, 'r', 0, ?3, NULL)",
                    params![id, request.encode_to_vec(), now],
                )
                .expect("inserted");
        }
    }

    #[test]
    fn a_version_1_journal_is_migrated_and_its_transfers_keep_what_tenant_they_knew() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        version_1_journal(&path);
        let (journal, loaded) = Journal::open(&path).expect("migrated");
        let tenants: Vec<(&str, &str)> = loaded
            .iter()
            .map(|t| (t.key.0.as_str(), t.tenant.as_str()))
            .collect();
        assert_eq!(tenants, [("old", ""), ("tagged", "acme")]);
        drop(journal);
        let connection = Connection::open(&path).expect("opens");
        let version: i32 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("read");
        assert_eq!(version, SCHEMA_VERSION);
        drop(connection);
        Journal::open(&path).expect("opens again at the new version");
    }

    #[test]
    fn a_journal_of_a_later_version_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        create(&path).expect("created");
        Connection::open(&path)
            .and_then(|c| c.execute_batch("PRAGMA user_version = 99"))
            .expect("later version");
        let error = refusal(&path);
        assert!(error.contains("schema version 99"), "{error}");
    }

    #[test]
    fn ended_transfers_are_pruned_after_they_are_kept_and_interrupted_ones_later() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("transfers.sqlite3");
        create(&path).expect("created");
        let connection = Connection::open(&path).expect("opens");
        let now = SystemTime::now();
        let at = |ago: Duration| millis(now - ago);
        let minute = Duration::from_secs(60);
        for (id, ended, updated) in [
            ("recent-ended", 1, at(minute)),
            ("old-ended", 1, at(16 * minute)),
            ("old-interrupted", 0, at(16 * minute)),
            ("ancient-interrupted", 0, at(KEEP_INTERRUPTED + minute)),
        ] {
            connection
                .execute(
                    "INSERT INTO transfers VALUES (?1, 1, x'', 'r', ?2, ?3, NULL, 'acme')",
                    params![id, ended, updated],
                )
                .expect("inserted");
            connection
                .execute("INSERT INTO events VALUES (?1, 1, 1, x'')", params![id])
                .expect("inserted");
        }
        prune(&connection, now).expect("pruned");
        let kept: Vec<String> = connection
            .prepare("SELECT handoff_id FROM transfers ORDER BY handoff_id")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .expect("read");
        assert_eq!(kept, ["old-interrupted", "recent-ended"]);
        let events: i64 = connection
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .expect("read");
        assert_eq!(events, 2);
    }
}
