//! Fencing an attempt: cancelling its transfer and waiting until the
//! connector confirms, so that the next target never rings while the last
//! one may still connect the customer to someone else.

use std::time::Duration;

use tokio::time::Instant;

use super::Dispatcher;
use crate::circuit::{DispatchSettings, jittered_backoff};
use crate::connector::Connector;

/// The longest pause between re-attaches or cancels: a restarted
/// connector is found again within this.
pub(super) const MAX_REATTACH_PAUSE: Duration = Duration::from_secs(2);

/// Cancels an attempt and waits until the connector confirms it (any
/// answer to the cancel: cancelled, already ended or unknown), trying
/// again with backoff until `until`. Only a confirmed cancel lets the next
/// target ring; returns whether it was confirmed.
pub(super) async fn fence(
    connector: &Connector,
    settings: &DispatchSettings,
    tenant: &str,
    handoff_id: &str,
    number: u32,
    until: Instant,
) -> bool {
    let mut tries = 0;
    loop {
        match connector.cancel_transfer(tenant, handoff_id, number).await {
            Ok(outcome) => {
                tracing::info!(handoff_id, connector = %connector.name, attempt = number, ?outcome, "transfer fenced");
                return true;
            }
            Err(error) => {
                tracing::warn!(handoff_id, connector = %connector.name, %error, "connector did not confirm the cancel; trying again");
            }
        }
        if Instant::now() >= until {
            tracing::warn!(handoff_id, connector = %connector.name, attempt = number, "cancel not confirmed in time");
            return false;
        }
        let pause = jittered_backoff(settings.retry_backoff, tries).min(MAX_REATTACH_PAUSE);
        tries += 1;
        tokio::time::sleep_until((Instant::now() + pause).min(until)).await;
    }
}

impl Dispatcher {
    /// Fences an attempt on a task of its own, for up to the re-attach
    /// window: for cancels nothing waits on (the handoff was cancelled or
    /// its deadline passed), which must still reach a connector that is
    /// restarting.
    pub(super) fn fence_in_background(
        &self,
        connector: &Connector,
        tenant: &str,
        handoff_id: &str,
        number: u32,
    ) {
        let settings = self.dispatch.settings(&connector.name);
        let until = Instant::now() + settings.reattach_window;
        let (connector, tenant, handoff_id) =
            (connector.clone(), tenant.to_owned(), handoff_id.to_owned());
        tokio::spawn(async move {
            fence(&connector, &settings, &tenant, &handoff_id, number, until).await;
        });
    }
}
