//! UpdateHandoff: the runtime adds to the context of a handoff that no
//! human has yet (transcript turns, entities new or corrected, notes), so
//! that the human hears what the customer said while waiting. The update
//! is made against the version the caller read (a stale one is ABORTED
//! with the current version), once per request id, and recorded as a
//! CONTEXT_UPDATED event in the same durable commit as the new context.

use baton_auth::Principal;
use baton_proto::handoff::v1::{UpdateHandoffRequest, UpdateHandoffResponse};
use baton_proto::types::v1 as pb;
use prost::Message;
use sha2::{Digest, Sha256};

use super::HandoffApi;
use super::fields::parse_id;
use super::validate::{validate_update, validate_updated_context};
use crate::convert;
use crate::domain::HandoffState;
use crate::error::ControlError;
use crate::store::{ContextUpdate, ContextUpdateOutcome, StoreError};

impl HandoffApi {
    /// UpdateHandoff: the handoff with its context updated, or as it is on
    /// a retry of an update already made.
    pub(super) async fn update(
        &self,
        principal: &Principal,
        request: UpdateHandoffRequest,
    ) -> Result<UpdateHandoffResponse, ControlError> {
        let tenant = &principal.tenant;
        parse_id(&request.handoff_id)?;
        validate_update(&request, &self.limits).map_err(ControlError::InvalidArgument)?;
        let handoff = self.store.get(tenant, &request.handoff_id).await?;
        // Built only from the version the caller read: against any other,
        // the store answers with the conflict (or a retry's outcome).
        let context = if handoff.context_version == request.expected_context_version
            && takes_updates(handoff.state)
        {
            let updated = updated_context(convert::context::context(&handoff.context), &request);
            validate_updated_context(&updated, &self.limits)
                .map_err(ControlError::InvalidArgument)?;
            Some(convert::context::encode_context(&updated))
        } else {
            None
        };
        let update = ContextUpdate {
            request_id: request.request_id.clone(),
            fingerprint: fingerprint(&request),
            expected_version: request.expected_context_version,
            context,
        };
        let outcome = self
            .store
            .update_context(tenant, &request.handoff_id, update)
            .await
            .map_err(|error| match error {
                StoreError::IllegalTransition(refused) => ControlError::ContextClosed(refused.from),
                other => ControlError::Store(other),
            })?;
        let (handoff, applied, context_version) = match outcome {
            ContextUpdateOutcome::Applied { handoff, event } => {
                tracing::info!(handoff_id = %handoff.id, context_version = handoff.context_version, "context updated");
                self.hub.publish(&event);
                // In the background: this answer never waits on a connector.
                self.dispatcher.forward_context(handoff.clone());
                let version = handoff.context_version;
                (handoff, true, version)
            }
            ContextUpdateOutcome::Retried {
                same_request: false,
                ..
            } => return Err(ControlError::RequestIdReused),
            ContextUpdateOutcome::Retried {
                handoff, version, ..
            } => (handoff, false, version),
        };
        Ok(UpdateHandoffResponse {
            handoff: Some(convert::handoff(&handoff)),
            applied,
            context_version,
        })
    }
}

/// Whether a handoff in `state` takes context updates: until a human has
/// the customer.
fn takes_updates(state: HandoffState) -> bool {
    matches!(
        state,
        HandoffState::Pending
            | HandoffState::Routing
            | HandoffState::Queued
            | HandoffState::Ringing
    )
}

/// `context` with the update's turns appended, its entities added or
/// replacing the one of the same name, and its notes on a line of their own.
fn updated_context(
    mut context: pb::HandoffContext,
    update: &UpdateHandoffRequest,
) -> pb::HandoffContext {
    context.transcript.extend(update.turns.iter().cloned());
    for entity in &update.entities {
        match context.entities.iter_mut().find(|e| e.name == entity.name) {
            Some(existing) => *existing = entity.clone(),
            None => context.entities.push(entity.clone()),
        }
    }
    if !update.notes.is_empty() {
        if !context.agent_notes.is_empty() {
            context.agent_notes.push('\n');
        }
        context.agent_notes.push_str(&update.notes);
    }
    context
}

/// SHA-256 of the request, to tell a retry from a reused request id.
fn fingerprint(request: &UpdateHandoffRequest) -> String {
    Sha256::digest(request.encode_to_vec())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(name: &str, value: &str) -> pb::Entity {
        pb::Entity {
            name: name.into(),
            value: value.into(),
            r#type: "string".into(),
            sensitive: false,
        }
    }

    fn turn(text: &str) -> pb::Turn {
        pb::Turn {
            speaker: pb::Speaker::Customer as i32,
            text: text.into(),
            at: None,
        }
    }

    #[test]
    fn turns_are_appended_entities_corrected_by_name_and_notes_added_on_their_own_line() {
        let context = pb::HandoffContext {
            summary: "double charge".into(),
            transcript: vec![turn("I was charged twice")],
            entities: vec![entity("account", "12345"), entity("city", "Lyon")],
            agent_notes: "polite".into(),
            ..Default::default()
        };
        let update = UpdateHandoffRequest {
            turns: vec![turn("also my card is blocked")],
            entities: vec![entity("account", "12354"), entity("card", "visa")],
            notes: "card blocked since Monday".into(),
            ..Default::default()
        };
        let updated = updated_context(context, &update);
        let texts: Vec<_> = updated.transcript.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["I was charged twice", "also my card is blocked"]);
        let entities: Vec<_> = updated
            .entities
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            entities,
            [("account", "12354"), ("city", "Lyon"), ("card", "visa")]
        );
        assert_eq!(updated.agent_notes, "polite\ncard blocked since Monday");
        assert_eq!(updated.summary, "double charge");
    }

    #[test]
    fn notes_on_a_context_without_any_have_no_leading_line_break() {
        let update = UpdateHandoffRequest {
            notes: "first".into(),
            ..Default::default()
        };
        let updated = updated_context(pb::HandoffContext::default(), &update);
        assert_eq!(updated.agent_notes, "first");
    }

    #[test]
    fn only_a_handoff_no_human_has_yet_takes_updates() {
        use HandoffState as S;
        for state in [S::Pending, S::Routing, S::Queued, S::Ringing] {
            assert!(takes_updates(state), "{state:?}");
        }
        for state in [S::Connected, S::Completed, S::Failed, S::Cancelled] {
            assert!(!takes_updates(state), "{state:?}");
        }
    }

    #[test]
    fn the_fingerprint_tells_a_different_update_apart() {
        let one = UpdateHandoffRequest {
            request_id: "u".into(),
            notes: "a".into(),
            ..Default::default()
        };
        let mut other = one.clone();
        assert_eq!(fingerprint(&one), fingerprint(&other));
        other.notes = "b".into();
        assert_ne!(fingerprint(&one), fingerprint(&other));
    }
}
