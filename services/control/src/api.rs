//! `baton.handoff.v1.HandoffService` over gRPC: translates requests into
//! domain calls and domain errors into statuses, in one place.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use baton_proto::handoff::v1::handoff_service_server::HandoffService;
use baton_proto::handoff::v1::*;
use baton_service_kit::status::{FieldViolation, invalid_argument, retry_after, with_reason};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};

use crate::convert;
use crate::dispatch::Dispatcher;
use crate::domain::message::CustomerMessages;
use crate::domain::routing::Router;
use crate::domain::validate::{
    Limits, validate_cancel_reason, validate_create, validate_entity_name, validate_evaluation,
};
use baton_auth::{Principal, StreamLimiter};

use crate::domain::{EventKind, Failure, Handoff, HandoffState, NewEvent, TransferMode};
use crate::hub::EventHub;
use crate::metrics::metrics;
use crate::policy::PolicyEngine;
use crate::store::{AuditAction, AuditEntry, CreateOutcome, HandoffStore, StoreError};

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;
/// Events read from the store per catch-up query of a watch stream.
const REPLAY_BATCH: usize = 256;

/// Who is calling: the principal the auth layer put into the request
/// (with authentication off, an admin of the default tenant). A request
/// without one did not pass through the auth layer and is refused.
fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    Principal::of(request).cloned().ok_or_else(|| {
        with_reason(
            Code::Unauthenticated,
            "CREDENTIAL_MISSING",
            "the call carries no authenticated principal",
        )
    })
}

/// The tenant every query of a request is scoped to.
fn tenant_of<T>(request: &Request<T>) -> Result<String, Status> {
    caller(request).map(|principal| principal.tenant)
}

/// An audit entry of `principal` doing `action` to `handoff_id` now.
fn audit_entry(
    principal: &Principal,
    handoff_id: &str,
    action: AuditAction,
    detail: impl Into<String>,
) -> AuditEntry {
    AuditEntry {
        tenant: principal.tenant.clone(),
        handoff_id: handoff_id.to_owned(),
        action,
        actor: principal.subject.clone(),
        credential: principal.credential_id.clone(),
        time_ms: now_ms(),
        detail: detail.into(),
    }
}

/// A list request's page size: the default for 0, at most MAX_PAGE_SIZE
/// (a violation beyond).
fn page_size(requested: u32, violations: &mut Vec<FieldViolation>) -> usize {
    match requested as usize {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            violations.push(FieldViolation::new(
                "page_size",
                format!("must be at most {MAX_PAGE_SIZE}"),
            ));
            MAX_PAGE_SIZE
        }
        n => n,
    }
}

/// Where a list request resumes: nothing for an empty token, else what
/// `parse` finds in it, or a violation when it is not a token of `rpc`.
fn page_token<T>(
    token: &str,
    rpc: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    violations: &mut Vec<FieldViolation>,
) -> Option<T> {
    if token.is_empty() {
        return None;
    }
    let parsed = parse(token);
    if parsed.is_none() {
        violations.push(FieldViolation::new(
            "page_token",
            format!("is not a token from {rpc}"),
        ));
    }
    parsed
}

/// A page token of ListHandoffs: the id of the last handoff returned.
fn parse_handoff_page_token(token: &str) -> Option<String> {
    let id = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    uuid::Uuid::parse_str(&id).is_ok().then_some(id)
}

/// A page token of ListAuditRecords: the last sequence returned.
fn audit_page_token(sequence: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("a{sequence}"))
}

fn parse_audit_page_token(token: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix('a')?
        .parse()
        .ok()
}

fn audit_action_proto(action: AuditAction) -> baton_proto::handoff::v1::AuditAction {
    use baton_proto::handoff::v1::AuditAction as Proto;
    match action {
        AuditAction::Created => Proto::Created,
        AuditAction::Viewed => Proto::Viewed,
        AuditAction::Revealed => Proto::Revealed,
        AuditAction::Cancelled => Proto::Cancelled,
        AuditAction::TokensRevoked => Proto::TokensRevoked,
        AuditAction::Purged => Proto::Purged,
    }
}

/// The one mapping of store errors to statuses.
fn status_of(error: StoreError) -> Status {
    match error {
        StoreError::NotFound => {
            with_reason(Code::NotFound, "HANDOFF_NOT_FOUND", "handoff not found")
        }
        StoreError::IllegalTransition(e) => with_reason(
            Code::FailedPrecondition,
            "ILLEGAL_TRANSITION",
            e.to_string(),
        ),
        StoreError::Duplicate => with_reason(
            Code::AlreadyExists,
            "DUPLICATE_EVENT",
            "event already recorded",
        ),
        StoreError::Unavailable(detail) => {
            tracing::error!(%detail, "store unavailable");
            retry_after(
                Code::Unavailable,
                "STORE_UNAVAILABLE",
                "the handoff store is unavailable; retry",
                std::time::Duration::from_secs(1),
            )
        }
        StoreError::LeaseLost => with_reason(
            Code::Aborted,
            "LEASE_LOST",
            "another replica dispatches this handoff; retry",
        ),
        StoreError::Corrupt(detail) | StoreError::Refused(detail) => {
            tracing::error!(%detail, "stored data is corrupt");
            with_reason(
                Code::Internal,
                "STORE_CORRUPT",
                "stored data could not be read",
            )
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Ids are UUIDs; anything else cannot name a handoff.
fn parse_id(id: &str) -> Result<(), Status> {
    uuid::Uuid::parse_str(id).map(|_| ()).map_err(|_| {
        invalid_argument(&[FieldViolation::new(
            "handoff_id",
            "must be a handoff id (a UUID)",
        )])
    })
}

pub struct HandoffApi {
    pub store: Arc<dyn HandoffStore>,
    pub hub: Arc<EventHub>,
    pub dispatcher: Arc<Dispatcher>,
    pub router: Router,
    pub messages: CustomerMessages,
    pub policy: Arc<PolicyEngine>,
    pub limits: Limits,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Cancelled on shutdown, to end watch streams so the server can drain.
    pub shutdown: CancellationToken,
    /// Caps each tenant's open WatchHandoff streams.
    pub watch_streams: StreamLimiter,
}

impl std::fmt::Debug for HandoffApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandoffApi").finish_non_exhaustive()
    }
}

impl HandoffApi {
    fn new_handoff(
        &self,
        tenant: String,
        request: &CreateHandoffRequest,
    ) -> Result<Handoff, Status> {
        validate_create(request, &self.limits, self.max_timeout)
            .map_err(|v| invalid_argument(&v))?;
        let conversation = request.conversation.clone().unwrap_or_default();
        let context = request.context.clone().unwrap_or_default();
        let target = request.target.clone().unwrap_or_default();
        let intent = context
            .intent
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or_default();
        let plan = self
            .router
            .plan(&target, intent, &conversation.language)
            .map_err(|violation| invalid_argument(&[violation]))?;
        let timeout = request
            .timeout
            .and_then(|t| Duration::try_from(t).ok())
            .unwrap_or(self.default_timeout);
        let (message, language) = self.messages.for_language(&conversation.language);
        let created_at_ms = now_ms();
        Ok(Handoff {
            id: uuid::Uuid::now_v7().to_string(),
            tenant,
            request_id: request.request_id.clone(),
            request_fingerprint: hex(&Sha256::digest(request.encode_to_vec())),
            state: HandoffState::INITIAL,
            mode: TransferMode::from_proto(request.mode()),
            customer_message: message.to_owned(),
            customer_message_language: language.to_owned(),
            conversation,
            context,
            requested_target: target,
            plan,
            created_at_ms,
            updated_at_ms: created_at_ms,
            deadline_ms: created_at_ms
                .saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
            current_attempt: None,
            queue_status: None,
            failure: None,
            last_sequence: 1,
            decision: request.decision.clone(),
            wrap_up: None,
        })
    }
}

/// The request in the policy engine's terms.
fn policy_conversation(request: &EvaluateEscalationRequest) -> baton_policy::Conversation {
    use baton_policy::{AiOutcome as Outcome, Speaker as Who};
    use baton_proto::types::v1::Speaker;
    let turns = request
        .turns
        .iter()
        .map(|turn| baton_policy::Turn {
            speaker: match Speaker::try_from(turn.speaker) {
                Ok(Speaker::Ai) => Who::Ai,
                Ok(Speaker::Human) => Who::Human,
                Ok(Speaker::System) => Who::System,
                _ => Who::Customer,
            },
            text: turn.text.clone(),
            distress_score: turn.distress_score,
            ai_outcome: match AiOutcome::try_from(turn.ai_outcome) {
                Ok(AiOutcome::Resolved) => Some(Outcome::Resolved),
                Ok(AiOutcome::NotUnderstood) => Some(Outcome::NotUnderstood),
                Ok(AiOutcome::Failed) => Some(Outcome::Failed),
                _ => None,
            },
        })
        .collect();
    let signals = request.signals.unwrap_or_default();
    baton_policy::Conversation {
        language: request.language.clone(),
        intent: request.intent.as_ref().map(|i| baton_policy::Intent {
            name: i.name.clone(),
            confidence: i.confidence,
        }),
        turns,
        entity_types: request.entity_types.clone(),
        flags: baton_policy::RuntimeFlags {
            explicit_request: signals.explicit_request,
            multi_party_dispute: signals.multi_party_dispute,
            novel_scenario: signals.novel_scenario,
        },
    }
}

fn fired_trigger(fired: &baton_policy::Fired) -> FiredTrigger {
    use baton_policy::Trigger;
    use baton_proto::types::v1::EscalationKind;
    let kind = match fired.trigger {
        Trigger::ExplicitRequest => EscalationKind::ExplicitRequest,
        Trigger::Distress => EscalationKind::Distress,
        Trigger::Complexity => EscalationKind::Complexity,
        Trigger::Compliance => EscalationKind::Compliance,
        Trigger::RepeatedFailure => EscalationKind::RepeatedFailure,
    };
    FiredTrigger {
        kind: kind as i32,
        evidence: fired.evidence.clone(),
        score: fired.score.unwrap_or_default(),
        threshold: fired.threshold.unwrap_or_default(),
        count: fired.count.unwrap_or_default(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl HandoffService for HandoffApi {
    async fn create_handoff(
        &self,
        request: Request<CreateHandoffRequest>,
    ) -> Result<Response<CreateHandoffResponse>, Status> {
        let principal = caller(&request)?;
        let tenant = principal.tenant.clone();
        let request = request.into_inner();
        let handoff = self.new_handoff(tenant, &request)?;
        if self.dispatcher.room() == 0 {
            metrics().overloaded("dispatch");
            return Err(retry_after(
                Code::ResourceExhausted,
                "DISPATCH_QUEUE_FULL",
                "this replica dispatches as many handoffs as it may; retry",
                std::time::Duration::from_secs(1),
            ));
        }
        let fingerprint = handoff.request_fingerprint.clone();
        let CreateOutcome {
            handoff,
            created_event,
        } = {
            let started = std::time::Instant::now();
            let audit = audit_entry(&principal, &handoff.id, AuditAction::Created, "");
            let outcome = self
                .store
                .create(handoff, Some(audit), Some(self.dispatcher.new_lease()))
                .await
                .map_err(status_of)?;
            metrics().store_operation("create", started.elapsed());
            outcome
        };
        match &created_event {
            Some(event) => {
                tracing::Span::current().record("handoff_id", tracing::field::display(&handoff.id));
                tracing::info!(handoff_id = %handoff.id, plan_len = handoff.plan.len(), "handoff created");
                metrics().handoff_started(&handoff);
                self.hub.publish(event);
                self.dispatcher.spawn(handoff.clone());
            }
            None if handoff.request_fingerprint != fingerprint => {
                return Err(with_reason(
                    Code::AlreadyExists,
                    "REQUEST_ID_REUSED",
                    "request_id was already used for a different request",
                ));
            }
            None => {}
        }
        Ok(Response::new(CreateHandoffResponse {
            handoff: Some(convert::handoff(&handoff)),
            created: created_event.is_some(),
        }))
    }

    async fn get_handoff(
        &self,
        request: Request<GetHandoffRequest>,
    ) -> Result<Response<GetHandoffResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let id = request.into_inner().handoff_id;
        parse_id(&id)?;
        let handoff = self.store.get(&tenant, &id).await.map_err(status_of)?;
        Ok(Response::new(GetHandoffResponse {
            handoff: Some(convert::handoff(&handoff)),
        }))
    }

    async fn list_handoffs(
        &self,
        request: Request<ListHandoffsRequest>,
    ) -> Result<Response<ListHandoffsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let request = request.into_inner();
        let mut violations = Vec::new();
        let mut states = Vec::new();
        for (i, raw) in request.states.iter().enumerate() {
            match baton_proto::handoff::v1::HandoffState::try_from(*raw)
                .ok()
                .and_then(convert::state_from_proto)
            {
                Some(state) => states.push(state),
                None => violations.push(FieldViolation::new(
                    format!("states[{i}]"),
                    "is not a handoff state",
                )),
            }
        }
        let page_size = page_size(request.page_size, &mut violations);
        let after = page_token(
            &request.page_token,
            "ListHandoffs",
            parse_handoff_page_token,
            &mut violations,
        );
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        let handoffs = self
            .store
            .list(&tenant, &states, page_size + 1, after.as_deref())
            .await
            .map_err(status_of)?;
        let page = convert::handoff_page(&handoffs, page_size, self.limits.max_response_bytes)
            .map_err(|too_large| {
                with_reason(
                    Code::ResourceExhausted,
                    "RESPONSE_TOO_LARGE",
                    too_large.to_string(),
                )
            })?;
        Ok(Response::new(ListHandoffsResponse {
            next_page_token: page
                .last_id
                .map(|id| URL_SAFE_NO_PAD.encode(id))
                .unwrap_or_default(),
            handoffs: page.handoffs,
        }))
    }

    async fn cancel_handoff(
        &self,
        request: Request<CancelHandoffRequest>,
    ) -> Result<Response<CancelHandoffResponse>, Status> {
        let principal = caller(&request)?;
        let tenant = principal.tenant.clone();
        let request = request.into_inner();
        parse_id(&request.handoff_id)?;
        // The reason reaches logs, events and connectors: one line only.
        validate_cancel_reason(&request.reason, &self.limits).map_err(|v| invalid_argument(&v))?;
        let handoff = self
            .store
            .get(&tenant, &request.handoff_id)
            .await
            .map_err(status_of)?;
        match handoff.state {
            HandoffState::Cancelled => {
                return Ok(Response::new(CancelHandoffResponse {
                    handoff: Some(convert::handoff(&handoff)),
                }));
            }
            state if state.is_terminal() => {
                return Err(with_reason(
                    Code::FailedPrecondition,
                    "HANDOFF_ENDED",
                    format!("the handoff has already ended ({state:?})"),
                ));
            }
            _ => {}
        }
        let failure = Failure::new(
            baton_proto::types::v1::FailureReason::Cancelled,
            request.reason,
        );
        let event = NewEvent::new(EventKind::Cancelled).failure(failure);
        let audit = audit_entry(&principal, &handoff.id, AuditAction::Cancelled, "");
        let (cancelled, _) = self
            .dispatcher
            .record(&tenant, &request.handoff_id, event, Some(audit))
            .await
            .map_err(status_of)?;
        self.dispatcher.stop(&cancelled).await;
        Ok(Response::new(CancelHandoffResponse {
            handoff: Some(convert::handoff(&cancelled)),
        }))
    }

    async fn evaluate_escalation(
        &self,
        request: Request<EvaluateEscalationRequest>,
    ) -> Result<Response<EvaluateEscalationResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let request = request.into_inner();
        validate_evaluation(&request, &self.limits).map_err(|v| invalid_argument(&v))?;
        let policy = self.policy.for_tenant(&tenant);
        let conversation = policy_conversation(&request);
        let now = std::time::Instant::now();
        let decision = if request.whole_conversation {
            if !request.conversation_id.is_empty() {
                self.policy.states.remove(&tenant, &request.conversation_id);
            }
            baton_policy::evaluate(&policy, &conversation)
        } else {
            let states = &self.policy.states;
            let id = &request.conversation_id;
            let mut updates = conversation
                .turns
                .into_iter()
                .map(|turn| baton_policy::TurnUpdate {
                    turn,
                    language: Some(conversation.language.clone()).filter(|l| !l.is_empty()),
                    intent: conversation.intent.clone(),
                    entity_types: conversation.entity_types.clone(),
                    flags: conversation.flags,
                });
            let last = updates.next_back();
            for update in updates {
                states.append(&tenant, id, update, now);
            }
            match last {
                Some(update) => states.append_and_evaluate(&policy, &tenant, id, update, now),
                None => {
                    let mut known = states.get(&tenant, id, now).unwrap_or_default();
                    known.flags.explicit_request |= conversation.flags.explicit_request;
                    known.flags.multi_party_dispute |= conversation.flags.multi_party_dispute;
                    known.flags.novel_scenario |= conversation.flags.novel_scenario;
                    if conversation.intent.is_some() {
                        known.intent = conversation.intent.clone();
                    }
                    baton_policy::evaluate(&policy, &known)
                }
            }
        };
        if decision.escalate {
            tracing::info!(
                fired = ?decision.fired.iter().map(|f| f.trigger.as_str()).collect::<Vec<_>>(),
                "escalation advised"
            );
        }
        let customer_message = match (&decision.customer_message, decision.escalate) {
            (_, false) => String::new(),
            (Some(message), true) => message.clone(),
            (None, true) => self.messages.for_language(&request.language).0.to_owned(),
        };
        Ok(Response::new(EvaluateEscalationResponse {
            decision: Some(EscalationDecision {
                escalate: decision.escalate,
                fired: decision.fired.iter().map(fired_trigger).collect(),
                suggested_route: decision.route.clone().unwrap_or_default(),
                customer_message,
                recommendations: decision.near_misses.clone(),
            }),
        }))
    }

    async fn reveal_entity(
        &self,
        request: Request<RevealEntityRequest>,
    ) -> Result<Response<RevealEntityResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        parse_id(&request.handoff_id)?;
        let name = &request.entity_name;
        validate_entity_name(name, &self.limits).map_err(|v| invalid_argument(&v))?;
        let handoff = self
            .store
            .get(&principal.tenant, &request.handoff_id)
            .await
            .map_err(status_of)?;
        let Some(entity) = handoff.context.entities.iter().find(|e| &e.name == name) else {
            return Err(with_reason(
                Code::NotFound,
                "ENTITY_NOT_FOUND",
                "the handoff has no entity of that name (or its context was purged)",
            ));
        };
        // Recorded before the value leaves: no audit record, no value.
        let entry = audit_entry(
            &principal,
            &handoff.id,
            AuditAction::Revealed,
            format!("entity {name}"),
        );
        self.store.record_audit(entry).await.map_err(status_of)?;
        tracing::info!(handoff_id = %handoff.id, credential = %principal.credential_id, "sensitive entity revealed");
        Ok(Response::new(RevealEntityResponse {
            value: entity.value.clone(),
        }))
    }

    async fn revoke_context_tokens(
        &self,
        request: Request<RevokeContextTokensRequest>,
    ) -> Result<Response<RevokeContextTokensResponse>, Status> {
        let principal = caller(&request)?;
        let id = request.into_inner().handoff_id;
        parse_id(&id)?;
        let entry = audit_entry(&principal, &id, AuditAction::TokensRevoked, "");
        self.store
            .revoke_context_tokens(&principal.tenant, &id, entry)
            .await
            .map_err(status_of)?;
        tracing::info!(handoff_id = %id, "context tokens revoked");
        Ok(Response::new(RevokeContextTokensResponse {}))
    }

    async fn list_audit_records(
        &self,
        request: Request<ListAuditRecordsRequest>,
    ) -> Result<Response<ListAuditRecordsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let request = request.into_inner();
        let mut violations = Vec::new();
        if !request.handoff_id.is_empty() && uuid::Uuid::parse_str(&request.handoff_id).is_err() {
            violations.push(FieldViolation::new(
                "handoff_id",
                "must be a handoff id (a UUID) or empty",
            ));
        }
        let page_size = page_size(request.page_size, &mut violations);
        let before = page_token(
            &request.page_token,
            "ListAuditRecords",
            parse_audit_page_token,
            &mut violations,
        );
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        let handoff_id = Some(request.handoff_id.as_str()).filter(|id| !id.is_empty());
        let mut records = self
            .store
            .audit_log(&tenant, handoff_id, page_size + 1, before)
            .await
            .map_err(status_of)?;
        let next_page_token = if records.len() > page_size {
            records.truncate(page_size);
            records
                .last()
                .map(|r| audit_page_token(r.sequence))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListAuditRecordsResponse {
            records: records
                .into_iter()
                .map(|record| {
                    let entry = record.entry;
                    let timestamp = |ms: i64| prost_types::Timestamp {
                        seconds: ms.div_euclid(1000),
                        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or_default(),
                    };
                    AuditRecord {
                        handoff_id: entry.handoff_id,
                        action: audit_action_proto(entry.action) as i32,
                        actor: entry.actor,
                        credential: entry.credential,
                        time: Some(timestamp(entry.time_ms)),
                        detail: entry.detail,
                        count: u64::try_from(record.count).unwrap_or(1),
                        last_time: Some(timestamp(record.last_ms)),
                    }
                })
                .collect(),
            next_page_token,
        }))
    }

    type WatchHandoffStream = ReceiverStream<Result<WatchHandoffResponse, Status>>;

    async fn watch_handoff(
        &self,
        request: Request<WatchHandoffRequest>,
    ) -> Result<Response<Self::WatchHandoffStream>, Status> {
        let tenant = tenant_of(&request)?;
        let request = request.into_inner();
        parse_id(&request.handoff_id)?;
        // Sequences are stored as signed 64-bit integers.
        if i64::try_from(request.after_sequence).is_err() {
            return Err(invalid_argument(&[FieldViolation::new(
                "after_sequence",
                "must be below 2^63 (a sequence of this handoff's events)",
            )]));
        }
        let permit = self.watch_streams.try_acquire(&tenant)?;
        let Some(watch_slot) = self.hub.watch_slot() else {
            metrics().overloaded("watch");
            return Err(retry_after(
                Code::ResourceExhausted,
                "WATCH_STREAMS_FULL",
                "this replica serves as many watch streams as it may; retry",
                std::time::Duration::from_secs(1),
            ));
        };
        // Subscribe before reading the log, so that nothing recorded in
        // between is missed; duplicates are dropped by sequence.
        let live = self.hub.subscribe(&request.handoff_id);
        let handoff = match self.store.get(&tenant, &request.handoff_id).await {
            Ok(handoff) => handoff,
            Err(error) => {
                drop(live);
                self.hub.release(&request.handoff_id);
                return Err(status_of(error));
            }
        };
        let (sender, receiver) = mpsc::channel(16);
        let watch = Watch {
            store: self.store.clone(),
            tenant,
            ended: handoff.state.is_terminal(),
            handoff_id: handoff.id,
            last_sent: request.after_sequence,
            sender,
        };
        let shutdown = self.shutdown.clone();
        let hub = self.hub.clone();
        let open_stream = metrics().stream_opened();
        tokio::spawn(async move {
            let _open_stream = open_stream;
            let _permit = permit;
            let _watch_slot = watch_slot;
            let sender = watch.sender.clone();
            let handoff_id = watch.handoff_id.clone();
            tokio::select! {
                result = watch.run(live) => {
                    if let Err(status) = result {
                        let _ = sender.send(Err(status)).await;
                    }
                }
                // The caller went away while nothing happened: free its
                // slot and channel now rather than at the next event.
                () = sender.closed() => {}
                () = shutdown.cancelled() => {
                    let _ = sender
                        .send(Err(with_reason(
                            Code::Unavailable,
                            "SHUTTING_DOWN",
                            "the server is shutting down; watch again with after_sequence",
                        )))
                        .await;
                }
                // The client went away: free its stream slot now rather
                // than at the handoff's next event.
                () = sender.closed() => {}
            }
            // The live receiver is gone with the watch: free its channel.
            hub.release(&handoff_id);
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// One WatchHandoff stream: replays the log after `last_sent`, then follows
/// live events, going back to the log whenever it falls behind.
struct Watch {
    store: Arc<dyn HandoffStore>,
    tenant: String,
    handoff_id: String,
    /// The handoff had ended when the stream opened: nothing more will be
    /// recorded, so the stream ends once the log is replayed, also when
    /// `after_sequence` is at or past its last event.
    ended: bool,
    last_sent: u64,
    sender: mpsc::Sender<Result<WatchHandoffResponse, Status>>,
}

enum Progress {
    Open,
    Ended,
}

impl Watch {
    async fn run(
        mut self,
        mut live: broadcast::Receiver<crate::domain::EventRecord>,
    ) -> Result<(), Status> {
        if let Progress::Ended = self.catch_up().await? {
            return Ok(());
        }
        if self.ended {
            return Ok(());
        }
        loop {
            match live.recv().await {
                Ok(record) if record.sequence <= self.last_sent => {}
                Ok(record) if record.sequence == self.last_sent + 1 => {
                    if let Progress::Ended = self.send(&record).await {
                        return Ok(());
                    }
                }
                // A gap or a lag: the log has everything.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Progress::Ended = self.catch_up().await? {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The channel is freed after a terminal event.
                    self.catch_up().await?;
                    return Ok(());
                }
            }
        }
    }

    async fn catch_up(&mut self) -> Result<Progress, Status> {
        loop {
            let events = self
                .store
                .events_after(&self.tenant, &self.handoff_id, self.last_sent, REPLAY_BATCH)
                .await
                .map_err(status_of)?;
            let full_batch = events.len() == REPLAY_BATCH;
            for record in &events {
                if let Progress::Ended = self.send(record).await {
                    return Ok(Progress::Ended);
                }
            }
            if !full_batch {
                return Ok(Progress::Open);
            }
        }
    }

    /// Sends one event; the stream ends after a terminal one or when the
    /// client has gone.
    async fn send(&mut self, record: &crate::domain::EventRecord) -> Progress {
        self.last_sent = record.sequence;
        let response = WatchHandoffResponse {
            event: Some(convert::event(record)),
        };
        if self.sender.send(Ok(response)).await.is_err() || record.state.is_terminal() {
            Progress::Ended
        } else {
            Progress::Open
        }
    }
}
