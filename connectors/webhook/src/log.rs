//! The delivery log: one row per HTTP request, in SQLite, kept across
//! restarts. It holds what an operator needs to see why a screen pop did
//! not arrive (which endpoint, which try, the status or the transport
//! error, when, how long) and never a body, a secret or a context value.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};
use serde::Serialize;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 2xx: the endpoint took the message.
    Accepted,
    /// 5xx, 429 or a transport failure: retried if tries remain.
    Retryable,
    /// Any other status: not retried.
    Rejected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Retryable => "retryable",
            Self::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            _ => Self::Retryable,
        }
    }
}

/// One request of one delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The `webhook-id`: the same on every retry of a delivery.
    pub message_id: String,
    pub handoff_id: String,
    /// The handoff's transfer attempt (1 for the first target…).
    pub transfer_attempt: u32,
    pub endpoint: String,
    /// 1 for the first request of the delivery, 2 for the first retry…
    pub try_number: u32,
    /// When the request was sent, in milliseconds since the Unix epoch.
    pub sent_at_ms: i64,
    /// How long until the answer (or the failure), in milliseconds.
    pub elapsed_ms: i64,
    /// The HTTP status, when one came back.
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// The transport error, or the reason a status was final.
    pub error: Option<String>,
}

/// The log, shared by every delivery of the process.
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    connection: Arc<Mutex<Connection>>,
}

impl DeliveryLog {
    /// Opens (or creates) the log at `path`, creating its directory.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("delivery_log: cannot create {}: {e}", dir.display())
            })?;
        }
        let connection = Connection::open(path)
            .map_err(|e| anyhow::anyhow!("delivery_log: cannot open {}: {e}", path.display()))?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS webhook_attempts (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 message_id TEXT NOT NULL,
                 handoff_id TEXT NOT NULL,
                 transfer_attempt INTEGER NOT NULL,
                 endpoint TEXT NOT NULL,
                 try_number INTEGER NOT NULL,
                 sent_at_ms INTEGER NOT NULL,
                 elapsed_ms INTEGER NOT NULL,
                 status INTEGER,
                 outcome TEXT NOT NULL,
                 error TEXT
             );
             CREATE INDEX IF NOT EXISTS webhook_attempts_by_handoff
                 ON webhook_attempts (handoff_id, id);",
        )?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one request's record. Called off the async threads.
    pub fn append(&self, attempt: &Attempt) -> anyhow::Result<()> {
        self.lock().execute(
            "INSERT INTO webhook_attempts (message_id, handoff_id, transfer_attempt, endpoint,
                 try_number, sent_at_ms, elapsed_ms, status, outcome, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                attempt.message_id,
                attempt.handoff_id,
                attempt.transfer_attempt,
                attempt.endpoint,
                attempt.try_number,
                attempt.sent_at_ms,
                attempt.elapsed_ms,
                attempt.status,
                attempt.outcome.as_str(),
                attempt.error,
            ],
        )?;
        Ok(())
    }

    /// Appends without blocking the caller's runtime thread; a failure to
    /// write is logged, never fatal to the delivery itself.
    pub async fn record(&self, attempt: Attempt) {
        let log = self.clone();
        let result = tokio::task::spawn_blocking(move || log.append(&attempt)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "delivery log write failed"),
            Err(error) => tracing::error!(%error, "delivery log writer panicked"),
        }
    }

    /// The requests for a handoff (every handoff when `None`), oldest first,
    /// at most `limit`.
    pub fn query(&self, handoff_id: Option<&str>, limit: u32) -> anyhow::Result<Vec<Attempt>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT message_id, handoff_id, transfer_attempt, endpoint, try_number, sent_at_ms,
                    elapsed_ms, status, outcome, error
             FROM webhook_attempts
             WHERE ?1 IS NULL OR handoff_id = ?1
             ORDER BY id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![handoff_id, limit], |row| {
            Ok(Attempt {
                message_id: row.get(0)?,
                handoff_id: row.get(1)?,
                transfer_attempt: row.get(2)?,
                endpoint: row.get(3)?,
                try_number: row.get(4)?,
                sent_at_ms: row.get(5)?,
                elapsed_ms: row.get(6)?,
                status: row.get(7)?,
                outcome: Outcome::parse(&row.get::<_, String>(8)?),
                error: row.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(handoff: &str, try_number: u32, status: Option<u16>, outcome: Outcome) -> Attempt {
        Attempt {
            message_id: format!("msg_{handoff}"),
            handoff_id: handoff.into(),
            transfer_attempt: 1,
            endpoint: "crm".into(),
            try_number,
            sent_at_ms: 1_700_000_000_000 + i64::from(try_number),
            elapsed_ms: 12,
            status,
            outcome,
            error: status.is_none().then(|| "timed out".to_string()),
        }
    }

    #[test]
    fn attempts_survive_a_reopen_and_are_queried_by_handoff_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log").join("deliveries.sqlite3");
        let log = DeliveryLog::open(&path).expect("opens");
        log.append(&attempt("h1", 1, None, Outcome::Retryable))
            .expect("appends");
        log.append(&attempt("h2", 1, Some(200), Outcome::Accepted))
            .expect("appends");
        log.append(&attempt("h1", 2, Some(503), Outcome::Retryable))
            .expect("appends");
        log.append(&attempt("h1", 3, Some(200), Outcome::Accepted))
            .expect("appends");
        drop(log);

        let log = DeliveryLog::open(&path).expect("reopens");
        let h1 = log.query(Some("h1"), 100).expect("queries");
        assert_eq!(
            h1.iter()
                .map(|a| (a.try_number, a.status))
                .collect::<Vec<_>>(),
            [(1, None), (2, Some(503)), (3, Some(200))]
        );
        assert_eq!(h1[0], attempt("h1", 1, None, Outcome::Retryable));
        assert_eq!(log.query(None, 100).expect("queries").len(), 4);
        assert_eq!(log.query(None, 2).expect("queries").len(), 2);
    }
}
