//! What a handoff carries for the human: the conversation and context the
//! AI runtime sent, the signed reference to them, and what each of a
//! connector's mechanisms can carry.
//!
//! The service only stores and forwards the conversation and the context,
//! and connectors' limits are counted in their encoded bytes, so the domain
//! keeps them as the encoded bytes they arrived as: no copy of the contract's
//! message tree to keep in step with it, and no decoding on paths that only
//! store or forward them. The edges decode them (`convert`), where a
//! field is read: the screen pop, RevealEntity, the envelope sent to a
//! connector.

use std::fmt;

macro_rules! encoded_payload {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Bytes in the contract's encoding, as the edges produced them.
            pub fn from_bytes(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }

            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }
        }

        /// The length only: the payload holds what the customer said.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({} bytes)", stringify!($name), self.0.len())
            }
        }
    };
}

encoded_payload!(
    /// A `baton.type.v1.Conversation`, encoded: the channel, the call's
    /// references, the language.
    EncodedConversation
);

encoded_payload!(
    /// A `baton.type.v1.HandoffContext`, encoded: summary, intent,
    /// entities, transcript, what the AI tried, why it escalates.
    EncodedContext
);

/// The signed reference to a handoff's context that every transfer
/// carries, whatever else fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextReference {
    pub handoff_id: String,
    pub token: String,
    pub context_url: String,
    pub screen_pop_url: String,
}

/// How a connector can carry context to the human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextMechanism {
    SipUserToUser,
    SipHeaders,
    ScreenPopUrl,
    TaskAttributes,
    Webhook,
    /// The whole structured context, in the transfer request itself.
    Structured,
}

/// One mechanism a connector has and how much it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextCapability {
    pub mechanism: ContextMechanism,
    /// 0: no limit.
    pub max_bytes: u32,
}
