//! A connector as a process, in one line of `main`:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     baton_connector_sdk::run::<MyConfig>()
//! }
//! ```
//!
//! [`run`] gives every connector the same process: the flags (`--help`,
//! `--version`, `--config`, `--listen`, `--health-listen`, `--http-listen`,
//! `--data-dir`, and the connector's own through
//! [`RunnableConnector::Flags`]), the configuration from defaults, a file and
//! `<PREFIX>_…` environment variables (older top-level keys still read,
//! with a deprecation warning), logs, traces and metrics, health and
//! reflection, the readiness line, and a graceful stop on SIGTERM. Exit
//! status 0 after a graceful stop, 2 when the connector cannot start (the
//! reason on stderr), 1 when serving fails.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use baton_service_kit::config::MovedKey;
use baton_service_kit::lifecycle::{cannot_start, exit_status, shutdown_signal};
use baton_service_kit::telemetry::{self, TelemetryConfig};
use baton_service_kit::tls::TlsConfig;
use clap::{CommandFactory, FromArgMatches};
use serde::de::DeserializeOwned;

use crate::config::{ConnectorDefaults, MOVED_KEYS, ServerConfig, StoreConfig};

/// A connector that [`run`] can start as a process. Implemented by the
/// connector's configuration type, which holds the shared sections
/// ([`Sections`]) beside its own keys and knows how to bind the connector
/// it configures: `run::<SipConfig>()` runs the SIP connector.
pub trait RunnableConnector: ConnectorDefaults + DeserializeOwned + Send + Sized + 'static {
    /// The binary's name, e.g. `baton-connector-sip`: in `--help`, in the
    /// errors on stderr and as the telemetry's `service.name`.
    const BINARY: &'static str;
    /// The binary's version, for `--version`: `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// The prefix of the environment variables that override the file,
    /// without the trailing underscore, e.g. `BATON_SIP`
    /// (`BATON_SIP_SERVER__GRPC_LISTEN`).
    const ENV_PREFIX: &'static str;
    /// What the connector does, for `--help`.
    const ABOUT: &'static str;

    /// Flags of this connector alone, beside the shared ones; [`NoFlags`]
    /// when it has none.
    type Flags: clap::Args;
    /// The connector with its listeners bound.
    type Bound: ServeConnector;

    /// The shared sections, for the runner to read and to override from
    /// the flags.
    fn sections(&mut self) -> Sections<'_, Self>;

    /// Applies this connector's own flags (after the shared ones).
    fn apply_flags(&mut self, flags: Self::Flags) {
        let _ = flags;
    }

    /// Fills what neither the file nor the `<PREFIX>_…` variables gave from
    /// elsewhere (Amazon Connect: AWS's own variables). Nothing by default.
    fn with_environment(self) -> Self {
        self
    }

    /// Checks what serde cannot, beyond the shared sections; the error
    /// names the key.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Binds the connector's listeners (port 0 picks a free port) and
    /// opens its stores.
    fn bind(self) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send;
}

/// The shared sections of a connector's configuration.
#[derive(Debug)]
pub struct Sections<'a, C> {
    pub server: &'a mut ServerConfig<C>,
    pub store: &'a mut StoreConfig<C>,
    pub telemetry: &'a mut TelemetryConfig,
    pub tls: &'a mut Option<TlsConfig>,
}

/// A connector with its listeners bound, ready to serve: what
/// [`RunnableConnector::bind`] returns, and what `baton dev` runs several of
/// in one process.
pub trait ServeConnector: Send + 'static {
    /// The addresses bound, named as in the readiness line (`grpc`, and
    /// e.g. `http`, `sip`, `health`).
    fn endpoints(&self) -> Vec<(String, SocketAddr)>;

    /// Serves until `shutdown`, then drains and returns.
    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// The address named `name` in [`endpoints`](Self::endpoints).
    fn endpoint(&self, name: &str) -> Option<SocketAddr> {
        self.endpoints()
            .into_iter()
            .find(|(endpoint, _)| endpoint == name)
            .map(|(_, addr)| addr)
    }
}

/// No flags of a connector's own.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct NoFlags {}

/// The flags every connector takes.
#[derive(Debug, clap::Parser)]
struct Cli<F: clap::Args> {
    /// Configuration file (TOML or YAML).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `server.grpc_listen`).
    #[arg(long, visible_alias = "grpc-listen")]
    listen: Option<SocketAddr>,
    /// Plain-text grpc.health.v1 listen address for probes that cannot
    /// speak TLS (overrides `server.health_listen`).
    #[arg(long)]
    health_listen: Option<SocketAddr>,
    /// HTTP listen address (overrides `server.http_listen`).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// State directory: the transfer journal and the connector's own files
    /// (overrides `store.data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    connector: F,
}

/// Runs the connector whose configuration is `C` as a process: parses the
/// flags, loads the configuration, installs telemetry, binds, serves until
/// SIGTERM or Ctrl-C, drains and returns the exit status. Builds its own
/// Tokio runtime: call it from a plain `fn main`.
pub fn run<C: RunnableConnector>() -> ExitCode {
    let serves_http = C::HTTP_LISTEN.is_some();
    let command = Cli::<C::Flags>::command()
        .name(C::BINARY)
        .bin_name(C::BINARY)
        .version(C::VERSION)
        .about(C::ABOUT)
        .mut_arg("config", |arg| {
            arg.help(format!(
                "Configuration file (TOML or YAML); `{}_…` variables override it (e.g. `{}_SERVER__GRPC_LISTEN`)",
                C::ENV_PREFIX,
                C::ENV_PREFIX
            ))
        })
        .mut_arg("http_listen", |arg| arg.hide(!serves_http));
    let cli = match Cli::<C::Flags>::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return cannot_start(C::BINARY, error),
    };
    runtime.block_on(start::<C>(cli))
}

async fn start<C: RunnableConnector>(cli: Cli<C::Flags>) -> ExitCode {
    let (mut config, moved) = match load::<C>(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => return cannot_start(C::BINARY, error),
    };
    let mut config = {
        let sections = config.sections();
        if let Some(listen) = cli.listen {
            sections.server.grpc_listen = listen;
        }
        if let Some(listen) = cli.health_listen {
            sections.server.health_listen = Some(listen);
        }
        if let Some(listen) = cli.http_listen {
            sections.server.http_listen = Some(listen);
        }
        if let Some(dir) = cli.data_dir {
            sections.store.data_dir = Some(dir);
        }
        config.apply_flags(cli.connector);
        config
    };
    if let Err(error) = check(&mut config) {
        return cannot_start(C::BINARY, format!("configuration: {error}"));
    }
    let _telemetry = match telemetry::init(C::BINARY, config.sections().telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => return cannot_start(C::BINARY, error),
    };
    for key in moved {
        tracing::warn!(
            old = key.from,
            new = key.to,
            "deprecated configuration key {}: write it as {}",
            key.from,
            key.to
        );
    }
    // Installed before binding: a SIGTERM during start is a graceful stop.
    let shutdown = shutdown_signal();
    let bound = match config.bind().await {
        Ok(bound) => bound,
        Err(error) => return cannot_start(C::BINARY, error),
    };
    exit_status(C::BINARY, bound.serve(shutdown).await)
}

/// Loads `C` as [`run`] does (defaults, `file`, `<PREFIX>_…` variables,
/// keys of earlier releases moved to their sections) and completes it from
/// the environment, without checking it. Returns the moved keys too.
pub fn load<C: RunnableConnector>(file: Option<&Path>) -> Result<(C, Vec<MovedKey>), String> {
    let (config, moved) =
        baton_service_kit::config::load_moving::<C>(file, C::ENV_PREFIX, MOVED_KEYS)
            .map_err(|e| e.to_string())?;
    Ok((config.with_environment(), moved))
}

/// Checks a loaded configuration as [`run`] does before binding: the
/// shared sections, then the connector's own keys. The error names the key.
pub fn check<C: RunnableConnector>(config: &mut C) -> Result<(), String> {
    config.sections().server.check()?;
    config.validate()
}

/// Loads and checks `file` as the connector would at start, without
/// starting it (`baton config check`).
pub fn check_file<C: RunnableConnector>(file: &Path) -> Result<(), String> {
    let (mut config, _) = load::<C>(Some(file))?;
    check(&mut config)
}

/// Writes [`RunnableConnector::sections`] for a configuration that keeps
/// the shared sections in the fields `server`, `store`, `telemetry` and
/// `tls`, as every connector does: `baton_connector_sdk::shared_sections!();`
/// inside its `impl RunnableConnector`.
#[macro_export]
macro_rules! shared_sections {
    () => {
        fn sections(&mut self) -> $crate::Sections<'_, Self> {
            $crate::Sections {
                server: &mut self.server,
                store: &mut self.store,
                telemetry: &mut self.telemetry,
                tls: &mut self.tls,
            }
        }
    };
}

/// Implements [`ServeConnector`] for a connector's bound type that keeps
/// its [`BoundConnector`](crate::BoundConnector) in a field `connector` (whose
/// endpoints it reports) and serves through an inherent
/// `async fn serve(self, shutdown)`: `serve_connector!(Bound);`.
#[macro_export]
macro_rules! serve_connector {
    ($bound:ty) => {
        impl $crate::ServeConnector for $bound {
            fn endpoints(&self) -> ::std::vec::Vec<(::std::string::String, ::std::net::SocketAddr)> {
                self.connector.endpoints()
            }

            fn serve(
                self,
                shutdown: impl ::std::future::Future<Output = ()> + ::std::marker::Send + 'static,
            ) -> impl ::std::future::Future<Output = $crate::run::anyhow::Result<()>>
            + ::std::marker::Send {
                <$bound>::serve(self, shutdown)
            }
        }
    };
}

/// For [`serve_connector!`], so that its users need not name `anyhow`.
#[doc(hidden)]
pub use anyhow;

impl<C: crate::Connector> ServeConnector for crate::BoundConnector<C> {
    fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        crate::BoundConnector::endpoints(self)
    }

    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        crate::BoundConnector::serve(self, shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::loopback;
    use serde::Deserialize;

    /// A connector configuration as connectors write theirs.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct SampleConfig {
        server: ServerConfig<SampleConfig>,
        store: StoreConfig<SampleConfig>,
        telemetry: TelemetryConfig,
        tls: Option<TlsConfig>,
        name: String,
    }

    impl Default for SampleConfig {
        fn default() -> Self {
            Self {
                server: ServerConfig::default(),
                store: StoreConfig::default(),
                telemetry: TelemetryConfig::default(),
                tls: None,
                name: "sample".into(),
            }
        }
    }

    impl ConnectorDefaults for SampleConfig {
        const GRPC_LISTEN: SocketAddr = loopback(50097);
        const HTTP_LISTEN: Option<SocketAddr> = Some(loopback(8097));
        const DATA_DIR: Option<&'static str> = Some(".baton/sample");
    }

    impl RunnableConnector for SampleConfig {
        const BINARY: &'static str = "baton-connector-sample";
        const VERSION: &'static str = "0.0.0";
        const ENV_PREFIX: &'static str = "BATON_SDK_TEST_SAMPLE";
        const ABOUT: &'static str = "A sample.";
        type Flags = NoFlags;
        type Bound = crate::BoundConnector<Unused>;

        crate::shared_sections!();

        fn validate(&self) -> Result<(), String> {
            if self.name.is_empty() {
                return Err("name: must not be empty".into());
            }
            Ok(())
        }

        async fn bind(self) -> anyhow::Result<Self::Bound> {
            anyhow::bail!("not bound in these tests")
        }
    }

    struct Unused;

    impl crate::Connector for Unused {
        fn info(&self) -> crate::ConnectorInfo {
            crate::ConnectorInfo::new("unused", "0")
        }

        async fn start(&self, _transfer: crate::Transfer, _events: crate::TransferEvents) {}
    }

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn an_old_style_file_and_a_new_style_file_give_the_same_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = file(
            dir.path(),
            "old.toml",
            "name = \"x\"\nlisten = \"0.0.0.0:50061\"\nhealth_listen = \"0.0.0.0:50050\"\n\
             http_listen = \"0.0.0.0:8080\"\npublic_url = \"https://x.example\"\n\
             data_dir = \"/var/lib/x\"\ndrain_timeout = \"5s\"\n\n[http]\nmax_connections = 7\n",
        );
        let new = file(
            dir.path(),
            "new.toml",
            "name = \"x\"\n\n[server]\ngrpc_listen = \"0.0.0.0:50061\"\n\
             health_listen = \"0.0.0.0:50050\"\nhttp_listen = \"0.0.0.0:8080\"\n\
             public_url = \"https://x.example\"\ndrain_timeout = \"5s\"\n\n\
             [server.http]\nmax_connections = 7\n\n[store]\ndata_dir = \"/var/lib/x\"\n",
        );
        let (from_old, moved) = load::<SampleConfig>(Some(&old)).expect("old file");
        let (from_new, none) = load::<SampleConfig>(Some(&new)).expect("new file");
        assert_eq!(format!("{from_old:?}"), format!("{from_new:?}"));
        assert!(none.is_empty(), "{none:?}");
        let moved: Vec<_> = moved.iter().map(|key| key.from).collect();
        assert_eq!(
            moved,
            [
                "listen",
                "health_listen",
                "drain_timeout",
                "http_listen",
                "public_url",
                "http",
                "data_dir"
            ]
        );
        assert_eq!(
            from_new.server.grpc_listen,
            "0.0.0.0:50061".parse().expect("addr")
        );
        assert_eq!(from_new.server.http.max_connections, 7);
        assert_eq!(from_new.store.data_dir, Some(PathBuf::from("/var/lib/x")));
    }

    #[test]
    fn the_queues_old_grpc_listen_is_read_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = file(dir.path(), "old.toml", "grpc_listen = \"0.0.0.0:50071\"\n");
        let (config, _) = load::<SampleConfig>(Some(&old)).expect("old file");
        assert_eq!(
            config.server.grpc_listen,
            "0.0.0.0:50071".parse().expect("addr")
        );
        // Every other key keeps the connector's default.
        assert_eq!(config.server.http_listen, Some(loopback(8097)));
        assert_eq!(config.store.data_dir, Some(PathBuf::from(".baton/sample")));
    }

    #[test]
    fn check_file_names_the_offending_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let misspelt = file(
            dir.path(),
            "misspelt.toml",
            "[server]\ngrpc_lisen = \"x\"\n",
        );
        let error = check_file::<SampleConfig>(&misspelt).expect_err("refused");
        assert!(error.contains("grpc_lisen"), "{error}");
        let empty_name = file(dir.path(), "empty.toml", "name = \"\"\n");
        let error = check_file::<SampleConfig>(&empty_name).expect_err("refused");
        assert!(error.starts_with("name:"), "{error}");
        let limits = file(
            dir.path(),
            "limits.toml",
            "[server.grpc]\nmax_connections = 0\n",
        );
        let error = check_file::<SampleConfig>(&limits).expect_err("refused");
        assert!(error.starts_with("server.grpc.max_connections"), "{error}");
        let fine = file(dir.path(), "fine.toml", "name = \"y\"\n");
        assert_eq!(check_file::<SampleConfig>(&fine), Ok(()));
    }

    #[test]
    fn the_help_names_every_shared_flag() {
        let help = Cli::<NoFlags>::command().render_help().to_string();
        for flag in [
            "--config",
            "--listen",
            "--grpc-listen",
            "--health-listen",
            "--http-listen",
            "--data-dir",
        ] {
            assert!(help.contains(flag), "{flag} missing from {help}");
        }
    }
}
