//! Forwarding an applied UpdateHandoff to the connector running the
//! handoff's current attempt, when that connector takes context updates
//! (the embedded queue's desktop shows it live). Best effort and on a task
//! of its own: the runtime's answer never waits on a connector, and a
//! failed forward is logged and changes nothing else. A connector that does
//! not take updates (SIP cannot change User-to-User after the INVITE) is
//! not called: the human reads the latest context through the signed
//! reference, which always serves what is stored.

use std::sync::Arc;

use tracing::Instrument;

use super::Dispatcher;
use crate::connector::TransferUpdate;
use crate::domain::Handoff;

impl Dispatcher {
    /// Sends `handoff`'s context (as just updated) to its current
    /// attempt's connector in the background.
    pub fn forward_context(self: &Arc<Self>, handoff: Handoff) {
        let dispatcher = self.clone();
        let span = tracing::info_span!(
            "handoff.forward_context",
            handoff_id = %handoff.id,
            context_version = handoff.context_version,
        );
        tokio::spawn(async move { dispatcher.forward(&handoff).await }.instrument(span));
    }

    /// Forwards the context stored now when it is newer than `started`'s,
    /// the snapshot a transfer was started with. Called once the connector
    /// has accepted the transfer: an update applied between the snapshot
    /// and the connector registering the transfer found no transfer to
    /// update (or no attempt yet), and would otherwise never reach it.
    pub(super) async fn catch_up_context(&self, started: &Handoff) {
        match self.store.get(&started.tenant, &started.id).await {
            Ok(latest) if latest.context_version > started.context_version => {
                self.forward(&latest).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(handoff_id = %started.id, %error, "context catch-up skipped: store unavailable");
            }
        }
    }

    /// Logs ids, versions and outcomes only: never the context.
    pub(super) async fn forward(&self, handoff: &Handoff) {
        // No attempt yet: the transfer, when it starts, reads the latest
        // context from the store.
        let Some(attempt) = &handoff.current_attempt else {
            return;
        };
        let name = attempt.planned.connector.as_str();
        let Ok(connector) = self.registry.get(name) else {
            return;
        };
        let info = match connector.recent_check().await {
            Ok((info, _)) => info,
            Err(error) => {
                tracing::warn!(connector = name, %error, "context update not forwarded: connector unavailable");
                return;
            }
        };
        if !info.context_updates {
            tracing::debug!(
                connector = name,
                "connector takes no context updates; the context reference serves them"
            );
            return;
        }
        let context = match self.disclosed_context(handoff, attempt, &info).await {
            Ok(context) => context,
            Err(error) => {
                tracing::warn!(connector = name, %error, "context update not forwarded: not disclosed");
                return;
            }
        };
        let update = TransferUpdate {
            tenant: handoff.tenant.clone(),
            handoff_id: handoff.id.clone(),
            attempt: attempt.number,
            context,
            context_version: handoff.context_version,
        };
        match connector.update_transfer(update).await {
            Ok(outcome) => {
                tracing::info!(
                    connector = name,
                    attempt = attempt.number,
                    ?outcome,
                    "context update forwarded"
                );
            }
            Err(detail) => {
                connector.forget_check();
                tracing::warn!(connector = name, attempt = attempt.number, %detail, "context update not forwarded");
            }
        }
    }
}
