//! The human side of a chat, for the `chat.*` checks: the contract says
//! how a connector talks to the control service, not how its human writes
//! or reads, so whoever runs the kit against a chat connector gives it a
//! [`ChatHuman`] that drives that connector's platform (a desktop's API, a
//! platform's webhook).

use std::future::Future;
use std::pin::Pin;

/// What a [`ChatHuman`] answers.
pub type HumanFuture<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

/// A human on the connector's platform, in a chat transfer's conversation.
pub trait ChatHuman: Send + Sync {
    /// The human sends a message under the platform's id `id` in the chat
    /// of `handoff_id`'s transfer `attempt` (the connector passes it on as
    /// the draft's `client_message_id`).
    fn say<'a>(
        &'a self,
        handoff_id: &'a str,
        attempt: u32,
        id: &'a str,
        text: &'a str,
    ) -> HumanFuture<'a, ()>;

    /// The sequences of the conversation's entries the human has received
    /// so far (the ENDED one included), in the order received.
    fn received<'a>(&'a self, handoff_id: &'a str) -> HumanFuture<'a, Vec<u64>>;
}
