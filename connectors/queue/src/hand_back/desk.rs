//! Hand-back at the desk: the same checks and records as a wrap-up, and
//! the instruction for the AI kept with the contact until the transfer
//! reports it.

use super::{Desk, DeskFailure, bounded, now_millis};
use crate::domain::QueueKey;

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
        let disposition = bounded(disposition, 64).ok_or_else(|| {
            DeskFailure::Invalid("disposition: required, at most 64 bytes".into())
        })?;
        if notes.len() > 4096 {
            return Err(DeskFailure::Invalid("notes: at most 4096 bytes".into()));
        }
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
        if let Some(contact) = inner.queues.contact(handoff_id).cloned() {
            inner
                .store
                .record_handle_time(&QueueKey::of(&contact), handled.as_millis() as u64)?;
            inner
                .store
                .record_wrap_up(&contact, agent, &disposition, notes, now)?;
        }
        self.commit(&mut inner);
        Ok(())
    }
}
