//! The connector registry: one gRPC client per configured connector, with
//! its capabilities fetched at start and again on every dispatch, so that a
//! target kind a connector does not serve is a clear error, not a hang.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{GetConnectorInfoRequest, GetConnectorInfoResponse};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::config::ConnectorConfig;

/// Why a connector cannot take a transfer now.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorUnavailable {
    #[error("no connector named {0:?} is configured")]
    Unknown(String),
    #[error("connector {name:?} is not serving: {detail}")]
    NotServing { name: String, detail: String },
}

#[derive(Debug, Clone)]
pub struct ConnectorHandle {
    pub name: String,
    pub endpoint: String,
    channel: Channel,
    call_timeout: Duration,
}

impl ConnectorHandle {
    pub fn client(&self) -> ConnectorServiceClient<Channel> {
        ConnectorServiceClient::new(self.channel.clone())
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Checks `grpc.health.v1` and fetches the connector's capabilities.
    pub async fn check(&self) -> Result<GetConnectorInfoResponse, ConnectorUnavailable> {
        let not_serving = |detail: String| ConnectorUnavailable::NotServing {
            name: self.name.clone(),
            detail,
        };
        let mut health = HealthClient::new(self.channel.clone());
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        request.set_timeout(self.call_timeout);
        let status = tokio::time::timeout(self.call_timeout, health.check(request))
            .await
            .map_err(|_| not_serving("health check timed out".into()))?
            .map_err(|status| not_serving(status.message().to_owned()))?
            .into_inner()
            .status();
        if status != ServingStatus::Serving {
            return Err(not_serving(format!("health is {status:?}")));
        }
        let mut request = tonic::Request::new(GetConnectorInfoRequest {});
        request.set_timeout(self.call_timeout);
        let info =
            tokio::time::timeout(self.call_timeout, self.client().get_connector_info(request))
                .await
                .map_err(|_| not_serving("GetConnectorInfo timed out".into()))?
                .map_err(|status| not_serving(status.message().to_owned()))?;
        Ok(info.into_inner())
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConnectorRegistry {
    connectors: BTreeMap<String, ConnectorHandle>,
}

impl ConnectorRegistry {
    /// Builds lazily connecting clients; nothing is dialled until used.
    pub fn new(config: &BTreeMap<String, ConnectorConfig>) -> Result<Self, String> {
        let mut connectors = BTreeMap::new();
        for (name, connector) in config {
            let endpoint = Endpoint::from_shared(connector.endpoint.clone())
                .map_err(|e| format!("connectors.{name}.endpoint: {e}"))?
                .connect_timeout(connector.call_timeout)
                .tcp_nodelay(true);
            connectors.insert(
                name.clone(),
                ConnectorHandle {
                    name: name.clone(),
                    endpoint: connector.endpoint.clone(),
                    channel: endpoint.connect_lazy(),
                    call_timeout: connector.call_timeout,
                },
            );
        }
        Ok(Self { connectors })
    }

    pub fn names(&self) -> Vec<&str> {
        self.connectors.keys().map(String::as_str).collect()
    }

    pub fn get(&self, name: &str) -> Result<&ConnectorHandle, ConnectorUnavailable> {
        self.connectors
            .get(name)
            .ok_or_else(|| ConnectorUnavailable::Unknown(name.to_owned()))
    }

    /// Logs each connector's capabilities, or why it cannot be reached yet.
    /// A connector that is down at start is not fatal: it is checked again
    /// on every dispatch.
    pub async fn log_capabilities(&self) {
        for handle in self.connectors.values() {
            match handle.check().await {
                Ok(info) => tracing::info!(
                    connector = %handle.name,
                    endpoint = %handle.endpoint,
                    version = %info.version,
                    target_kinds = ?info.target_kinds(),
                    "connector ready"
                ),
                Err(error) => {
                    tracing::warn!(connector = %handle.name, %error, "connector not ready")
                }
            }
        }
    }
}
