//! Live context: the runtime updated a waiting handoff's context
//! (UpdateHandoff, forwarded as UpdateTransfer), and the contact's screen
//! pop shows the new version at once: the envelope is replaced (and saved,
//! so that a restart keeps it) and every desktop's view is sent again over
//! its event stream. The SDK has already checked that the version is newer
//! than the last one applied to this transfer.

use baton_connector_sdk::Status;
use baton_proto::connector::v1::ContextEnvelope;

use super::Desk;
use crate::domain::Phase;

impl Desk {
    /// Replaces the context of `handoff_id`'s contact for `attempt` of
    /// `tenant` while it waits or is offered. NOT_FOUND when this desk
    /// holds no such contact (another tenant's, or one a later attempt
    /// took over); FAILED_PRECONDITION once an agent accepted it.
    pub fn update_context(
        &self,
        tenant: &str,
        handoff_id: &str,
        attempt: u32,
        envelope: ContextEnvelope,
    ) -> Result<(), Status> {
        let mut inner = self.lock();
        let contact = inner
            .queues
            .contact(handoff_id)
            .filter(|c| c.attempt == attempt && (c.tenant.is_empty() || c.tenant == tenant))
            .ok_or_else(|| Status::not_found("no contact of this transfer is in the queue"))?;
        // Once a human has the customer, the wrap-up form is on the screen
        // and the runtime no longer adds to the context.
        if !matches!(contact.phase, Phase::Waiting | Phase::Offered { .. }) {
            return Err(Status::failed_precondition(
                "a human has taken the contact; its context no longer changes",
            ));
        }
        if let Err(error) = inner.store.save_envelope(handoff_id, &envelope) {
            // Shown all the same: only a restart would bring back the
            // version before.
            tracing::error!(%error, "cannot save the updated context");
        }
        inner.envelopes.insert(handoff_id.to_owned(), envelope);
        self.commit(&mut inner);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use baton_proto::types::v1 as pb;

    use crate::config::QueueConfig;
    use crate::desk::Desk;
    use crate::desk::tests::{agent_account, new_contact};
    use crate::domain::NewContact;

    use super::*;

    fn envelope(turns: &[&str]) -> ContextEnvelope {
        ContextEnvelope {
            context: Some(pb::HandoffContext {
                summary: "Charged twice".into(),
                transcript: turns
                    .iter()
                    .map(|text| pb::Turn {
                        speaker: pb::Speaker::Customer as i32,
                        text: (*text).into(),
                        at: None,
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn contact(handoff_id: &str) -> NewContact {
        new_contact(handoff_id, 1)
    }

    #[test]
    fn an_update_shows_on_the_open_offer_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueueConfig::ephemeral(dir.path());
        let desk = Desk::open(&config).expect("open");
        let token = desk
            .open_session(&agent_account("ann"))
            .expect("sign in")
            .session_id;
        desk.enqueue(contact("h1"), envelope(&["I was charged twice"]))
            .expect("enqueue");
        let mut changes = desk.subscribe();
        changes.mark_unchanged();

        let updated = envelope(&["I was charged twice", "It was on the 3rd"]);
        desk.update_context("acme", "h1", 1, updated)
            .expect("applied");
        assert!(changes.has_changed().expect("open"), "desktops are told");
        let turns = |desk: &Desk| -> Vec<String> {
            let view = desk.agent_view(&token).expect("view");
            let offer = view.offer.expect("offered to ann");
            offer.transcript.into_iter().map(|t| t.text).collect()
        };
        assert_eq!(turns(&desk), ["I was charged twice", "It was on the 3rd"]);

        let refused = desk
            .update_context("globex", "h1", 1, envelope(&["not theirs"]))
            .expect_err("another tenant's");
        assert_eq!(refused.code(), tonic::Code::NotFound);
        let refused = desk
            .update_context("acme", "h1", 2, envelope(&["another attempt"]))
            .expect_err("another attempt's");
        assert_eq!(refused.code(), tonic::Code::NotFound);
        drop(desk);

        let desk = Desk::open(&config).expect("reopen");
        desk.enqueue(contact("h1"), envelope(&["as first sent"]))
            .expect("re-attach");
        assert_eq!(turns(&desk), ["I was charged twice", "It was on the 3rd"]);

        desk.accept("ann", "h1").expect("accepted");
        let refused = desk
            .update_context("acme", "h1", 1, envelope(&["too late"]))
            .expect_err("accepted");
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    }
}
