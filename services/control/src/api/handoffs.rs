//! The handoff itself: CreateHandoff, GetHandoff, ListHandoffs and
//! CancelHandoff. Creating stores the handoff with its dispatch lease and
//! hands it to dispatch; cancelling records the event and stops dispatch.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use baton_auth::Principal;
use baton_proto::handoff::v1::{
    CancelHandoffRequest, CancelHandoffResponse, CreateHandoffRequest, CreateHandoffResponse,
    GetHandoffRequest, GetHandoffResponse, ListHandoffsRequest, ListHandoffsResponse,
};
use baton_service_kit::status::FieldViolation;
use prost::Message;
use sha2::{Digest, Sha256};

use super::HandoffApi;
use super::audit;
use super::fields::{now_ms, page_size, page_token, parse_id, reject_any};
use super::validate::{validate_cancel_reason, validate_create};
use crate::convert;
use crate::domain::{EventKind, Failure, FailureReason, Handoff, HandoffState, NewEvent};
use crate::error::ControlError;
use crate::metrics::metrics;
use crate::store::{AuditAction, CreateOutcome};

impl HandoffApi {
    /// CreateHandoff: a new handoff, dispatched from here on; the stored
    /// one again for a request id already used with the same request.
    pub(super) async fn create(
        &self,
        principal: &Principal,
        request: CreateHandoffRequest,
    ) -> Result<CreateHandoffResponse, ControlError> {
        let handoff = self.new_handoff(principal.tenant.clone(), &request)?;
        if handoff.callback.is_some() {
            self.check_callbacks(&handoff).await?;
        }
        if self.dispatcher.room() == 0 {
            metrics().overloaded("dispatch");
            return Err(ControlError::DispatchQueueFull);
        }
        let fingerprint = handoff.request_fingerprint.clone();
        let CreateOutcome {
            handoff,
            created_event,
        } = {
            let started = std::time::Instant::now();
            let audit = audit::entry(principal, &handoff.id, AuditAction::Created, "");
            let outcome = self
                .store
                .create(handoff, Some(audit), Some(self.dispatcher.new_lease()))
                .await?;
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
                return Err(ControlError::RequestIdReused);
            }
            None => {}
        }
        Ok(CreateHandoffResponse {
            handoff: Some(convert::handoff(&handoff)),
            created: created_event.is_some(),
        })
    }

    /// The handoff a valid create request describes, routed and timed.
    fn new_handoff(
        &self,
        tenant: String,
        request: &CreateHandoffRequest,
    ) -> Result<Handoff, ControlError> {
        validate_create(request, &self.limits, self.max_timeout)
            .map_err(ControlError::InvalidArgument)?;
        let conversation = request.conversation.clone().unwrap_or_default();
        let context = request.context.clone().unwrap_or_default();
        let target = request.target.clone().unwrap_or_default();
        let intent = context
            .intent
            .as_ref()
            .map(|i| i.name.as_str())
            .unwrap_or_default();
        let target = convert::types::requested_target_from(target);
        let created_at_ms = now_ms();
        let callback = request.callback.as_ref().map(convert::types::callback_from);
        if let Some(callback) = &callback {
            callback.check_window(created_at_ms).map_err(|refused| {
                ControlError::InvalidArgument(vec![FieldViolation::new(
                    "callback.window_end",
                    refused.to_string(),
                )])
            })?;
        }
        // A callback in a window is promised for then: business hours are
        // judged at its start.
        let judged_at = callback
            .as_ref()
            .map_or(created_at_ms, |c| c.judged_at(created_at_ms));
        let plan =
            self.open_plan_at(&tenant, &target, intent, &conversation.language, judged_at)?;
        let timeout = request
            .timeout
            .and_then(|t| Duration::try_from(t).ok())
            .unwrap_or(self.default_timeout);
        let deadline_ms = match callback.as_ref().and_then(|c| c.deadline_ms()) {
            Some(deadline_ms) => deadline_ms,
            None => {
                created_at_ms.saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX))
            }
        };
        let (message, language) = self
            .messages
            .for_tenant(&tenant)
            .for_language(&conversation.language);
        Ok(Handoff {
            id: uuid::Uuid::now_v7().to_string(),
            tenant,
            request_id: request.request_id.clone(),
            request_fingerprint: hex(&Sha256::digest(request.encode_to_vec())),
            state: HandoffState::INITIAL,
            mode: convert::types::mode_from(request.mode()),
            customer_message: message.to_owned(),
            customer_message_language: language.to_owned(),
            conversation: convert::context::encode_conversation(&conversation),
            context: convert::context::encode_context(&context),
            requested_target: target,
            plan,
            created_at_ms,
            updated_at_ms: created_at_ms,
            deadline_ms,
            current_attempt: None,
            queue_status: None,
            failure: None,
            last_sequence: 1,
            decision: request.decision.clone().map(convert::types::decision_from),
            wrap_up: None,
            context_version: 1,
            recorded_outcome: None,
            callback,
        })
    }

    /// A callback goes only where every target of its plan can dial it:
    /// INVALID_ARGUMENT naming `callback` otherwise (or when a connector
    /// cannot say what it serves now).
    async fn check_callbacks(&self, handoff: &Handoff) -> Result<(), ControlError> {
        for planned in &handoff.plan {
            let refused = |why: String| {
                ControlError::InvalidArgument(vec![FieldViolation::new("callback", why)])
            };
            let connector = self.dispatcher.connector(&planned.connector).map_err(|_| {
                refused(format!("connector {} is not configured", planned.connector))
            })?;
            let (info, _) = connector.recent_check().await.map_err(|error| {
                refused(format!(
                    "connector {} cannot say whether it calls back: {error}",
                    planned.connector
                ))
            })?;
            if !info.callbacks {
                return Err(refused(format!(
                    "connector {} (a target of this handoff) does not call customers back",
                    planned.connector
                )));
            }
        }
        Ok(())
    }

    /// GetHandoff: one handoff of the tenant.
    pub(super) async fn get(
        &self,
        tenant: &str,
        request: GetHandoffRequest,
    ) -> Result<GetHandoffResponse, ControlError> {
        parse_id(&request.handoff_id)?;
        let handoff = self.store.get(tenant, &request.handoff_id).await?;
        Ok(GetHandoffResponse {
            handoff: Some(convert::handoff(&handoff)),
        })
    }

    /// ListHandoffs: the tenant's handoffs in the states asked for, a page
    /// at a time, each page within the response size limit.
    pub(super) async fn list(
        &self,
        tenant: &str,
        request: ListHandoffsRequest,
    ) -> Result<ListHandoffsResponse, ControlError> {
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
            parse_page_token,
            &mut violations,
        );
        reject_any(violations)?;
        let handoffs = self
            .store
            .list(tenant, &states, page_size + 1, after.as_deref())
            .await?;
        let page = convert::handoff_page(&handoffs, page_size, self.limits.max_response_bytes)?;
        Ok(ListHandoffsResponse {
            next_page_token: page
                .last_id
                .map(|id| URL_SAFE_NO_PAD.encode(id))
                .unwrap_or_default(),
            handoffs: page.handoffs,
        })
    }

    /// CancelHandoff: ends a handoff that has not ended; a cancelled one is
    /// returned as it is, so that cancelling again is harmless.
    pub(super) async fn cancel(
        &self,
        principal: &Principal,
        request: CancelHandoffRequest,
    ) -> Result<CancelHandoffResponse, ControlError> {
        let tenant = &principal.tenant;
        parse_id(&request.handoff_id)?;
        // The reason reaches logs, events and connectors: one line only.
        validate_cancel_reason(&request.reason, &self.limits)
            .map_err(ControlError::InvalidArgument)?;
        let handoff = self.store.get(tenant, &request.handoff_id).await?;
        match handoff.state {
            HandoffState::Cancelled => {
                return Ok(CancelHandoffResponse {
                    handoff: Some(convert::handoff(&handoff)),
                });
            }
            state if state.is_terminal() => return Err(ControlError::HandoffEnded(state)),
            HandoffState::CallingBack => return Err(ControlError::CallbackDialing),
            _ => {}
        }
        let failure = Failure::new(FailureReason::Cancelled, request.reason);
        let event = NewEvent::new(EventKind::Cancelled).failure(failure);
        let audit = audit::entry(principal, &handoff.id, AuditAction::Cancelled, "");
        let (cancelled, _) = self
            .dispatcher
            .record(tenant, &request.handoff_id, event, Some(audit))
            .await?;
        self.dispatcher.stop(&cancelled).await;
        Ok(CancelHandoffResponse {
            handoff: Some(convert::handoff(&cancelled)),
        })
    }
}

/// A page token of ListHandoffs: the id of the last handoff returned.
fn parse_page_token(token: &str) -> Option<String> {
    let id = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    uuid::Uuid::parse_str(&id).is_ok().then_some(id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_page_token_is_the_encoded_id_of_a_handoff() {
        let id = uuid::Uuid::now_v7().to_string();
        let token = URL_SAFE_NO_PAD.encode(&id);
        assert_eq!(parse_page_token(&token), Some(id));
        assert_eq!(parse_page_token(&URL_SAFE_NO_PAD.encode("a12")), None);
        assert_eq!(parse_page_token("not base64!"), None);
    }
}
