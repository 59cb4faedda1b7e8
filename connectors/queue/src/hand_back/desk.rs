//! Hand-back at the desk: the same checks and records as a wrap-up, and
//! the instruction for the AI kept with the contact until the transfer
//! reports it.

use super::{Desk, DeskFailure, now_millis, wrap_up_disposition};

/// The most an instruction for the AI may hold; like the notes, it is read
/// by a machine, not shown in a list.
const MAX_INSTRUCTION_BYTES: usize = 4096;

impl Desk {
    /// The agent connected to `handoff_id` hands the customer back to the
    /// AI: a disposition (required), notes and an instruction (optional).
    pub fn hand_back(
        &self,
        agent: &str,
        handoff_id: &str,
        disposition: &str,
        notes: &str,
        instruction: &str,
    ) -> Result<(), DeskFailure> {
        let disposition = wrap_up_disposition(disposition, notes)?;
        if instruction.len() > MAX_INSTRUCTION_BYTES {
            return Err(DeskFailure::Invalid(format!(
                "instruction: at most {MAX_INSTRUCTION_BYTES} bytes"
            )));
        }
        let mut inner = self.lock();
        // A callback's customer is on the agent's own line, not on a
        // transfer the AI runtime could take back.
        if inner
            .queues
            .contact(handoff_id)
            .is_some_and(|c| c.callback.is_some())
        {
            return Err(DeskFailure::Invalid(
                "a callback cannot be handed back to the AI; wrap it up".into(),
            ));
        }
        let now = now_millis();
        let handled =
            inner
                .queues
                .hand_back(agent, handoff_id, &disposition, notes, instruction, now)?;
        inner.record_ended(agent, handoff_id, &disposition, notes, handled, now)?;
        self.commit(&mut inner);
        Ok(())
    }
}
