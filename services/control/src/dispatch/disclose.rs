//! The context a connector is given for one attempt, at its start and with
//! every update: the data policy's forms for this connector, the signed
//! reference and the connector's capabilities, with the disclosure audited
//! before anything is sent (no audit record, no context).

use super::Dispatcher;
use crate::connector::{ConnectorInfo, TransferContext};
use crate::disclosure;
use crate::domain::{Attempt, Handoff};
use crate::store::{AuditAction, AuditEntry, StoreError};

impl Dispatcher {
    /// `handoff`'s latest stored context as `attempt`'s connector (with
    /// `info`) may have it. Read from the store, not from `handoff`, so that
    /// a later attempt (a fallback) carries the updates made while the
    /// customer waited.
    pub(super) async fn disclosed_context(
        &self,
        handoff: &Handoff,
        attempt: &Attempt,
        info: &ConnectorInfo,
    ) -> Result<TransferContext, StoreError> {
        let latest = self.store.get(&handoff.tenant, &handoff.id).await?;
        let (connector, target) = (&attempt.planned.connector, &attempt.planned.target);
        // The route named, else the one picked for the handoff: its rules
        // apply whether or not the runtime named it.
        let route = self.data_policy.route_of(&latest);
        let rules = self
            .data_policy
            .rules(&latest.tenant, route.as_deref(), connector);
        let disclosed = disclosure::disclose(&latest.context, &latest.conversation, &rules);
        let capabilities = info.context_capabilities.clone();
        let record = disclosure::Record::of(&disclosed, route, &capabilities);
        let detail = record.audit_detail(attempt.number, target, &capabilities);
        self.store
            .record_audit(AuditEntry {
                tenant: latest.tenant.clone(),
                handoff_id: latest.id.clone(),
                action: AuditAction::Disclosed,
                actor: "dispatch".into(),
                credential: String::new(),
                time_ms: super::now_ms(),
                detail,
                connector: connector.clone(),
            })
            .await?;
        Ok(TransferContext {
            reference: self.reference(&latest),
            conversation: disclosed.conversation,
            context: disclosed.context,
            withheld: disclosed.withheld,
            capabilities,
            disclosure: record,
        })
    }
}
