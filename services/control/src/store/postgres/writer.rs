//! Group commit: a few writer tasks per replica, each owning a connection
//! of its own, commit the handoff log's writes in groups; a handoff's
//! writes always go to the same writer. A writer takes every write
//! waiting in its queue, runs each in its own savepoint inside one
//! transaction (a failing write rolls back alone, as if it had been its
//! own transaction), announces every recorded event of the group in one
//! notification, commits once, and only then answers each caller.
//!
//! Why: a commit that notifies holds PostgreSQL's notification lock
//! through its WAL flush, so such commits are serialised across the whole
//! server, one flush each (pgbench: a single-row INSERT with a NOTIFY
//! commits at a fifth of the rate of the INSERT alone). A group costs one
//! such commit instead of one per write. Nothing is acknowledged before
//! its group's commit has succeeded.
//!
//! Row locks taken by a write (`append` locks its handoff) are held until
//! the group commits. Within a replica only one writer locks a given
//! handoff. Two replicas' groups that lock the same two handoffs in
//! opposite orders deadlock (rare: a handoff's events are recorded by the
//! replica that holds its lease); PostgreSQL then fails one of the
//! two statements, and that write alone fails (UNAVAILABLE to its caller,
//! who retries), its savepoint rolled back.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};

use super::notices;
use crate::store::{EventNotice, StoreError};

/// The most writes committed in one transaction: bounds how long the first
/// write of a burst waits for the others to run.
const MAX_GROUP: usize = 256;

/// The most writes waiting for one writer task.
const WRITE_QUEUE: usize = 4096;

/// Writer tasks per replica, each with its connection, each handoff's
/// writes always on the same one. A group's writes run one round trip
/// after another, so one writer is bound by round-trip latency long
/// before the database is busy; several overlap their round trips and
/// their commits.
const WRITERS: usize = 4;

/// A write's work, given the writer's connection (`None`: its group could
/// not begin, so it must not run); hands the connection back with what
/// happened.
type Run =
    Box<dyn FnOnce(Option<PgConnection>) -> Pin<Box<dyn Future<Output = Ran> + Send>> + Send>;

/// What a write did inside its savepoint.
struct Ran {
    connection: Option<PgConnection>,
    succeeded: bool,
    /// The event it recorded, announced when the group commits.
    notice: Option<EventNotice>,
    answer: Answer,
}

/// Answers a write's caller, given the group commit's error if it failed.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// The writer tasks' queues, one per writer; each task ends when every
/// clone is gone.
#[derive(Clone)]
pub(super) struct Writer {
    writers: Vec<mpsc::Sender<Run>>,
}

impl Writer {
    /// Starts [`WRITERS`] writer tasks, each of which connects with
    /// `options` (again after a connection fails) within `connect_timeout`.
    pub(super) fn start(options: PgConnectOptions, connect_timeout: Duration) -> Self {
        let writers = (0..WRITERS)
            .map(|_| {
                let (jobs, queue) = mpsc::channel(WRITE_QUEUE);
                tokio::spawn(write_groups(options.clone(), connect_timeout, queue));
                jobs
            })
            .collect();
        Self { writers }
    }

    /// Runs `work` on handoff `handoff_id` in its writer's next group
    /// commit and answers once that commit has succeeded (or has failed, in
    /// which case nothing of `work` is stored). `work` returns the
    /// connection it was given, its result, and the event it recorded, if
    /// any, to announce.
    pub(super) async fn write<T, Work, Fut>(
        &self,
        handoff_id: &str,
        work: Work,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        Work: FnOnce(PgConnection) -> Fut + Send + 'static,
        Fut: Future<Output = (PgConnection, Result<(T, Option<EventNotice>), StoreError>)>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let run: Run = Box::new(move |connection: Option<PgConnection>| {
            Box::pin(async move {
                let Some(connection) = connection else {
                    // Never ran: the caller hears why the group failed.
                    let answer: Answer = Box::new(move |error: Option<&str>| {
                        let error = error.unwrap_or("store unavailable: the write did not run");
                        let _ = reply.send(Err(StoreError::Unavailable(error.to_owned())));
                    });
                    return Ran {
                        connection: None,
                        succeeded: false,
                        notice: None,
                        answer,
                    };
                };
                let (connection, result) = work(connection).await;
                let (succeeded, notice) = match &result {
                    Ok((_, notice)) => (true, notice.clone()),
                    Err(_) => (false, None),
                };
                let answer: Answer = Box::new(move |commit_error: Option<&str>| {
                    let result = match (result, commit_error) {
                        // Its group did not commit: nothing of it is stored.
                        (Ok(_), Some(error)) => Err(StoreError::Unavailable(error.to_owned())),
                        (result, _) => result.map(|(value, _)| value),
                    };
                    // The caller may have gone away; the write stands regardless.
                    let _ = reply.send(result);
                });
                Ran {
                    connection: Some(connection),
                    succeeded,
                    notice,
                    answer,
                }
            })
        });
        let stopped = || StoreError::Unavailable("store writer stopped".into());
        // Full: more writes wait than a group commit can take soon; the
        // caller gets UNAVAILABLE with RetryInfo instead of a queue that
        // grows without end.
        let jobs = &self.writers[writer_of(handoff_id, self.writers.len())];
        jobs.try_send(run).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable("the store's write queue is full".into())
            }
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The writer of a handoff: always the same one, so that within a
/// replica only one transaction at a time locks a handoff's row.
fn writer_of(handoff_id: &str, writers: usize) -> usize {
    // FNV-1a: stable, and enough to spread UUIDs.
    let hash = handoff_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    usize::try_from(hash % writers.max(1) as u64).unwrap_or(0)
}

/// A writer task: waits for a write, takes every other write already
/// queued (up to MAX_GROUP), and commits them together.
async fn write_groups(
    options: PgConnectOptions,
    connect_timeout: Duration,
    mut jobs: mpsc::Receiver<Run>,
) {
    let mut connection: Option<PgConnection> = None;
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let open = match connection.take() {
            Some(open) => Ok(open),
            None => connect(&options, connect_timeout).await,
        };
        connection = match open {
            Ok(open) => commit_group(open, group).await,
            Err(error) => {
                refuse(group, &error).await;
                None
            }
        };
    }
}

async fn connect(options: &PgConnectOptions, timeout: Duration) -> Result<PgConnection, String> {
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(format!("store unavailable: {error}")),
        Err(_) => Err("store unavailable: connecting timed out".into()),
    }
}

/// Runs and commits one group; the connection back unless it failed (its
/// state is then unknown, and the next group connects afresh).
async fn commit_group(mut connection: PgConnection, group: Vec<Run>) -> Option<PgConnection> {
    if let Err(error) = sqlx::raw_sql("BEGIN; SAVEPOINT write")
        .execute(&mut connection)
        .await
    {
        refuse(group, &format!("store unavailable: {error}")).await;
        return None;
    }
    let mut answers = Vec::with_capacity(group.len());
    let mut notices = Vec::new();
    let mut failure: Option<String> = None;
    let mut open = Some(connection);
    // After a write, what its savepoint needs before the next write runs:
    // released and set again after a success, rolled back after a failure.
    let mut pending: Option<&str> = None;
    for run in group {
        if let (Some(command), Some(connection)) = (pending.take(), open.as_mut())
            && let Err(error) = sqlx::raw_sql(command).execute(&mut *connection).await
        {
            failure = Some(format!("store unavailable: {error}"));
        }
        if failure.is_some() {
            answers.push(run(None).await.answer);
            continue;
        }
        let ran = run(open.take()).await;
        answers.push(ran.answer);
        if ran.connection.is_none() {
            failure = Some("store unavailable: the writer lost its connection".into());
            continue;
        }
        open = ran.connection;
        pending = if ran.succeeded {
            notices.extend(ran.notice);
            Some("RELEASE SAVEPOINT write; SAVEPOINT write")
        } else {
            Some("ROLLBACK TO SAVEPOINT write")
        };
    }
    let Some(mut connection) = open else {
        answer_all(
            answers,
            Some(failure.as_deref().unwrap_or("store unavailable")),
        );
        return None;
    };
    // The last write's savepoint: kept as it is by the commit when it
    // succeeded.
    if failure.is_none()
        && pending == Some("ROLLBACK TO SAVEPOINT write")
        && let Err(error) = sqlx::raw_sql("ROLLBACK TO SAVEPOINT write")
            .execute(&mut connection)
            .await
    {
        failure = Some(format!("store unavailable: {error}"));
    }
    if failure.is_none()
        && let Err(error) = notices::notify_all(&mut connection, &notices).await
    {
        failure = Some(error.to_string());
    }
    let outcome = match failure {
        Some(error) => {
            // Nothing of the group was acknowledged.
            let rolled_back = sqlx::raw_sql("ROLLBACK").execute(&mut connection).await;
            answer_all(answers, Some(&error));
            return rolled_back.ok().map(|_| connection);
        }
        None => sqlx::raw_sql("COMMIT")
            .execute(&mut connection)
            .await
            .err()
            .map(|error| format!("store unavailable: {error}")),
    };
    let healthy = outcome.is_none();
    answer_all(answers, outcome.as_deref());
    healthy.then_some(connection)
}

fn answer_all(answers: Vec<Answer>, outcome: Option<&str>) {
    for answer in answers {
        answer(outcome);
    }
}

/// Answers every write of a group that cannot begin with `error`.
async fn refuse(group: Vec<Run>, error: &str) {
    for run in group {
        (run(None).await.answer)(Some(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handoff_always_has_the_same_writer_and_handoffs_spread() {
        let id = "0193a5b2-7c1e-7d4f-9a61-3f2e1d0c9b8a";
        assert_eq!(writer_of(id, WRITERS), writer_of(id, WRITERS));
        let used: std::collections::BTreeSet<usize> = (0..64)
            .map(|n| writer_of(&format!("0193a5b2-7c1e-7d4f-9a61-{n:012}"), WRITERS))
            .collect();
        assert_eq!(used.len(), WRITERS);
        assert_eq!(writer_of(id, 1), 0);
    }
}
