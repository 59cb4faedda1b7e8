//! The configuration sections every connector shares, shaped like the
//! control service's: `[server]` (its listeners, their limits and the
//! drain at shutdown) and `[store]` (its state directory), beside
//! `[telemetry]` and `[tls]` (the service kit's types). A connector's
//! configuration type holds these four, and its own keys beside them:
//!
//! ```toml
//! [server]
//! grpc_listen = "0.0.0.0:50062"
//! health_listen = "0.0.0.0:50050"
//! drain_timeout = "30s"
//!
//! [store]
//! data_dir = "/var/lib/baton-sip"
//!
//! [telemetry]
//! log_format = "json"
//!
//! [sip]            # the SIP connector's own keys
//! bind = "0.0.0.0:5060"
//! ```
//!
//! Files written for earlier releases put some of these keys at the top
//! level (`listen`, `grpc_listen`, `http_listen`, `data_dir`…); [`crate::run`]
//! still reads them there (see [`MOVED_KEYS`]) and logs a deprecation
//! warning naming the new key.

use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use baton_service_kit::config::MovedKey;
use baton_service_kit::grpc::GrpcLimits;
use baton_service_kit::http::HttpLimits;
use serde::Deserialize;

/// What tells one connector's shared sections from another's: default
/// ports and directories, so that every connector runs beside the others
/// on one host with no configuration file at all. Implemented by the
/// connector's configuration type.
pub trait ConnectorDefaults {
    /// `server.grpc_listen` when the file names none.
    const GRPC_LISTEN: SocketAddr;
    /// `server.http_listen` when the file names none, for a connector that
    /// serves HTTP. `None` (the default) for one that does not: it refuses
    /// `server.http_listen`, `server.public_url` and `server.http`.
    const HTTP_LISTEN: Option<SocketAddr> = None;
    /// `server.drain_timeout` when the file names none. Default 30 s.
    const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
    /// `store.data_dir` when the file names none; `None` (the default)
    /// keeps transfers in memory only.
    const DATA_DIR: Option<&'static str> = None;
}

/// `127.0.0.1:port`, for [`ConnectorDefaults`]' constants.
pub const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// The keys that moved into `[server]` and `[store]`, from where files of
/// earlier releases put them (the top level).
pub const MOVED_KEYS: &[MovedKey] = &[
    MovedKey {
        from: "listen",
        to: "server.grpc_listen",
    },
    MovedKey {
        from: "grpc_listen",
        to: "server.grpc_listen",
    },
    MovedKey {
        from: "health_listen",
        to: "server.health_listen",
    },
    MovedKey {
        from: "drain_timeout",
        to: "server.drain_timeout",
    },
    MovedKey {
        from: "http_listen",
        to: "server.http_listen",
    },
    MovedKey {
        from: "public_url",
        to: "server.public_url",
    },
    MovedKey {
        from: "http",
        to: "server.http",
    },
    MovedKey {
        from: "data_dir",
        to: "store.data_dir",
    },
];

/// `[server]`: where the connector listens, with which limits, and how
/// long it drains at shutdown. `D` (the connector's configuration type)
/// gives the defaults that differ between connectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    bound(deserialize = "D: ConnectorDefaults")
)]
pub struct ServerConfig<D> {
    /// gRPC listen address of the connector service (ConnectorService,
    /// health, reflection); port 0 picks a free port, announced as `grpc`
    /// in the readiness line. Default: the connector's own port on
    /// loopback (see its README).
    pub grpc_listen: SocketAddr,
    /// A plain-text listener serving only `grpc.health.v1`, for probes that
    /// cannot speak TLS (Kubernetes' gRPC probes), announced as `health`.
    /// Off when unset.
    pub health_listen: Option<SocketAddr>,
    /// On SIGTERM, how long running transfers may go on (new ones are
    /// refused) before the process exits; those still running are handed
    /// to the next process through the transfer journal (`store.data_dir`),
    /// never cancelled. Default `30s` (the script connector: `0s`).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Connection limit and keepalive of the gRPC listener
    /// (`max_connections` 1024, `keepalive_interval` 30s,
    /// `keepalive_timeout` 10s).
    pub grpc: GrpcLimits,
    /// HTTP listen address, for a connector that serves HTTP (the queue's
    /// agent desktop, the webhook connector's delivery log and reports);
    /// announced as `http`. Default: the connector's own port on loopback.
    /// Refused by a connector without HTTP.
    pub http_listen: Option<SocketAddr>,
    /// The URL others reach the HTTP listener at (through a proxy or an
    /// Ingress). Default: `http://` (`https://` with `[tls]`) and the bound
    /// address.
    pub public_url: Option<String>,
    /// Timeouts and connection limit of the HTTP listener
    /// (`header_read_timeout` 10s, `idle_timeout` 60s, `request_timeout`
    /// 30s, `max_connections` 1024).
    pub http: HttpLimits,
    /// The tenants whose transfers this connector takes: a connector
    /// dedicated to some tenants refuses any other's StartTransfer (and
    /// CancelTransfer) with INVALID_ARGUMENT naming `tenant`, before the
    /// connector sees it. Empty (the default): shared by every tenant.
    pub tenants: Vec<String>,
    #[serde(skip)]
    defaults: PhantomData<fn() -> D>,
}

impl<D: ConnectorDefaults> Default for ServerConfig<D> {
    fn default() -> Self {
        Self {
            grpc_listen: D::GRPC_LISTEN,
            health_listen: None,
            drain_timeout: D::DRAIN_TIMEOUT,
            grpc: GrpcLimits::default(),
            http_listen: D::HTTP_LISTEN,
            public_url: None,
            http: HttpLimits::default(),
            tenants: Vec::new(),
            defaults: PhantomData,
        }
    }
}

impl<D: ConnectorDefaults> ServerConfig<D> {
    /// Checks what serde cannot; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        self.grpc.check("server.grpc")?;
        // A tenant id as the control service's principals carry it.
        if let Some(i) = self
            .tenants
            .iter()
            .position(|t| t.is_empty() || t.len() > 128 || t.chars().any(char::is_control))
        {
            return Err(format!(
                "server.tenants[{i}]: a tenant id is 1 to 128 bytes without control characters"
            ));
        }
        if D::HTTP_LISTEN.is_some() {
            return self.http.check("server.http");
        }
        let http_keys = [
            ("http_listen", self.http_listen.is_some()),
            ("public_url", self.public_url.is_some()),
            ("http", self.http != HttpLimits::default()),
        ];
        match http_keys.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!(
                "server.{key}: this connector serves no HTTP; remove the key"
            )),
            None => Ok(()),
        }
    }

    /// The HTTP listen address of a connector that serves HTTP.
    pub fn http_listen(&self) -> Result<SocketAddr, String> {
        self.http_listen
            .ok_or_else(|| "server.http_listen: required by this connector".to_owned())
    }
}

/// `[store]`: where the connector keeps what outlives its process.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    bound(deserialize = "D: ConnectorDefaults")
)]
pub struct StoreConfig<D> {
    /// State directory: the SDK's transfer journal
    /// ([`crate::TRANSFER_JOURNAL`]), so that a restarted connector replays
    /// the transfers that ended and never delivers one a second time, and
    /// the connector's own files (the queue's database). One process per
    /// directory. Default: the connector's (e.g. `.baton/queue`); none for
    /// the SIP and script connectors, which then keep transfers in memory
    /// only.
    pub data_dir: Option<PathBuf>,
    #[serde(skip)]
    defaults: PhantomData<fn() -> D>,
}

impl<D: ConnectorDefaults> Default for StoreConfig<D> {
    fn default() -> Self {
        Self::at(D::DATA_DIR.map(PathBuf::from))
    }
}

impl<D> StoreConfig<D> {
    /// The state directory `data_dir` (none: in memory only).
    pub fn at(data_dir: Option<PathBuf>) -> Self {
        Self {
            data_dir,
            defaults: PhantomData,
        }
    }

    /// The transfer journal's file, in `data_dir`.
    pub fn journal(&self) -> Option<PathBuf> {
        self.data_dir
            .as_ref()
            .map(|dir| dir.join(crate::TRANSFER_JOURNAL))
    }

    /// The state directory of a connector that cannot work without one.
    pub fn required_data_dir(&self) -> Result<&std::path::Path, String> {
        self.data_dir
            .as_deref()
            .ok_or_else(|| "store.data_dir: required by this connector".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    struct Plain;

    impl ConnectorDefaults for Plain {
        const GRPC_LISTEN: SocketAddr = loopback(50099);
    }

    #[derive(Debug, Clone)]
    struct WithHttp;

    impl ConnectorDefaults for WithHttp {
        const GRPC_LISTEN: SocketAddr = loopback(50098);
        const HTTP_LISTEN: Option<SocketAddr> = Some(loopback(8099));
        const DRAIN_TIMEOUT: Duration = Duration::ZERO;
        const DATA_DIR: Option<&'static str> = Some(".baton/with-http");
    }

    #[test]
    fn a_partial_section_keeps_the_connectors_defaults() {
        let server: ServerConfig<WithHttp> =
            toml::from_str("health_listen = \"0.0.0.0:50050\"").expect("parses");
        assert_eq!(server.grpc_listen, loopback(50098));
        assert_eq!(server.http_listen, Some(loopback(8099)));
        assert_eq!(server.drain_timeout, Duration::ZERO);
        assert_eq!(
            server.health_listen,
            Some("0.0.0.0:50050".parse().expect("addr"))
        );
        let store = StoreConfig::<WithHttp>::default();
        assert_eq!(
            store.journal(),
            Some(PathBuf::from(".baton/with-http/transfers.sqlite3"))
        );
        assert_eq!(StoreConfig::<Plain>::default().journal(), None);
    }

    #[test]
    fn a_connector_without_http_refuses_the_http_keys() {
        let server: ServerConfig<Plain> =
            toml::from_str("http_listen = \"127.0.0.1:0\"").expect("parses");
        let error = server.check().expect_err("refused");
        assert!(error.starts_with("server.http_listen:"), "{error}");
        let server: ServerConfig<Plain> =
            toml::from_str("[http]\nmax_connections = 5").expect("parses");
        let error = server.check().expect_err("refused");
        assert!(error.starts_with("server.http:"), "{error}");
        assert_eq!(ServerConfig::<Plain>::default().check(), Ok(()));
        let server: ServerConfig<WithHttp> =
            toml::from_str("[http]\nmax_connections = 0").expect("parses");
        let error = server.check().expect_err("refused");
        assert!(error.starts_with("server.http.max_connections"), "{error}");
    }

    #[test]
    fn a_connector_is_shared_unless_dedicated_to_valid_tenant_ids() {
        assert!(ServerConfig::<Plain>::default().tenants.is_empty());
        let server: ServerConfig<Plain> =
            toml::from_str("tenants = [\"acme\", \"globex\"]").expect("parses");
        assert_eq!(server.tenants, ["acme", "globex"]);
        assert_eq!(server.check(), Ok(()));
        let server: ServerConfig<Plain> =
            toml::from_str("tenants = [\"acme\", \"\"]").expect("parses");
        let error = server.check().expect_err("refused");
        assert!(error.starts_with("server.tenants[1]:"), "{error}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error =
            toml::from_str::<ServerConfig<Plain>>("listen = \"127.0.0.1:0\"").expect_err("refused");
        assert!(error.to_string().contains("listen"), "{error}");
    }
}
