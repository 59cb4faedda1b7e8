//! Announcements of recorded events between replicas: each commit that
//! records events notifies [`CHANNEL`] with all of them, a JSON array per
//! notification (PostgreSQL delivers them only if the commit succeeds),
//! and each replica follows the channel on a connection of its own.

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

/// The most bytes of one notification's payload (PostgreSQL refuses
/// payloads of 8000 bytes or more).
const MAX_PAYLOAD: usize = 7000;

/// Announces the recorded events of a transaction, as few notifications as
/// their payload's size allows (each a JSON array of notices); delivered
/// when the transaction commits.
pub(super) async fn notify_all(
    connection: &mut PgConnection,
    notices: &[EventNotice],
) -> Result<(), StoreError> {
    if notices.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
        .bind(CHANNEL)
        .bind(payloads(notices))
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// `notices` as JSON arrays of at most [`MAX_PAYLOAD`] bytes each.
fn payloads(notices: &[EventNotice]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for notice in notices {
        let one = serde_json::json!({
            "tenant": notice.tenant,
            "handoff_id": notice.handoff_id,
            "sequence": notice.sequence,
        })
        .to_string();
        if !current.is_empty() && size + one.len() + 1 > MAX_PAYLOAD {
            payloads.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += one.len() + 1;
        current.push(one);
    }
    if !current.is_empty() {
        payloads.push(format!("[{}]", current.join(",")));
    }
    payloads
}

/// The notices of one notification: an array of them, or one alone (as
/// replicas of earlier versions send). Malformed entries are left out.
fn parse_notices(payload: &str) -> Option<Vec<EventNotice>> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    match value {
        serde_json::Value::Array(entries) => {
            Some(entries.iter().filter_map(parse_notice).collect())
        }
        single => parse_notice(&single).map(|notice| vec![notice]),
    }
}

fn parse_notice(value: &serde_json::Value) -> Option<EventNotice> {
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
            Ok(Some(notification)) => match parse_notices(notification.payload()) {
                Some(notices) => {
                    let mut missed = false;
                    for notice in notices {
                        match sender.try_send(Notice::Recorded(notice)) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => missed = true,
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        }
                    }
                    missed
                }
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

    fn notice(handoff_id: &str, sequence: u64) -> EventNotice {
        EventNotice {
            tenant: "t".into(),
            handoff_id: handoff_id.into(),
            sequence,
        }
    }

    #[test]
    fn notices_parse_what_notify_sends_and_nothing_else() {
        let notices = vec![notice("h", 7), notice("g", 1)];
        let sent = payloads(&notices);
        assert_eq!(sent.len(), 1);
        assert_eq!(parse_notices(&sent[0]), Some(notices));
        // One notice alone, as earlier versions announce.
        let single = serde_json::json!({ "tenant": "t", "handoff_id": "h", "sequence": 7 });
        assert_eq!(
            parse_notices(&single.to_string()),
            Some(vec![notice("h", 7)])
        );
        assert_eq!(parse_notices("{\"tenant\": \"t\"}"), None);
        assert_eq!(parse_notices("not json"), None);
    }

    #[test]
    fn many_notices_are_split_below_postgres_payload_limit() {
        let notices: Vec<EventNotice> = (0..1000).map(|n| notice(&format!("h{n}"), n)).collect();
        let sent = payloads(&notices);
        assert!(sent.len() > 1);
        assert!(sent.iter().all(|payload| payload.len() <= MAX_PAYLOAD));
        let parsed: Vec<EventNotice> = sent
            .iter()
            .flat_map(|payload| parse_notices(payload).expect("parses"))
            .collect();
        assert_eq!(parsed, notices);
    }
}
