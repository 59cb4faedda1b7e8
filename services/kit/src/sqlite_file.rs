//! The SQLite files Baton writes (the control service's store, the queue
//! connector's store, a connector's transfer journal), opened only when
//! they are what they claim to be.
//!
//! A zero-length file (a bad disk, a failed copy, a careless restore) is a
//! valid empty SQLite database: opened naively it becomes a new, empty
//! store and every handoff it should have held vanishes without a word. A
//! file whose middle pages are damaged is served until a read happens to
//! touch them. So each file carries a marker written at its creation
//! (`PRAGMA application_id`, one per kind), a new file is created only
//! where no file exists, and an existing one is opened only after
//! `PRAGMA quick_check` passed and its marker matches. A refused file is
//! never written to: the operator moves it away or restores a backup.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// A kind of Baton SQLite file, told apart by the `application_id` in its
/// header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// What the file is, in messages ("control store").
    pub name: &'static str,
    pub application_id: i32,
}

/// The control service's embedded store (`handoffs.db`): "BATC".
pub const CONTROL_STORE: FileKind = FileKind {
    name: "control store",
    application_id: 0x4241_5443,
};
/// The queue connector's store (`queue.sqlite3`): "BATQ".
pub const QUEUE_STORE: FileKind = FileKind {
    name: "queue store",
    application_id: 0x4241_5451,
};
/// A connector's transfer journal (`transfers.sqlite3`): "BATN".
pub const TRANSFER_JOURNAL: FileKind = FileKind {
    name: "transfer journal",
    application_id: 0x4241_544E,
};
/// Every kind, for tools that check a file of any of them.
pub const KINDS: [FileKind; 3] = [CONTROL_STORE, QUEUE_STORE, TRANSFER_JOURNAL];

impl FileKind {
    /// The kind whose marker is `application_id`, if any.
    pub fn of(application_id: i32) -> Option<Self> {
        KINDS
            .into_iter()
            .find(|kind| kind.application_id == application_id)
    }
}

/// Why a file is not opened.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("exists and is not a file")]
    NotAFile,
    #[error("the file is empty (zero bytes), so it holds nothing")]
    Empty,
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("not a readable SQLite database ({0})")]
    NotSqlite(String),
    #[error("corrupt ({0})")]
    Corrupt(String),
    #[error("not a Baton {expected} (application_id {found:#x}{})", FileKind::of(*.found).map(|k| format!(", a {}", k.name)).unwrap_or_default())]
    OtherKind { expected: &'static str, found: i32 },
    #[error("holds no Baton {0} (no marker and none of its tables)")]
    Unmarked(&'static str),
    #[error("cannot create it: {0}")]
    Create(String),
    #[error(
        "the file is missing but its write-ahead log {0} is there (moved or restored without \
         it?); a new file would take that log's pages as its own"
    )]
    OrphanLog(String),
}

/// Whether the file at `path` exists (`Ok(true)`: a non-empty regular
/// file), or not at all (`Ok(false)`: a new one may be created there).
/// Empty files and anything else are refused.
pub fn exists(path: &Path) -> Result<bool, FileError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(FileError::NotAFile),
        Ok(meta) if meta.len() == 0 => Err(FileError::Empty),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut log = path.as_os_str().to_owned();
            log.push("-wal");
            let log = PathBuf::from(log);
            match std::fs::metadata(&log) {
                Ok(meta) if meta.len() > 0 => Err(FileError::OrphanLog(log.display().to_string())),
                _ => Ok(false),
            }
        }
        Err(e) => Err(FileError::Unreadable(e.to_string())),
    }
}

/// How thoroughly pages are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `PRAGMA quick_check`: every page and record is read and its
    /// structure checked (O(size), no index cross-check). At every start.
    Quick,
    /// `PRAGMA integrity_check`: also that every index matches its table.
    Full,
}

/// Checks every page of the database `connection` is open on; the first
/// few problems found in the error.
pub fn check_pages(connection: &Connection, depth: Depth) -> Result<(), FileError> {
    let unreadable = |e: rusqlite::Error| FileError::NotSqlite(e.to_string());
    let pragma = match depth {
        Depth::Quick => "PRAGMA quick_check(5)",
        Depth::Full => "PRAGMA integrity_check(5)",
    };
    let mut statement = connection.prepare(pragma).map_err(unreadable)?;
    let problems = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(|e| match e.sqlite_error_code() {
            // A damaged page can fail the check itself rather than be
            // reported by it.
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => FileError::Corrupt(e.to_string()),
            _ => unreadable(e),
        })?;
    if problems != ["ok"] {
        let name = match depth {
            Depth::Quick => "quick_check",
            Depth::Full => "integrity_check",
        };
        return Err(FileError::Corrupt(format!(
            "{name}: {}",
            problems.join("; ")
        )));
    }
    Ok(())
}

/// The marker (`application_id`) and schema version (`user_version`) in
/// the file's header.
pub fn header(connection: &Connection) -> Result<(i32, i32), FileError> {
    let read = |pragma: &str| {
        connection
            .query_row(pragma, [], |row| row.get::<_, i32>(0))
            .map_err(|e| FileError::NotSqlite(e.to_string()))
    };
    Ok((read("PRAGMA application_id")?, read("PRAGMA user_version")?))
}

/// Checks an existing file of `kind`, open read-write on `connection`
/// (nothing is written unless it passes): every page ([`Depth::Quick`]),
/// then its marker. A file with no marker at all is one written before
/// markers existed when it has the table `legacy_table` (when given): it
/// is accepted and its marker is stamped now.
pub fn verify(
    connection: &Connection,
    kind: FileKind,
    legacy_table: Option<&str>,
) -> Result<(), FileError> {
    check_pages(connection, Depth::Quick)?;
    let (id, _) = header(connection)?;
    if id == kind.application_id {
        return Ok(());
    }
    if id != 0 {
        return Err(FileError::OtherKind {
            expected: kind.name,
            found: id,
        });
    }
    let Some(table) = legacy_table else {
        return Err(FileError::Unmarked(kind.name));
    };
    let has_table: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |row| row.get(0),
        )
        .map_err(|e| FileError::NotSqlite(e.to_string()))?;
    if !has_table {
        return Err(FileError::Unmarked(kind.name));
    }
    connection
        .pragma_update(None, "application_id", kind.application_id)
        .map_err(|e| FileError::Unreadable(format!("cannot stamp its marker: {e}")))?;
    tracing::info!(
        kind = kind.name,
        "file written before markers; marker stamped"
    );
    Ok(())
}

/// Opens the existing file at `path` read-write without ever creating
/// one (the check of [`exists`] cannot race into a new empty file).
pub fn open_existing(path: &Path) -> Result<Connection, FileError> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| FileError::NotSqlite(e.to_string()))
}

/// Creates a file of `kind` at `path` (and its directory): WAL mode, the
/// marker, then `init` (the schema), written beside it and moved in place
/// once complete, so that a crash during creation never leaves a
/// half-made file where the next start would find it.
pub fn create(
    path: &Path,
    kind: FileKind,
    init: impl FnOnce(&mut Connection) -> rusqlite::Result<()>,
) -> Result<(), FileError> {
    let failed = |e: &dyn std::fmt::Display| FileError::Create(e.to_string());
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent)
            .map_err(|e| FileError::Create(format!("{}: {e}", parent.display())))?;
    }
    let mut creating = path.as_os_str().to_owned();
    creating.push(".creating");
    let creating = PathBuf::from(creating);
    // Our own leftover of a crash during creation, if any.
    for leftover in ["", "-wal", "-shm"] {
        let mut name = creating.as_os_str().to_owned();
        name.push(leftover);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    let mut connection = Connection::open(&creating).map_err(|e| failed(&e))?;
    connection
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .and_then(|()| connection.pragma_update(None, "application_id", kind.application_id))
        .and_then(|()| init(&mut connection))
        // Everything into the main file, so that the rename moves it all.
        .and_then(|()| connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
        .map_err(|e| failed(&e))?;
    connection.close().map_err(|(_, e)| failed(&e))?;
    std::fs::rename(&creating, path).map_err(|e| failed(&e))?;
    // The new name must survive a power loss as the data in it will.
    if let Some(parent) = parent
        && let Ok(dir) = std::fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// What [`inspect`] found in a file, for `baton store check`.
#[derive(Debug)]
pub struct Inspection {
    /// The kind its marker names, if any.
    pub kind: Option<FileKind>,
    pub application_id: i32,
    pub user_version: i32,
    /// The pages' check: `Ok` or what is wrong.
    pub pages: Result<(), FileError>,
}

/// Inspects the file at `path` read-only (it is never written, nor is a
/// missing one created).
pub fn inspect(path: &Path, depth: Depth) -> Result<Inspection, FileError> {
    if !exists(path)? {
        return Err(FileError::Unreadable("no such file".into()));
    }
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| FileError::NotSqlite(e.to_string()))?;
    let (application_id, user_version) = header(&connection)?;
    Ok(Inspection {
        kind: FileKind::of(application_id),
        application_id,
        user_version,
        pages: check_pages(&connection, depth),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_file(dir: &Path) -> PathBuf {
        let path = dir.join("a.db");
        create(&path, QUEUE_STORE, |c| {
            c.execute_batch("CREATE TABLE t (x INTEGER)")
        })
        .expect("creates");
        path
    }

    #[test]
    fn a_created_file_verifies_and_inspects_as_its_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = new_file(dir.path());
        verify(&open_existing(&path).expect("opens"), QUEUE_STORE, None).expect("verifies");
        let found = inspect(&path, Depth::Full).expect("inspects");
        assert_eq!(found.kind, Some(QUEUE_STORE));
        assert!(found.pages.is_ok());
        assert!(!dir.path().join("a.db.creating").exists());
    }

    #[test]
    fn another_kind_and_no_marker_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = new_file(dir.path());
        let connection = open_existing(&path).expect("opens");
        let error = verify(&connection, CONTROL_STORE, None).expect_err("other kind");
        assert!(error.to_string().contains("a queue store"), "{error}");
        connection
            .pragma_update(None, "application_id", 0)
            .expect("unmark");
        let error = verify(&connection, QUEUE_STORE, Some("missing")).expect_err("unmarked");
        assert!(matches!(error, FileError::Unmarked(_)), "{error}");
        // The legacy table is there: accepted and stamped.
        verify(&connection, QUEUE_STORE, Some("t")).expect("legacy");
        assert_eq!(
            header(&connection).expect("header").0,
            QUEUE_STORE.application_id
        );
    }

    #[test]
    fn empty_and_missing_files_are_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        assert!(!exists(&path).expect("missing is fine"));
        std::fs::write(&path, b"").expect("writes");
        assert!(matches!(exists(&path), Err(FileError::Empty)));
        assert!(matches!(exists(dir.path()), Err(FileError::NotAFile)));
    }
}
