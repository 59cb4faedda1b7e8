//! Announcements of recorded events between replicas: each commit that
//! records an event notifies [`CHANNEL`] (PostgreSQL delivers it only if
//! the commit succeeds), and each replica follows the channel on a
//! connection of its own.

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;

use super::unavailable;
use crate::store::{EventNotice, Notice, StoreError};

/// The notification channel of recorded events (one per database).
const CHANNEL: &str = "baton_handoff_events";

/// Notices buffered for the event hub; past this, notices are dropped and
/// the hub is told to re-read instead of memory growing.
const NOTICE_BUFFER: usize = 4096;

/// Announces a recorded event; delivered when the transaction commits.
pub(super) async fn notify(
    connection: &mut PgConnection,
    tenant: &str,
    id: &str,
    sequence: u64,
) -> Result<(), StoreError> {
    let payload = serde_json::json!({ "tenant": tenant, "handoff_id": id, "sequence": sequence });
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload.to_string())
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    Ok(())
}

fn parse_notice(payload: &str) -> Option<EventNotice> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    Some(EventNotice {
        tenant: value.get("tenant")?.as_str()?.to_owned(),
        handoff_id: value.get("handoff_id")?.as_str()?.to_owned(),
        sequence: value.get("sequence")?.as_u64()?,
    })
}

/// Follows [`CHANNEL`] on a connection of its own, until the receiver goes.
pub(super) async fn listen(pool: &PgPool) -> Result<mpsc::Receiver<Notice>, StoreError> {
    let mut listener = PgListener::connect_with(pool).await.map_err(unavailable)?;
    listener.listen(CHANNEL).await.map_err(unavailable)?;
    let (sender, receiver) = mpsc::channel(NOTICE_BUFFER);
    tokio::spawn(forward_notices(listener, sender));
    Ok(receiver)
}

/// Forwards notifications until the receiver goes. A lost connection is
/// re-established (the listener listens again on it); what was announced
/// meanwhile is lost, and so is what did not fit in the buffer, so then a
/// `Missed` tells the hub to re-read what it follows.
async fn forward_notices(mut listener: PgListener, sender: mpsc::Sender<Notice>) {
    loop {
        let missed = match listener.try_recv().await {
            Ok(Some(notification)) => match parse_notice(notification.payload()) {
                Some(notice) => match sender.try_send(Notice::Recorded(notice)) {
                    Ok(()) => false,
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                },
                None => {
                    tracing::warn!("ignoring a malformed event notification");
                    false
                }
            },
            Ok(None) | Err(_) => {
                tracing::warn!("lost the event notification connection; reconnecting");
                if !reconnect(&mut listener, &sender).await {
                    return;
                }
                tracing::info!("listening for event notifications again");
                true
            }
        };
        // Waits for room: the hub drains the buffer.
        if missed && sender.send(Notice::Missed).await.is_err() {
            return;
        }
    }
}

/// Reconnects the listener (which listens again); false when nobody
/// follows the notices any more.
async fn reconnect(listener: &mut PgListener, sender: &mpsc::Sender<Notice>) -> bool {
    loop {
        if sender.is_closed() {
            return false;
        }
        match sqlx::query("SELECT 1").execute(&mut *listener).await {
            Ok(_) => return true,
            Err(error) => {
                tracing::debug!(%error, "event notifications: still reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_what_notify_sends_and_nothing_else() {
        let payload = serde_json::json!({ "tenant": "t", "handoff_id": "h", "sequence": 7 });
        assert_eq!(
            parse_notice(&payload.to_string()),
            Some(EventNotice {
                tenant: "t".into(),
                handoff_id: "h".into(),
                sequence: 7,
            })
        );
        assert_eq!(parse_notice("{\"tenant\": \"t\"}"), None);
        assert_eq!(parse_notice("not json"), None);
    }
}
