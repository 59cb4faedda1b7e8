//! A transfer's note as JSON, and the start of a `resume` that reads it.
//!
//! A connector that can take a transfer over after a restart remembers,
//! before anything leaves for its platform, what it is about to do
//! ([`TransferEvents::remember`]). Most keep that note as a small JSON
//! value: [`TransferNote`] writes and reads it, and begins the `resume`
//! that reads it ([`TransferNote::resumed`]).

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Connector, FailureReason, Transfer, TransferEvents};

/// A note kept as JSON. Implement it for a serializable type by saying
/// what a transfer whose note is unreadable is never done again.
pub trait TransferNote: Serialize + DeserializeOwned + Send {
    /// What is not done a second time when the note of a resumed transfer
    /// is unreadable, for its FAILED detail: e.g. "the call was not
    /// updated again".
    const NOT_REPEATED: &'static str;

    /// The note's text for [`TransferEvents::remember`].
    fn to_note(&self) -> String {
        // A struct of strings, numbers and sets always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a note written by [`to_note`](Self::to_note).
    fn from_note(note: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(note)
    }

    /// Begins [`Connector::resume`] for a connector that remembers this
    /// note before anything leaves for its platform:
    ///
    /// - no note: the previous process sent nothing, so the transfer is
    ///   started afresh (`start`);
    /// - an unreadable note: nothing is done a second time; what the
    ///   transfer holds is released (`cancel`) and it ends FAILED
    ///   (INTERRUPTED), the detail ending with [`NOT_REPEATED`](Self::NOT_REPEATED).
    ///
    /// Returns the note when there is one to go on from, `None` when the
    /// transfer is already dealt with.
    fn resumed<C: Connector>(
        connector: &C,
        transfer: &Transfer,
        events: &TransferEvents,
    ) -> impl Future<Output = Option<Self>> + Send {
        async move {
            let Some(note) = transfer.remembered.as_deref() else {
                connector.start(transfer.clone(), events.clone()).await;
                return None;
            };
            match Self::from_note(note) {
                Ok(note) => Some(note),
                Err(error) => {
                    let not_repeated = Self::NOT_REPEATED;
                    tracing::warn!(%error, "the transfer's note is unreadable; {not_repeated}");
                    connector.cancel(transfer).await;
                    events
                        .failed(
                            FailureReason::Interrupted,
                            &format!(
                                "interrupted by a restart of the connector; its note is unreadable, so {not_repeated}"
                            ),
                        )
                        .await;
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::SystemTime;

    use baton_proto::connector::v1::StartTransferResponse;
    use serde::Deserialize;

    use super::*;
    use crate::{ConnectorInfo, ContextEnvelope, TransferMode, TransferTarget};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sent {
        call: String,
    }

    impl TransferNote for Sent {
        const NOT_REPEATED: &'static str = "the call was not updated again";
    }

    /// Records what the SDK called.
    #[derive(Default)]
    struct Recording(Mutex<Vec<&'static str>>);

    impl Connector for Recording {
        fn info(&self) -> ConnectorInfo {
            ConnectorInfo::new("recording", "0")
        }

        async fn start(&self, _transfer: Transfer, events: TransferEvents) {
            self.0.lock().expect("lock").push("start");
            events.completed("started afresh").await;
        }

        async fn cancel(&self, _transfer: &Transfer) {
            self.0.lock().expect("lock").push("cancel");
        }
    }

    fn transfer(remembered: Option<&str>) -> Transfer {
        Transfer {
            tenant: "acme".into(),
            handoff_id: "h1".into(),
            attempt: 1,
            target: TransferTarget::SipUri("sip:human@example.com".into()),
            mode: TransferMode::Warm,
            envelope: ContextEnvelope::default(),
            deadline: SystemTime::now(),
            remembered: remembered.map(str::to_owned),
            disclosure: None,
            callback: None,
        }
    }

    async fn resume(
        remembered: Option<&str>,
    ) -> (Option<Sent>, Vec<&'static str>, Vec<StartTransferResponse>) {
        let connector = Recording::default();
        let (events, mut receiver) = TransferEvents::channel();
        let note = Sent::resumed(&connector, &transfer(remembered), &events).await;
        // Only an ended transfer's events can be read to their end.
        let mut reported = Vec::new();
        if events.is_ended() {
            while let Some(event) = receiver.recv().await {
                reported.push(event);
            }
        }
        let called = connector.0.lock().expect("lock").clone();
        (note, called, reported)
    }

    #[test]
    fn a_note_reads_back_as_written() {
        let sent = Sent { call: "CA1".into() };
        assert_eq!(Sent::from_note(&sent.to_note()).expect("reads"), sent);
    }

    #[tokio::test]
    async fn a_readable_note_is_given_back_and_nothing_is_called() {
        let (note, called, reported) = resume(Some(r#"{"call":"CA1"}"#)).await;
        assert_eq!(note, Some(Sent { call: "CA1".into() }));
        assert!(called.is_empty(), "{called:?}");
        assert!(reported.is_empty(), "{reported:?}");
    }

    #[tokio::test]
    async fn without_a_note_the_transfer_starts_afresh() {
        let (note, called, reported) = resume(None).await;
        assert_eq!(note, None);
        assert_eq!(called, ["start"]);
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert_eq!(reported[0].detail, "started afresh");
    }

    #[tokio::test]
    async fn an_unreadable_note_releases_the_transfer_and_ends_it_interrupted() {
        let (note, called, reported) = resume(Some("not json")).await;
        assert_eq!(note, None);
        assert_eq!(called, ["cancel"]);
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert_eq!(
            reported[0].failure_reason,
            FailureReason::Interrupted as i32
        );
        assert!(
            reported[0]
                .detail
                .ends_with("so the call was not updated again"),
            "{}",
            reported[0].detail
        );
    }
}
