//! UpdateTransfer: the handoff's newer context handed to the connector of a
//! transfer that has not ended. The SDK answers what it can without the
//! connector (unknown, ended, stale) and applies updates to one transfer
//! one at a time, in increasing version, so that a late or repeated call
//! never brings old context back.

use std::sync::Arc;

use baton_proto::connector::v1::{UpdateOutcome, UpdateTransferRequest};
use tonic::Status;

use super::{Entry, Transfers};
use crate::{Connector, ContextUpdate};

impl<C: Connector> Transfers<C> {
    /// Applies `request` through [`Connector::update`] when it is newer
    /// than what the transfer carries. Another tenant's transfer is
    /// unknown to the caller; so is one interrupted by a restart, which no
    /// process runs until the control service re-attaches (the context
    /// reference serves the latest version meanwhile).
    pub(crate) async fn update(
        self: &Arc<Self>,
        request: UpdateTransferRequest,
    ) -> Result<UpdateOutcome, Status> {
        let key = (request.handoff_id.clone(), request.attempt);
        let running = match self.lock().get(&key) {
            Some(entry) if !entry.belongs_to(&request.tenant) => None,
            Some(Entry::Running(running)) => Some(running.clone()),
            Some(Entry::Interrupted(_)) | None => None,
        };
        let Some(running) = running else {
            return Ok(UpdateOutcome::Unknown);
        };
        let mut applied = running.context_version.lock().await;
        // A cancelled transfer is ending: its offer is being withdrawn.
        if running.log.is_ended() || running.cancel.is_cancelled() {
            return Ok(UpdateOutcome::AlreadyEnded);
        }
        if request.context_version <= *applied {
            return Ok(UpdateOutcome::Stale);
        }
        let version = request.context_version;
        self.connector
            .update(ContextUpdate {
                tenant: request.tenant,
                handoff_id: request.handoff_id,
                attempt: request.attempt,
                envelope: request.envelope.unwrap_or_default(),
                context_version: version,
            })
            .await?;
        *applied = version;
        Ok(UpdateOutcome::Applied)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use baton_proto::connector::v1::{CancelOutcome, ContextEnvelope, ContextReference};
    use baton_proto::types::v1::{TargetKind, TransferMode};

    use super::*;
    use crate::transfers::tests::request;
    use crate::{ConnectorInfo, Transfer, TransferEvents};

    /// Rings and holds until cancelled; records the versions it applies.
    #[derive(Default)]
    struct Updated(Mutex<Vec<(String, u64)>>);

    impl Connector for Updated {
        fn info(&self) -> ConnectorInfo {
            ConnectorInfo::new("updated", "0")
                .target_kinds([TargetKind::Queue])
                .transfer_modes([TransferMode::Warm])
                .context_updates()
        }

        async fn start(&self, _transfer: Transfer, events: TransferEvents) {
            events.ringing("").await;
            std::future::pending::<()>().await;
        }

        async fn update(&self, update: ContextUpdate) -> Result<(), Status> {
            let token = update.envelope.reference.unwrap_or_default().token;
            self.0
                .lock()
                .expect("applied")
                .push((token, update.context_version));
            Ok(())
        }
    }

    fn update(tenant: &str, handoff_id: &str, version: u64) -> UpdateTransferRequest {
        UpdateTransferRequest {
            handoff_id: handoff_id.into(),
            attempt: 1,
            tenant: tenant.into(),
            envelope: Some(ContextEnvelope {
                reference: Some(ContextReference {
                    token: format!("v{version}"),
                    ..ContextReference::default()
                }),
                ..ContextEnvelope::default()
            }),
            context_version: version,
        }
    }

    #[tokio::test]
    async fn only_newer_versions_of_a_running_transfer_of_the_tenant_reach_the_connector() {
        let connector = Arc::new(Updated::default());
        let transfers = Transfers::new(connector.clone(), None);
        transfers.start(request("h")).await.expect("started");

        let outcome = |tenant: &'static str, id: &'static str, version| {
            let transfers = transfers.clone();
            async move { transfers.update(update(tenant, id, version)).await }
        };
        assert_eq!(
            outcome("acme", "h", 2).await.ok(),
            Some(UpdateOutcome::Applied)
        );
        assert_eq!(
            outcome("acme", "h", 2).await.ok(),
            Some(UpdateOutcome::Stale)
        );
        assert_eq!(
            outcome("acme", "h", 4).await.ok(),
            Some(UpdateOutcome::Applied)
        );
        // A late update, overtaken by a newer one, never brings old context back.
        assert_eq!(
            outcome("acme", "h", 3).await.ok(),
            Some(UpdateOutcome::Stale)
        );
        assert_eq!(
            outcome("globex", "h", 5).await.ok(),
            Some(UpdateOutcome::Unknown)
        );
        assert_eq!(
            outcome("acme", "other", 5).await.ok(),
            Some(UpdateOutcome::Unknown)
        );

        assert_eq!(
            transfers.cancel("acme", "h", 1).await,
            CancelOutcome::Cancelled
        );
        let mut ended = None;
        for _ in 0..200 {
            ended = outcome("acme", "h", 6).await.ok();
            if ended == Some(UpdateOutcome::AlreadyEnded) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(ended, Some(UpdateOutcome::AlreadyEnded));

        let applied = connector.0.lock().expect("applied").clone();
        assert_eq!(applied, vec![("v2".to_owned(), 2), ("v4".to_owned(), 4)]);
    }

    /// A connector that does not override `update`.
    struct Fixed;

    impl Connector for Fixed {
        fn info(&self) -> ConnectorInfo {
            ConnectorInfo::new("fixed", "0")
        }

        async fn start(&self, _transfer: Transfer, _events: TransferEvents) {}
    }

    #[tokio::test]
    async fn a_connector_that_does_not_take_updates_answers_unimplemented() {
        let refused = Fixed
            .update(ContextUpdate {
                tenant: "acme".into(),
                handoff_id: "h".into(),
                attempt: 1,
                envelope: ContextEnvelope::default(),
                context_version: 2,
            })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::Unimplemented);
    }
}
