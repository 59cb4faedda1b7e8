//! A file that is parsed at start and parsed again whenever it changes, so
//! that keys rotate without a restart.
//!
//! Each use compares the file's modification time, length and inode with
//! those of the last read (one `stat`, about a microsecond), so a change is
//! seen by the very next request, with no watcher task and no timer. A file
//! that fails to parse (half written, or wrong) leaves the previous contents
//! in force and is logged once; the next change is tried again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Largest file read, so that a wrong path (a device, a huge log) cannot
/// exhaust memory.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let metadata = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

/// Why a watched file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

type Parser<T> = fn(&[u8]) -> Result<T, String>;

struct State<T> {
    stamp: Option<Stamp>,
    value: Arc<T>,
}

/// The parsed contents of a file, kept up to date with it.
pub struct Reloading<T> {
    path: PathBuf,
    parse: Parser<T>,
    state: RwLock<State<T>>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

fn load<T>(path: &Path, parse: Parser<T>) -> Result<T, LoadError> {
    let bytes = read(path)?;
    parse(&bytes).map_err(|message| LoadError::Invalid {
        path: path.to_owned(),
        message,
    })
}

impl<T> Reloading<T> {
    /// Reads and parses `path`; fails when it cannot, so that a service does
    /// not start with a wrong file.
    pub fn open(path: &Path, parse: Parser<T>) -> Result<Self, LoadError> {
        let stamp = stamp(path).ok();
        let value = load(path, parse)?;
        Ok(Self {
            path: path.to_owned(),
            parse,
            state: RwLock::new(State {
                stamp,
                value: Arc::new(value),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents in force, read again first if the file has changed.
    pub fn current(&self) -> Arc<T> {
        let stamp = stamp(&self.path).ok();
        {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if state.stamp == stamp {
                return state.value.clone();
            }
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.stamp != stamp {
            state.stamp = stamp;
            match stamp.map(|_| load(&self.path, self.parse)) {
                Some(Ok(value)) => {
                    state.value = Arc::new(value);
                    tracing::info!(path = %self.path.display(), "reloaded");
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "not reloaded; the previous contents stay in force");
                }
                None => tracing::warn!(
                    path = %self.path.display(),
                    "file is gone; the previous contents stay in force"
                ),
            }
        }
        state.value.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_number(bytes: &[u8]) -> Result<u32, String> {
        std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())
    }

    /// Replaces the file the way deployment tools do: write aside, rename.
    pub(crate) fn replace(path: &Path, contents: &str) {
        let aside = path.with_extension("new");
        std::fs::write(&aside, contents).expect("write");
        std::fs::rename(&aside, path).expect("rename");
    }

    #[test]
    fn changes_are_seen_on_next_use_and_bad_contents_keep_the_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n");
        std::fs::write(&path, "1").expect("write");
        let file = Reloading::open(&path, parse_number).expect("opens");
        assert_eq!(*file.current(), 1);

        replace(&path, "2");
        assert_eq!(*file.current(), 2);

        replace(&path, "not a number");
        assert_eq!(*file.current(), 2);

        std::fs::remove_file(&path).expect("remove");
        assert_eq!(*file.current(), 2);

        replace(&path, "3");
        assert_eq!(*file.current(), 3);
    }

    #[test]
    fn a_bad_file_at_start_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n");
        std::fs::write(&path, "x").expect("write");
        let error = Reloading::open(&path, parse_number).expect_err("refused");
        assert!(
            error.to_string().contains(&*path.to_string_lossy()),
            "{error}"
        );
    }
}
