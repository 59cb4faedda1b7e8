//! Who saw or changed a handoff's context: revealing a sensitive entity,
//! revoking context tokens, and reading the audit log. Whatever leaves is
//! recorded first: no audit record, no value.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use baton_auth::Principal;
use baton_proto::handoff::v1::{
    AuditRecord, ListAuditRecordsRequest, ListAuditRecordsResponse, RevealEntityRequest,
    RevealEntityResponse, RevokeContextTokensRequest, RevokeContextTokensResponse,
};
use baton_service_kit::status::FieldViolation;

use super::fields::{now_ms, page_size, page_token, parse_id, reject_any};
use super::validate::{Limits, validate_entity_name};
use crate::error::ControlError;
use crate::store::{AuditAction, AuditEntry, AuditFilter, HandoffStore};

/// The audit calls, over the store and the size limits they need.
pub(super) struct Audit<'a> {
    pub store: &'a dyn HandoffStore,
    pub limits: &'a Limits,
}

/// An audit entry of `principal` doing `action` to `handoff_id` now.
pub(super) fn entry(
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
        connector: String::new(),
    }
}

impl Audit<'_> {
    /// RevealEntity: the value of one entity, sensitive ones included.
    pub async fn reveal_entity(
        &self,
        principal: &Principal,
        request: RevealEntityRequest,
    ) -> Result<RevealEntityResponse, ControlError> {
        parse_id(&request.handoff_id)?;
        let name = &request.entity_name;
        validate_entity_name(name, self.limits).map_err(ControlError::InvalidArgument)?;
        let handoff = self
            .store
            .get(&principal.tenant, &request.handoff_id)
            .await?;
        let context = crate::convert::context::context(&handoff.context);
        let Some(entity) = context.entities.into_iter().find(|e| &e.name == name) else {
            return Err(ControlError::EntityNotFound);
        };
        // Recorded before the value leaves: no audit record, no value.
        let entry = entry(
            principal,
            &handoff.id,
            AuditAction::Revealed,
            format!("entity {name}"),
        );
        self.store.record_audit(entry).await?;
        tracing::info!(handoff_id = %handoff.id, credential = %principal.credential_id, "sensitive entity revealed");
        Ok(RevealEntityResponse {
            value: entity.value,
        })
    }

    /// RevokeContextTokens: every context token of the handoff stops
    /// opening its context.
    pub async fn revoke_context_tokens(
        &self,
        principal: &Principal,
        request: RevokeContextTokensRequest,
    ) -> Result<RevokeContextTokensResponse, ControlError> {
        let handoff_id = &request.handoff_id;
        parse_id(handoff_id)?;
        let entry = entry(principal, handoff_id, AuditAction::TokensRevoked, "");
        self.store
            .revoke_context_tokens(&principal.tenant, handoff_id, entry)
            .await?;
        tracing::info!(%handoff_id, "context tokens revoked");
        Ok(RevokeContextTokensResponse {})
    }

    /// ListAuditRecords: the tenant's records (of one handoff, to one
    /// connector, of one action, when named), newest first, a page at a
    /// time.
    pub async fn list_records(
        &self,
        tenant: &str,
        request: ListAuditRecordsRequest,
    ) -> Result<ListAuditRecordsResponse, ControlError> {
        let mut violations = Vec::new();
        if !request.handoff_id.is_empty() && uuid::Uuid::parse_str(&request.handoff_id).is_err() {
            violations.push(FieldViolation::new(
                "handoff_id",
                "must be a handoff id (a UUID) or empty",
            ));
        }
        if !is_connector_filter(&request.connector) {
            violations.push(FieldViolation::new(
                "connector",
                "must be a connector name (at most 128 bytes, no control characters) or empty",
            ));
        }
        let action = match action_filter(request.action) {
            Ok(action) => action,
            Err(()) => {
                violations.push(FieldViolation::new(
                    "action",
                    format!("{} is not an AuditAction", request.action),
                ));
                None
            }
        };
        let page_size = page_size(request.page_size, &mut violations);
        let before = page_token(
            &request.page_token,
            "ListAuditRecords",
            parse_page_token,
            &mut violations,
        );
        reject_any(violations)?;
        let filter = AuditFilter {
            handoff_id: Some(request.handoff_id).filter(|id| !id.is_empty()),
            connector: Some(request.connector).filter(|name| !name.is_empty()),
            action,
        };
        let mut records = self
            .store
            .audit_records(tenant, &filter, page_size + 1, before)
            .await?;
        let next_page_token = if records.len() > page_size {
            records.truncate(page_size);
            records
                .last()
                .map(|r| page_token_of(r.sequence))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListAuditRecordsResponse {
            records: records.into_iter().map(record).collect(),
            next_page_token,
        })
    }
}

/// Empty (any connector), or what may be a configured connector's name.
fn is_connector_filter(name: &str) -> bool {
    name.len() <= 128 && !name.chars().any(char::is_control)
}

/// The action a listing is filtered by: `None` for UNSPECIFIED (any),
/// `Err` for a number the contract does not define.
fn action_filter(action: i32) -> Result<Option<AuditAction>, ()> {
    use baton_proto::handoff::v1::AuditAction as Proto;
    let Ok(action) = Proto::try_from(action) else {
        return Err(());
    };
    Ok(AuditAction::ALL
        .into_iter()
        .find(|known| action_proto(*known) == action))
}

fn record(record: crate::store::AuditRecord) -> AuditRecord {
    let entry = record.entry;
    let timestamp = |ms: i64| prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or_default(),
    };
    AuditRecord {
        handoff_id: entry.handoff_id,
        action: action_proto(entry.action) as i32,
        actor: entry.actor,
        credential: entry.credential,
        time: Some(timestamp(entry.time_ms)),
        detail: entry.detail,
        count: u64::try_from(record.count).unwrap_or(1),
        last_time: Some(timestamp(record.last_ms)),
        connector: entry.connector,
    }
}

/// A page token of ListAuditRecords: the last sequence returned.
fn page_token_of(sequence: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("a{sequence}"))
}

fn parse_page_token(token: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix('a')?
        .parse()
        .ok()
}

fn action_proto(action: AuditAction) -> baton_proto::handoff::v1::AuditAction {
    use baton_proto::handoff::v1::AuditAction as Proto;
    match action {
        AuditAction::Created => Proto::Created,
        AuditAction::Viewed => Proto::Viewed,
        AuditAction::Revealed => Proto::Revealed,
        AuditAction::Cancelled => Proto::Cancelled,
        AuditAction::TokensRevoked => Proto::TokensRevoked,
        AuditAction::Purged => Proto::Purged,
        AuditAction::Disclosed => Proto::Disclosed,
    }
}

#[cfg(test)]
mod tests;
