//! `baton.handoff.v1.HandoffService` over gRPC. Each concern has its own
//! module: [`handoffs`] (create, get, list, cancel), [`escalation`]
//! (EvaluateEscalation), [`watch`] (WatchHandoff), [`audit`] (revealing
//! entities, revoking context tokens, the audit log) and [`outcomes`]
//! (RecordOutcome, GetOutcomeMetrics). This file only takes
//! the caller from the request, hands the message to its concern and turns a
//! [`ControlError`] into a status (in `crate::error`, the one place that
//! does).

mod audit;
mod availability;
mod converse;
mod escalation;
mod fields;
mod handoffs;
mod outcomes;
mod update;
mod watch;

/// Request validation, at the edge because it reads the protobuf messages;
/// from its own crate so that the fuzz target `create_request`
/// (tests/fuzz) builds without the service.
pub use baton_request_validation as validate;

use std::sync::Arc;
use std::time::Duration;

use baton_auth::{Principal, StreamLimiter};
use baton_proto::handoff::v1::handoff_service_server::HandoffService;
use baton_proto::handoff::v1::*;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::dispatch::Dispatcher;
use crate::domain::message::CustomerMessages;
use crate::domain::routing::{PerTenant, Router};
use crate::domain::validate::Limits;
use crate::error::ControlError;
use crate::hub::EventHub;
use crate::policy::PolicyEngine;
use crate::store::HandoffStore;

use self::audit::Audit;
use self::escalation::Escalation;

pub struct HandoffApi {
    pub store: Arc<dyn HandoffStore>,
    pub hub: Arc<EventHub>,
    pub dispatcher: Arc<Dispatcher>,
    /// Each tenant's routes (the shared ones for a tenant without its own).
    pub router: PerTenant<Router>,
    /// Each tenant's customer messages.
    pub messages: PerTenant<CustomerMessages>,
    pub policy: Arc<PolicyEngine>,
    pub limits: Limits,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Cancelled on shutdown, to end watch streams so the server can drain.
    pub shutdown: CancellationToken,
    /// Caps each tenant's open WatchHandoff streams.
    pub watch_streams: StreamLimiter,
    /// The chat conversations with an open stream on this replica.
    pub chat_rooms: Arc<crate::chat::ChatRooms>,
}

impl std::fmt::Debug for HandoffApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandoffApi").finish_non_exhaustive()
    }
}

impl HandoffApi {
    fn escalation(&self) -> Escalation<'_> {
        Escalation {
            policy: &self.policy,
            messages: &self.messages,
            limits: &self.limits,
        }
    }

    fn audit(&self) -> Audit<'_> {
        Audit {
            store: &*self.store,
            limits: &self.limits,
        }
    }
}

/// Who is calling: the principal the auth layer put into the request
/// (with authentication off, an admin of the default tenant). A request
/// without one did not pass through the auth layer and is refused.
fn caller<T>(request: &Request<T>) -> Result<Principal, ControlError> {
    Principal::of(request)
        .cloned()
        .ok_or(ControlError::CredentialMissing)
}

/// The tenant every query of a request is scoped to.
fn tenant_of<T>(request: &Request<T>) -> Result<String, ControlError> {
    caller(request).map(|principal| principal.tenant)
}

#[tonic::async_trait]
impl HandoffService for HandoffApi {
    async fn create_handoff(
        &self,
        request: Request<CreateHandoffRequest>,
    ) -> Result<Response<CreateHandoffResponse>, Status> {
        let principal = caller(&request)?;
        let created = self.create(&principal, request.into_inner()).await?;
        Ok(Response::new(created))
    }

    async fn get_handoff(
        &self,
        request: Request<GetHandoffRequest>,
    ) -> Result<Response<GetHandoffResponse>, Status> {
        let tenant = tenant_of(&request)?;
        Ok(Response::new(
            self.get(&tenant, request.into_inner()).await?,
        ))
    }

    async fn list_handoffs(
        &self,
        request: Request<ListHandoffsRequest>,
    ) -> Result<Response<ListHandoffsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        Ok(Response::new(
            self.list(&tenant, request.into_inner()).await?,
        ))
    }

    async fn cancel_handoff(
        &self,
        request: Request<CancelHandoffRequest>,
    ) -> Result<Response<CancelHandoffResponse>, Status> {
        let principal = caller(&request)?;
        let cancelled = self.cancel(&principal, request.into_inner()).await?;
        Ok(Response::new(cancelled))
    }

    async fn evaluate_escalation(
        &self,
        request: Request<EvaluateEscalationRequest>,
    ) -> Result<Response<EvaluateEscalationResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let decision = self
            .escalation()
            .evaluate(&tenant, request.get_ref())
            .await?;
        Ok(Response::new(decision))
    }

    async fn reveal_entity(
        &self,
        request: Request<RevealEntityRequest>,
    ) -> Result<Response<RevealEntityResponse>, Status> {
        let principal = caller(&request)?;
        let revealed = self
            .audit()
            .reveal_entity(&principal, request.into_inner())
            .await?;
        Ok(Response::new(revealed))
    }

    async fn revoke_context_tokens(
        &self,
        request: Request<RevokeContextTokensRequest>,
    ) -> Result<Response<RevokeContextTokensResponse>, Status> {
        let principal = caller(&request)?;
        let revoked = self
            .audit()
            .revoke_context_tokens(&principal, request.into_inner())
            .await?;
        Ok(Response::new(revoked))
    }

    async fn list_audit_records(
        &self,
        request: Request<ListAuditRecordsRequest>,
    ) -> Result<Response<ListAuditRecordsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let records = self
            .audit()
            .list_records(&tenant, request.into_inner())
            .await?;
        Ok(Response::new(records))
    }

    type ConverseHandoffStream = converse::ConverseStream;

    async fn converse_handoff(
        &self,
        request: Request<tonic::Streaming<ConverseHandoffRequest>>,
    ) -> Result<Response<Self::ConverseHandoffStream>, Status> {
        let tenant = tenant_of(&request)?;
        let stream = self.converse(tenant, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn check_availability(
        &self,
        request: Request<CheckAvailabilityRequest>,
    ) -> Result<Response<CheckAvailabilityResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let availability = self
            .check_availability(&tenant, request.into_inner())
            .await?;
        Ok(Response::new(availability))
    }

    async fn update_handoff(
        &self,
        request: Request<UpdateHandoffRequest>,
    ) -> Result<Response<UpdateHandoffResponse>, Status> {
        let principal = caller(&request)?;
        let updated = self.update(&principal, request.into_inner()).await?;
        Ok(Response::new(updated))
    }

    async fn record_outcome(
        &self,
        request: Request<RecordOutcomeRequest>,
    ) -> Result<Response<RecordOutcomeResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let recorded = self.record_outcome(&tenant, request.into_inner()).await?;
        Ok(Response::new(recorded))
    }

    async fn get_outcome_metrics(
        &self,
        request: Request<GetOutcomeMetricsRequest>,
    ) -> Result<Response<GetOutcomeMetricsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let metrics = self.outcome_metrics(&tenant, request.into_inner()).await?;
        Ok(Response::new(metrics))
    }

    type WatchHandoffStream = watch::WatchStream;

    async fn watch_handoff(
        &self,
        request: Request<WatchHandoffRequest>,
    ) -> Result<Response<Self::WatchHandoffStream>, Status> {
        let tenant = tenant_of(&request)?;
        let stream = self.watch(tenant, request.into_inner()).await?;
        Ok(Response::new(stream))
    }
}
