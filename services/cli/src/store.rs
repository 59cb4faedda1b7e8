//! `baton store check|backup`: Baton's SQLite files (the control store
//! `handoffs.db`, the queue store `queue.sqlite3`, a connector's transfer
//! journal `transfers.sqlite3`) checked offline, and copied consistently
//! while their service runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_service_kit::sqlite_file::{self, CONTROL_STORE, Depth, FileKind};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Check a Baton SQLite file (a control store, a queue store or a
    /// transfer journal) without writing to it: its marker, its schema
    /// version and every page (PRAGMA quick_check). Exit 0 when it is
    /// sound, 1 with what is wrong otherwise. Run it on a stopped
    /// service's file or on a backup.
    Check {
        file: PathBuf,
        /// Also check that every index matches its table (PRAGMA
        /// integrity_check): slower on a large file.
        #[arg(long)]
        full: bool,
    },
    /// Copy a Baton SQLite file consistently, also while its service runs
    /// and writes (SQLite's online backup: one snapshot, never a torn
    /// copy), then check the copy. DEST must not exist; it appears only
    /// once complete and checked. Exit 0 on success, 1 otherwise.
    Backup { file: PathBuf, dest: PathBuf },
}

pub fn run(command: StoreCommand) -> u8 {
    let (file, outcome) = match command {
        StoreCommand::Check { file, full } => {
            let depth = if full { Depth::Full } else { Depth::Quick };
            let outcome = check(&file, depth);
            (file, outcome)
        }
        StoreCommand::Backup { file, dest } => {
            let outcome = backup(&file, &dest);
            (file, outcome)
        }
    };
    match outcome {
        Ok(report) => {
            println!("{}: {report}", file.display());
            exit::OK
        }
        Err(error) => {
            eprintln!("{}: {error}", file.display());
            exit::ERROR
        }
    }
}

/// What the file is, if it is sound.
fn check(file: &Path, depth: Depth) -> Result<String, String> {
    let found = sqlite_file::inspect(file, depth).map_err(|e| e.to_string())?;
    let Some(kind) = found.kind else {
        return Err(format!(
            "not a Baton file (application_id {:#x}; a control store has {:#x})",
            found.application_id, CONTROL_STORE.application_id
        ));
    };
    let version = found.user_version;
    if kind == CONTROL_STORE {
        let known = baton_control::store::SQLITE_SCHEMA_VERSION;
        if usize::try_from(version).map_or(true, |v| v > known) {
            return Err(format!(
                "{}: schema version {version}, newer than this baton's {known}",
                kind.name
            ));
        }
    }
    let checked = match depth {
        Depth::Quick => "quick_check",
        Depth::Full => "integrity_check",
    };
    found
        .pages
        .map_err(|e| format!("{}, schema version {version}: {e}", kind.name))?;
    Ok(format!(
        "{}, schema version {version}, every page sound ({checked}): ok",
        kind.name
    ))
}

/// How long a backup waits for the source's locks, in all.
const LOCK_WAIT: Duration = Duration::from_secs(10);

fn backup(file: &Path, dest: &Path) -> Result<String, String> {
    if dest.exists() {
        return Err(format!("{} exists; name a new file", dest.display()));
    }
    if !sqlite_file::exists(file).map_err(|e| e.to_string())? {
        return Err("no such file".into());
    }
    // Read-only: the backup never writes to the running service's file.
    let source = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    source.busy_timeout(LOCK_WAIT).map_err(|e| e.to_string())?;
    let (application_id, _) = sqlite_file::header(&source).map_err(|e| e.to_string())?;
    let kind = FileKind::of(application_id)
        .ok_or_else(|| format!("not a Baton file (application_id {application_id:#x})"))?;
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let pages = copy(&source, &partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    if let Err(error) = sqlite_file::inspect(&partial, Depth::Quick)
        .map_err(|e| e.to_string())
        .and_then(|found| found.pages.map_err(|e| e.to_string()))
    {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("the copy does not check: {error}"));
    }
    std::fs::rename(&partial, dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(format!(
        "{} backed up to {} ({pages} pages, checked)",
        kind.name,
        dest.display()
    ))
}

/// Copies every page of `source` into a new file at `to` in one step: one
/// read transaction, so the copy is one consistent snapshot however busy
/// the writer is (a copy in several steps starts over at each write by
/// another process). Returns how many pages it copied.
fn copy(source: &Connection, to: &Path) -> Result<i32, String> {
    let mut out = Connection::open(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let pages = {
        let backup = Backup::new(source, &mut out).map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        loop {
            match backup.step(-1).map_err(|e| e.to_string())? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if started.elapsed() > LOCK_WAIT => {
                    return Err(format!("the file stayed locked for {LOCK_WAIT:?}"));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        backup.progress().pagecount
    };
    // The copy is a file of its own: its pages in the main file, no log.
    out.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .map_err(|e| e.to_string())?;
    out.close().map_err(|(_, e)| e.to_string())?;
    if let Ok(file) = std::fs::File::open(to) {
        file.sync_all()
            .map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(pages)
}
