//! The connector registry: one [`Connector`] per configured connector,
//! each over a [`GrpcConnector`], found by name. Health and capabilities
//! are fetched at start (logged) and checked before every dispatch, so
//! that a target kind a connector does not serve is a clear error, not a
//! hang.
//!
//! An `https://` endpoint is dialled with TLS: the connector's own `tls`
//! or the global `connector_tls` (the CA to trust and, for mTLS, this
//! service's client certificate). The files are read when the registry is
//! built, at start; [`ConnectorRegistry::check_config`] checks everything
//! else without touching the disk, for `baton config check`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::transport::Endpoint;

use baton_service_kit::tls::ClientTlsFiles;

use super::grpc::GrpcConnector;
use super::{Connector, ConnectorUnavailable};
use crate::config::ConnectorConfig;

#[derive(Debug, Clone, Default)]
pub struct ConnectorRegistry {
    connectors: BTreeMap<String, Connector>,
}

impl ConnectorRegistry {
    /// Checks endpoints and TLS settings without reading any file; the
    /// error names the key.
    pub fn check_config(
        config: &BTreeMap<String, ConnectorConfig>,
        connector_tls: Option<&ClientTlsFiles>,
    ) -> Result<(), String> {
        if let Some(files) = connector_tls {
            check_pair(files).map_err(|e| format!("connector_tls.{e}"))?;
        }
        for (name, connector) in config {
            Self::tls_of(name, connector, connector_tls)?;
        }
        Ok(())
    }

    /// The endpoint and the client TLS settings a connector is dialled
    /// with (`None`: plain text).
    fn tls_of<'a>(
        name: &str,
        connector: &'a ConnectorConfig,
        connector_tls: Option<&'a ClientTlsFiles>,
    ) -> Result<(Endpoint, Option<TlsSource<'a>>), String> {
        let endpoint = Endpoint::from_shared(connector.endpoint.clone())
            .map_err(|e| format!("connectors.{name}.endpoint: {e}"))?;
        if let Some(files) = &connector.tls {
            check_pair(files).map_err(|e| format!("connectors.{name}.tls.{e}"))?;
        }
        match endpoint.uri().scheme_str() {
            Some("https") => match (&connector.tls, connector_tls) {
                (Some(files), _) => Ok((endpoint, Some(TlsSource::Own(files)))),
                (None, Some(files)) => Ok((endpoint, Some(TlsSource::Global(files)))),
                (None, None) => Err(format!(
                    "connectors.{name}.tls: an https:// endpoint needs connectors.{name}.tls \
                     or connector_tls (the CA that signs the connector's certificate)"
                )),
            },
            Some("http") if connector.tls.is_some() => Err(format!(
                "connectors.{name}.endpoint: connectors.{name}.tls is set, so the endpoint \
                 must be https://"
            )),
            Some("http") => Ok((endpoint, None)),
            _ => Err(format!(
                "connectors.{name}.endpoint: must start with http:// or https://"
            )),
        }
    }

    /// Builds lazily connecting clients; nothing is dialled until used.
    /// Reads the client TLS files.
    pub fn new(
        config: &BTreeMap<String, ConnectorConfig>,
        connector_tls: Option<&ClientTlsFiles>,
    ) -> Result<Self, String> {
        Self::check_config(config, connector_tls)?;
        let mut connectors = BTreeMap::new();
        for (name, connector) in config {
            let (endpoint, tls) = Self::tls_of(name, connector, connector_tls)?;
            let mut endpoint = endpoint
                .connect_timeout(connector.call_timeout)
                .tcp_nodelay(true);
            if let Some(tls) = tls {
                let (files, key) = match tls {
                    TlsSource::Own(files) => (files, format!("connectors.{name}.")),
                    TlsSource::Global(files) => (files, "connector_".to_owned()),
                };
                let tls = files.tonic_config().map_err(|e| format!("{key}{e}"))?;
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|e| format!("{key}tls: {e}"))?;
            }
            let port = GrpcConnector::new(endpoint.connect_lazy(), connector.call_timeout);
            connectors.insert(
                name.clone(),
                Connector::new(name, &connector.endpoint, Arc::new(port)),
            );
        }
        Ok(Self { connectors })
    }

    /// A registry of connectors built elsewhere (in-memory ports in tests).
    pub fn from_connectors(connectors: impl IntoIterator<Item = Connector>) -> Self {
        Self {
            connectors: connectors
                .into_iter()
                .map(|connector| (connector.name.clone(), connector))
                .collect(),
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.connectors.keys().map(String::as_str).collect()
    }

    pub fn get(&self, name: &str) -> Result<&Connector, ConnectorUnavailable> {
        self.connectors
            .get(name)
            .ok_or_else(|| ConnectorUnavailable::Unknown(name.to_owned()))
    }

    /// Logs each connector's capabilities, or why it cannot be reached yet.
    /// A connector that is down at start is not fatal: it is checked again
    /// on every dispatch.
    pub async fn log_capabilities(&self) {
        for connector in self.connectors.values() {
            match connector.check().await {
                Ok(info) => tracing::info!(
                    connector = %connector.name,
                    endpoint = %connector.endpoint,
                    version = %info.version,
                    target_kinds = ?info.target_kinds.iter().map(|kind| crate::convert::types::target_kind_name(*kind)).collect::<Vec<_>>(),
                    "connector ready"
                ),
                Err(error) => {
                    tracing::warn!(connector = %connector.name, %error, "connector not ready")
                }
            }
        }
    }
}

/// Where a connector's client TLS settings come from, for error messages.
enum TlsSource<'a> {
    Own(&'a ClientTlsFiles),
    Global(&'a ClientTlsFiles),
}

/// A client certificate comes with its key.
fn check_pair(files: &ClientTlsFiles) -> Result<(), String> {
    match (&files.cert_file, &files.key_file) {
        (Some(_), None) => {
            Err("key_file: required with cert_file (mTLS client certificate)".into())
        }
        (None, Some(_)) => {
            Err("cert_file: required with key_file (mTLS client certificate)".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connectors(entries: &[(&str, ConnectorConfig)]) -> BTreeMap<String, ConnectorConfig> {
        entries
            .iter()
            .map(|(name, config)| (name.to_string(), config.clone()))
            .collect()
    }

    fn files(ca: &str) -> ClientTlsFiles {
        ClientTlsFiles {
            ca_file: ca.into(),
            cert_file: None,
            key_file: None,
            server_name: None,
        }
    }

    #[test]
    fn tls_settings_are_checked_without_reading_files() {
        let plain = connectors(&[("a", ConnectorConfig::new("http://127.0.0.1:1"))]);
        ConnectorRegistry::check_config(&plain, None).expect("plain text needs nothing");

        let https = connectors(&[("a", ConnectorConfig::new("https://a:1"))]);
        let error = ConnectorRegistry::check_config(&https, None).expect_err("no CA");
        assert!(error.starts_with("connectors.a.tls:"), "{error}");
        ConnectorRegistry::check_config(&https, Some(&files("/missing/ca.pem")))
            .expect("the global CA applies; files are not read by the check");

        let mut own = ConnectorConfig::new("http://a:1");
        own.tls = Some(files("/missing/ca.pem"));
        let error = ConnectorRegistry::check_config(&connectors(&[("a", own.clone())]), None)
            .expect_err("tls with http://");
        assert!(error.starts_with("connectors.a.endpoint:"), "{error}");

        own.endpoint = "https://a:1".into();
        own.tls = Some(ClientTlsFiles {
            cert_file: Some("/c.pem".into()),
            ..files("/ca.pem")
        });
        let error = ConnectorRegistry::check_config(&connectors(&[("a", own)]), None)
            .expect_err("a certificate without its key");
        assert!(error.starts_with("connectors.a.tls.key_file:"), "{error}");

        let error = ConnectorRegistry::check_config(
            &https,
            Some(&ClientTlsFiles {
                key_file: Some("/k.pem".into()),
                ..files("/ca.pem")
            }),
        )
        .expect_err("a key without its certificate");
        assert!(error.starts_with("connector_tls.cert_file:"), "{error}");

        let error = ConnectorRegistry::check_config(
            &connectors(&[("a", ConnectorConfig::new("ftp://a:1"))]),
            None,
        )
        .expect_err("unknown scheme");
        assert!(error.starts_with("connectors.a.endpoint:"), "{error}");
    }

    #[tokio::test]
    async fn building_the_registry_reads_the_files_and_names_the_key() {
        let https = connectors(&[("a", ConnectorConfig::new("https://a:1"))]);
        let error = ConnectorRegistry::new(&https, Some(&files("/missing/ca.pem")))
            .expect_err("missing CA file");
        assert!(error.starts_with("connector_tls.ca_file:"), "{error}");

        let dir = tempfile::tempdir().expect("tempdir");
        let ca = baton_service_kit::tls::dev_ca::generate(dir.path()).expect("dev CA");
        let registry =
            ConnectorRegistry::new(&https, Some(&ca.client_files())).expect("registry with mTLS");
        assert_eq!(registry.names(), vec!["a"]);
    }
}
