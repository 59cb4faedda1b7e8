//! Group commit: one writer thread owns the write connection and commits
//! writes in groups. It takes every write waiting in its queue, runs each
//! in its own savepoint inside one transaction (a failing write rolls back
//! alone, as if it had been its own transaction), commits once, and only
//! then answers each caller. A burst of concurrent writes costs one fsync
//! instead of one each, and nothing is acknowledged before it is durable.
//! A group of only [`Durability::Written`] writes commits with
//! `synchronous = NORMAL`: no fsync, but in the WAL's order, so the next
//! synced commit makes it durable with itself (checkpoints still sync).

use std::sync::mpsc;

use rusqlite::{Connection, TransactionBehavior};

use crate::domain::Durability;
use crate::store::StoreError;

/// The most writes committed in one transaction: bounds how long the first
/// write of a burst waits for the others to run.
const MAX_GROUP: usize = 256;

/// The most writes waiting for the writer thread.
const WRITE_QUEUE: usize = 4096;

/// A write for the writer thread, and how durable its commit must be.
struct WriteJob {
    durability: Durability,
    run: Write,
}

/// A write run by the writer thread inside the group's transaction, given
/// the connection (or why the group could not begin). It returns whether it
/// succeeded, so its savepoint is released or rolled back, and what to tell
/// its caller once the group's commit is known.
type Write = Box<dyn FnOnce(Result<&Connection, &str>) -> (bool, Completion) + Send>;

/// Answers a write's caller, given the group commit's error if it failed.
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

/// The writer thread's queue; the thread ends when every clone is gone.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::SyncSender<WriteJob>,
}

impl Writer {
    /// Starts the writer thread on `connection`.
    pub(super) fn start(connection: Connection) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::sync_channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("baton-store-writer".into())
            .spawn(move || write_groups(connection, queue))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `work` in the next group commit and answers once that commit
    /// is as durable as `durability` asks (or has failed, in which case
    /// nothing of `work` is stored).
    pub(super) async fn write<T: Send + 'static>(
        &self,
        durability: Durability,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let run: Write = Box::new(move |connection: Result<&Connection, &str>| {
            let result = match connection {
                Ok(connection) => work(connection),
                Err(error) => Err(StoreError::Unavailable(error.to_owned())),
            };
            let succeeded = result.is_ok();
            let completion: Completion = Box::new(move |commit_error: Option<&str>| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(error)) => Err(StoreError::Unavailable(error.to_owned())),
                    (result, _) => result,
                };
                // The caller may have gone away; the write stands regardless.
                let _ = reply.send(result);
            });
            (succeeded, completion)
        });
        let stopped = || StoreError::Unavailable("store writer stopped".into());
        // Full: more writes wait than a group commit can take soon; the
        // caller gets UNAVAILABLE with RetryInfo instead of a queue that
        // grows without end.
        let job = WriteJob { durability, run };
        self.jobs.try_send(job).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => {
                StoreError::Unavailable("the store's write queue is full".into())
            }
            mpsc::TrySendError::Disconnected(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The writer thread: waits for a write, takes every other write already
/// queued (up to MAX_GROUP), and commits them together, with an fsync
/// unless every write of the group is [`Durability::Written`].
fn write_groups(mut connection: Connection, jobs: mpsc::Receiver<WriteJob>) {
    let mut synced = true;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let sync = group.iter().any(|job| job.durability == Durability::Synced);
        if sync != synced {
            let pragma = if sync {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            if let Err(error) = connection.execute_batch(pragma) {
                // Nothing of a group that cannot get its durability runs.
                refuse(group, &format!("store unavailable: {error}"));
                continue;
            }
            synced = sync;
        }
        commit_group(&mut connection, group);
    }
}

fn commit_group(connection: &mut Connection, group: Vec<WriteJob>) {
    let mut tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return refuse(group, &format!("store unavailable: {error}")),
    };
    let mut completions = Vec::with_capacity(group.len());
    let mut failure: Option<String> = None;
    for job in group {
        if let Some(error) = &failure {
            completions.push((job.run)(Err(error)).1);
            continue;
        }
        match tx.savepoint() {
            Ok(savepoint) => {
                let (succeeded, completion) = (job.run)(Ok(&savepoint));
                completions.push(completion);
                // A failed write's savepoint rolls back when dropped.
                if succeeded && let Err(error) = savepoint.commit() {
                    failure = Some(format!("store unavailable: {error}"));
                }
            }
            Err(error) => {
                let error = format!("store unavailable: {error}");
                completions.push((job.run)(Err(&error)).1);
                failure = Some(error);
            }
        }
    }
    let outcome = match failure {
        // Rolls back the whole group: nothing of it was acknowledged.
        Some(error) => Some(error),
        None => tx
            .commit()
            .err()
            .map(|error| format!("store unavailable: {error}")),
    };
    for completion in completions {
        completion(outcome.as_deref());
    }
}

/// Answers every write of a group that cannot begin with `error`.
fn refuse(group: Vec<WriteJob>, error: &str) {
    for job in group {
        let (_, completion) = (job.run)(Err(error));
        completion(Some(error));
    }
}
