//! Hand-back in the queue's domain: like a wrap-up (the handle time feeds
//! the estimate, the agent is available again), and the contact remembers
//! that the customer goes back to the AI, with the agent's instruction, so
//! that the transfer ends HANDED_BACK instead of COMPLETED, also after a
//! restart of the connector (the phase is saved with the contact).

use std::time::Duration;

use super::{DeskError, Millis, Phase, Queues};

impl Queues {
    /// The agent connected to `handoff_id` hands the customer back to the
    /// AI with a disposition, notes and an instruction (possibly empty).
    pub fn hand_back(
        &mut self,
        agent_id: &str,
        handoff_id: &str,
        disposition: &str,
        notes: &str,
        instruction: &str,
        now: Millis,
    ) -> Result<Duration, DeskError> {
        let handled = self.wrap_up(agent_id, handoff_id, disposition, notes, now)?;
        if let Some(Phase::Completed { hand_back, .. }) =
            self.contacts.get_mut(handoff_id).map(|c| &mut c.phase)
        {
            *hand_back = Some(instruction.to_owned());
        }
        Ok(handled)
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::tests::{SECOND, TENANT, contact_of, queues, sign_in_to};
    use crate::domain::{AgentState, Phase, Queues};

    /// Ann is connected to handoff "h1".
    fn connected_queue() -> (Queues, String) {
        let mut q = queues();
        sign_in_to(&mut q, TENANT, "ann", &["support"], 0);
        sign_in_to(&mut q, TENANT, "bob", &["support"], 0);
        q.enqueue(contact_of(TENANT, "h1", "support"), SECOND)
            .expect("enqueue");
        q.route(SECOND);
        let offered = crate::domain::tests::offered_to(&q, "h1").expect("offered");
        if offered != "ann" {
            q.decline(&offered, "h1", SECOND).expect("decline");
            q.route(SECOND);
        }
        q.accept("ann", "h1", 2 * SECOND).expect("accept");
        (q, "h1".to_owned())
    }

    #[test]
    fn a_hand_back_ends_the_contact_with_the_instruction_and_frees_the_agent() {
        let (mut q, id) = connected_queue();
        q.hand_back(
            "ann",
            &id,
            "verified",
            "dob ok",
            "finish the address change",
            90 * SECOND,
        )
        .expect("hand back");
        let contact = q.contact(&id).expect("contact");
        assert_eq!(
            contact.phase,
            Phase::Completed {
                agent: "ann".into(),
                disposition: "verified".into(),
                notes: "dob ok".into(),
                judgements: Default::default(),
                hand_back: Some("finish the address change".into()),
            }
        );
        assert_eq!(q.agent("ann").expect("agent").state, AgentState::Available);
    }

    #[test]
    fn only_the_connected_agent_can_hand_back() {
        let (mut q, id) = connected_queue();
        assert!(
            q.hand_back("bob", &id, "verified", "", "", 90 * SECOND)
                .is_err()
        );
        assert!(
            q.hand_back("ann", "nobody", "verified", "", "", 90 * SECOND)
                .is_err()
        );
        q.hand_back("ann", &id, "verified", "", "", 90 * SECOND)
            .expect("hand back");
        assert!(
            q.hand_back("ann", &id, "verified", "", "", 91 * SECOND)
                .is_err(),
            "once"
        );
    }

    #[test]
    fn a_saved_plain_wrap_up_reads_back_without_a_hand_back() {
        let saved = r#"{"phase":"completed","agent":"ann","disposition":"resolved"}"#;
        let phase: Phase = serde_json::from_str(saved).expect("old phase");
        assert!(matches!(
            phase,
            Phase::Completed {
                hand_back: None,
                ..
            }
        ));
    }
}
