//! `[store]`: where handoffs are kept, and the keys each backend needs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` (embedded, one replica) or `postgres` (shared by several
    /// replicas).
    pub backend: StoreBackend,
    /// Directory of the SQLite database and the context-token key.
    pub data_dir: PathBuf,
    /// File holding the 32-byte key that signs context tokens; created in
    /// `data_dir` when unset. Required with `postgres`: every replica must
    /// sign and check tokens with the same key.
    pub token_key_file: Option<PathBuf>,
    /// PostgreSQL connection URL (`postgres://user:password@host/db`), for
    /// `backend = "postgres"`. Never logged.
    pub url: Option<String>,
    /// A file holding the URL instead (e.g. a mounted Kubernetes secret);
    /// surrounding whitespace is ignored.
    pub url_file: Option<PathBuf>,
    /// The most PostgreSQL connections of this replica's pool (reads and
    /// lease work); its four group-commit writers and its listener hold one
    /// connection each besides.
    pub max_connections: u32,
    /// How long a call waits for a PostgreSQL connection before it fails
    /// with UNAVAILABLE.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a replica's dispatch lease on a handoff lasts without
    /// renewal: the longest another replica waits before taking over the
    /// handoffs of a replica that died. Renewed every third of it.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

/// Where handoffs are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    #[default]
    Sqlite,
    Postgres,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            data_dir: PathBuf::from(".baton/data"),
            token_key_file: None,
            url: None,
            url_file: None,
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(10),
        }
    }
}

/// Keeps the URL (it may hold a password) out of debug output.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("backend", &self.backend)
            .field("data_dir", &self.data_dir)
            .field("token_key_file", &self.token_key_file)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("url_file", &self.url_file)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("lease_ttl", &self.lease_ttl)
            .finish()
    }
}

impl StoreConfig {
    /// Checks the keys of the chosen backend; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        if self.lease_ttl < Duration::from_millis(300) {
            return Err("store.lease_ttl: must be at least 300ms".into());
        }
        if self.backend != StoreBackend::Postgres {
            return Ok(());
        }
        match (&self.url, &self.url_file) {
            (Some(_), Some(_)) => {
                return Err("store.url_file: set either store.url or store.url_file".into());
            }
            (None, None) => {
                return Err(
                    "store.url: required with backend = \"postgres\" (or store.url_file)".into(),
                );
            }
            _ => {}
        }
        if self.token_key_file.is_none() {
            return Err(
                "store.token_key_file: required with backend = \"postgres\": \
                 every replica must sign context tokens with the same key"
                    .into(),
            );
        }
        if self.max_connections < 2 {
            return Err("store.max_connections: must be at least 2".into());
        }
        Ok(())
    }

    /// The PostgreSQL URL, from `url` or read from `url_file`.
    pub fn postgres_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let path = self
            .url_file
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("store.url: required with backend = \"postgres\""))?;
        let url = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("store.url_file: cannot read {}: {e}", path.display()))?;
        Ok(url.trim().to_owned())
    }
}
