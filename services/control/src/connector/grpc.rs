//! The [`ConnectorPort`] over gRPC: `baton.connector.v1.ConnectorService`
//! and `grpc.health.v1` on one lazily connecting channel. The only place
//! in the control service that speaks tonic to a connector, and where its
//! statuses become the port's words.

use std::time::Duration;

use async_trait::async_trait;
use baton_proto::connector::v1 as wire;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{
    AvailabilityQuery, CancelOutcome, ConnectorInfo, ConnectorPort, Reach, StartRefused,
    StreamError, TransferContext, TransferEvent, TransferEventKind, TransferEvents,
    TransferRequest, TransferUpdate, UpdateOutcome,
};
use crate::convert::envelope::build_envelope;
use crate::convert::types;
use crate::domain::availability::TargetAvailability;

/// One connector's gRPC client.
#[derive(Debug, Clone)]
pub struct GrpcConnector {
    channel: Channel,
    /// Bounds every unary call (health, info, cancel). StartTransfer's
    /// acceptance is timed by the dispatcher, and its stream lives as long
    /// as the transfer.
    call_timeout: Duration,
}

impl GrpcConnector {
    pub fn new(channel: Channel, call_timeout: Duration) -> Self {
        Self {
            channel,
            call_timeout,
        }
    }

    fn client(&self) -> ConnectorServiceClient<Channel> {
        ConnectorServiceClient::new(self.channel.clone())
    }

    /// A unary request with the call timeout, as `grpc-timeout` too.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.call_timeout);
        request
    }

    /// The answer of a transfer's unary call within the call timeout, or
    /// why there is none (the status code and message).
    async fn answer<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        tokio::time::timeout(self.call_timeout, call)
            .await
            .map_err(|_| "no answer".to_owned())?
            .map(tonic::Response::into_inner)
            .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
    }
}

#[async_trait]
impl ConnectorPort for GrpcConnector {
    async fn health(&self) -> Result<(), String> {
        let mut health = HealthClient::new(self.channel.clone());
        let request = self.request(HealthCheckRequest {
            service: String::new(),
        });
        let status = tokio::time::timeout(self.call_timeout, health.check(request))
            .await
            .map_err(|_| "health check timed out".to_owned())?
            .map_err(|status| status.message().to_owned())?
            .into_inner()
            .status();
        if status != ServingStatus::Serving {
            return Err(format!("health is {status:?}"));
        }
        Ok(())
    }

    async fn info(&self) -> Result<ConnectorInfo, String> {
        let request = self.request(wire::GetConnectorInfoRequest {});
        let info =
            tokio::time::timeout(self.call_timeout, self.client().get_connector_info(request))
                .await
                .map_err(|_| "GetConnectorInfo timed out".to_owned())?
                .map_err(|status| status.message().to_owned())?
                .into_inner();
        Ok(ConnectorInfo {
            target_kinds: info
                .target_kinds()
                .filter_map(types::target_kind_from)
                .collect(),
            transfer_modes: info
                .transfer_modes()
                .filter(|mode| *mode != baton_proto::types::v1::TransferMode::Unspecified)
                .map(types::mode_from)
                .collect(),
            context_capabilities: info
                .context_capabilities
                .iter()
                .filter_map(types::capability_from)
                .collect(),
            context_updates: info.context_updates,
            availability: info.availability,
            callbacks: info.callbacks,
            version: info.version,
        })
    }

    async fn start_transfer(
        &self,
        request: TransferRequest,
    ) -> Result<TransferEvents, StartRefused> {
        let context = &request.context;
        let envelope = envelope_of(context);
        let message = wire::StartTransferRequest {
            handoff_id: request.handoff_id,
            attempt: request.attempt,
            target: Some(types::target(&request.target)),
            mode: types::mode(request.mode) as i32,
            envelope: Some(envelope),
            deadline: Some(crate::convert::timestamp_of(request.deadline_ms)),
            tenant: request.tenant,
            disclosure: Some(super::disclosure::disclosure(&context.disclosure)),
            callback: request.callback.as_ref().map(types::callback),
        };
        // No grpc-timeout: it would end the whole stream, which lives as
        // long as the transfer.
        let mut request = tonic::Request::new(message);
        baton_service_kit::telemetry::inject_traceparent(request.metadata_mut());
        let stream = match self.client().start_transfer(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let detail = status.message().to_owned();
                return Err(match status.code() {
                    tonic::Code::Unimplemented | tonic::Code::InvalidArgument => {
                        StartRefused::Unsupported(detail)
                    }
                    _ => StartRefused::Unavailable {
                        detail,
                        reach: reach_of(&status),
                    },
                });
            }
        };
        Ok(Box::pin(stream.map(|next| match next {
            Ok(message) => Ok(event_of(message)),
            // Bytes that do not decode as the contract's messages.
            Err(status) if status.code() == tonic::Code::Internal => {
                Err(StreamError::Malformed(status.message().to_owned()))
            }
            Err(status) => Err(StreamError::Broken(status.message().to_owned())),
        })))
    }

    async fn cancel_transfer(
        &self,
        tenant: &str,
        handoff_id: &str,
        attempt: u32,
    ) -> Result<CancelOutcome, String> {
        let request = self.request(wire::CancelTransferRequest {
            handoff_id: handoff_id.to_owned(),
            attempt,
            tenant: tenant.to_owned(),
        });
        let response = self.answer(self.client().cancel_transfer(request)).await?;
        Ok(match response.outcome() {
            wire::CancelOutcome::Cancelled => CancelOutcome::Cancelled,
            wire::CancelOutcome::AlreadyEnded => CancelOutcome::AlreadyEnded,
            wire::CancelOutcome::Unknown => CancelOutcome::Unknown,
            wire::CancelOutcome::Unspecified => CancelOutcome::Unstated {
                cancelled: response.cancelled,
            },
        })
    }

    async fn update_transfer(&self, update: TransferUpdate) -> Result<UpdateOutcome, String> {
        // Fitted exactly as StartTransfer's envelope.
        let envelope = envelope_of(&update.context);
        let mut request = self.request(wire::UpdateTransferRequest {
            handoff_id: update.handoff_id,
            attempt: update.attempt,
            tenant: update.tenant,
            envelope: Some(envelope),
            context_version: update.context_version,
        });
        baton_service_kit::telemetry::inject_traceparent(request.metadata_mut());
        let response = self.answer(self.client().update_transfer(request)).await?;
        Ok(match response.outcome() {
            wire::UpdateOutcome::Applied => UpdateOutcome::Applied,
            wire::UpdateOutcome::Stale => UpdateOutcome::Stale,
            wire::UpdateOutcome::AlreadyEnded => UpdateOutcome::AlreadyEnded,
            wire::UpdateOutcome::Unknown => UpdateOutcome::Unknown,
            wire::UpdateOutcome::Unspecified => UpdateOutcome::Unstated,
        })
    }

    async fn availability(&self, query: AvailabilityQuery) -> Result<TargetAvailability, String> {
        let message = wire::GetAvailabilityRequest {
            target: Some(types::target(&query.target)),
            tenant: query.tenant,
            language: query.language,
            channel: types::channel(query.channel) as i32,
        };
        let answer = self
            .answer(self.client().get_availability(self.request(message)))
            .await?;
        answer
            .availability
            .ok_or_else(|| "GetAvailability answered without availability".to_owned())
            .and_then(types::availability_from)
    }

    async fn converse(
        &self,
        open: super::chat::RelayOpen,
        outbound: tokio::sync::mpsc::Receiver<super::chat::ToConnector>,
    ) -> Result<super::chat::FromConnectorStream, super::chat::RelayRefused> {
        super::chat::converse_over_grpc(self.client(), open, outbound).await
    }
}

/// A transfer event in the port's words.
fn event_of(message: wire::StartTransferResponse) -> TransferEvent {
    use wire::TransferEventKind as Wire;
    let kind = match Wire::try_from(message.kind) {
        Ok(Wire::Queued) => TransferEventKind::Queued,
        Ok(Wire::Offered) => TransferEventKind::Offered,
        Ok(Wire::Ringing) => TransferEventKind::Ringing,
        Ok(Wire::Answered) => TransferEventKind::Answered,
        Ok(Wire::ContextDelivered) => TransferEventKind::ContextDelivered,
        Ok(Wire::Connected) => TransferEventKind::Connected,
        Ok(Wire::Completed) => TransferEventKind::Completed,
        Ok(Wire::Failed) => TransferEventKind::Failed,
        Ok(Wire::Cancelled) => TransferEventKind::Cancelled,
        Ok(Wire::HandedBack) => TransferEventKind::HandedBack,
        Ok(Wire::Consulting) => TransferEventKind::Consulting,
        Ok(Wire::ConsultAccepted) => TransferEventKind::ConsultAccepted,
        Ok(Wire::ConsultDeclined) => TransferEventKind::ConsultDeclined,
        Ok(Wire::CallbackDialing) => TransferEventKind::CallbackDialing,
        Ok(Wire::Unspecified) => TransferEventKind::Unspecified,
        Err(_) => TransferEventKind::Unknown(message.kind),
    };
    TransferEvent {
        // An unknown reason counts as none: the dispatcher reads it as a
        // connector error.
        failure_reason: types::failure_reason_from(message.failure_reason),
        estimated_wait: message
            .estimated_wait
            .and_then(|wait| Duration::try_from(wait).ok()),
        run_id: message.run_id,
        sequence: message.sequence,
        kind,
        detail: message.detail,
        queue_position: message.queue_position,
        wrap_up: message.wrap_up.map(types::wrap_up_from),
    }
}

/// A transfer's context fitted to the connector's capabilities: the one
/// envelope of StartTransfer and UpdateTransfer alike.
fn envelope_of(context: &TransferContext) -> wire::ContextEnvelope {
    build_envelope(
        &context.reference,
        &context.conversation,
        &context.context,
        &context.withheld,
        &context.capabilities,
    )
}

/// How far a StartTransfer that failed before its stream began got. A
/// status the connector sent itself (no transport error behind it) is its
/// refusal; a refused connection never reached it; any other transport
/// failure may have reached it after it took the transfer.
fn reach_of(status: &tonic::Status) -> Reach {
    let Some(source) = std::error::Error::source(status) else {
        return Reach::Refused;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Reach::Refused;
        }
        cause = error.source();
    }
    Reach::Sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_the_connector_sent_is_a_refusal() {
        assert_eq!(
            reach_of(&tonic::Status::unavailable("draining")),
            Reach::Refused
        );
    }

    #[test]
    fn wire_events_keep_their_place_and_unknown_kinds_their_number() {
        let event = event_of(wire::StartTransferResponse {
            sequence: 3,
            kind: 42,
            run_id: "run-1".into(),
            failure_reason: 9999,
            ..Default::default()
        });
        assert_eq!(event.kind, TransferEventKind::Unknown(42));
        assert_eq!((event.run_id.as_str(), event.sequence), ("run-1", 3));
        assert_eq!(
            event.failure_reason,
            crate::domain::FailureReason::Unspecified
        );

        let queued = event_of(wire::StartTransferResponse {
            sequence: 1,
            kind: wire::TransferEventKind::Queued as i32,
            queue_position: 2,
            estimated_wait: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
            ..Default::default()
        });
        assert_eq!(queued.kind, TransferEventKind::Queued);
        assert_eq!(queued.queue_position, 2);
        assert_eq!(queued.estimated_wait, Some(Duration::from_secs(30)));
    }
}
