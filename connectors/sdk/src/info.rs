use baton_proto::connector::v1::{ContextCapability, ContextMechanism, GetConnectorInfoResponse};
use baton_proto::types::v1::{TargetKind, TransferMode};

/// A connector's name, version and capabilities, built fluently.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorInfo {
    pub name: String,
    pub version: String,
    pub target_kinds: Vec<TargetKind>,
    pub transfer_modes: Vec<TransferMode>,
    pub context: Vec<(ContextMechanism, u32)>,
    /// Relays chat conversations (ConverseTransfer).
    pub chat: bool,
    /// Takes context updates for a running transfer (UpdateTransfer,
    /// through [`Connector::update`](crate::Connector::update)).
    pub context_updates: bool,
    /// Answers GetAvailability (through
    /// [`Connector::availability`](crate::Connector::availability)).
    pub availability: bool,
    /// Calls customers back (a transfer's [`callback`](crate::Transfer::callback)).
    pub callbacks: bool,
}

impl ConnectorInfo {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            target_kinds: Vec::new(),
            transfer_modes: Vec::new(),
            context: Vec::new(),
            chat: false,
            context_updates: false,
            availability: false,
            callbacks: false,
        }
    }

    pub fn target_kinds(mut self, kinds: impl IntoIterator<Item = TargetKind>) -> Self {
        self.target_kinds.extend(kinds);
        self
    }

    pub fn transfer_modes(mut self, modes: impl IntoIterator<Item = TransferMode>) -> Self {
        self.transfer_modes.extend(modes);
        self
    }

    /// Advertises the chat relay (ConverseTransfer): the connector
    /// implements [`Connector::converse`](crate::Connector::converse).
    pub fn chat(mut self) -> Self {
        self.chat = true;
        self
    }

    /// Adds a context mechanism and its size limit in bytes (0: none).
    pub fn context(mut self, mechanism: ContextMechanism, max_bytes: u32) -> Self {
        self.context.push((mechanism, max_bytes));
        self
    }

    /// Advertises that the connector takes context updates: implement
    /// [`Connector::update`](crate::Connector::update) too.
    pub fn context_updates(mut self) -> Self {
        self.context_updates = true;
        self
    }

    /// Advertises that the connector reports who is there to take a
    /// transfer (GetAvailability): implement
    /// [`Connector::availability`](crate::Connector::availability) too.
    pub fn availability(mut self) -> Self {
        self.availability = true;
        self
    }

    /// Advertises that the connector calls customers back: it holds a
    /// transfer with a [`callback`](crate::Transfer::callback) until a
    /// human takes it inside its window, then dials the customer
    /// ([`TransferEvents::callback_dialing`](crate::TransferEvents::callback_dialing)).
    /// A connector without it is refused such transfers (UNIMPLEMENTED).
    pub fn callbacks(mut self) -> Self {
        self.callbacks = true;
        self
    }

    pub fn to_proto(&self) -> GetConnectorInfoResponse {
        GetConnectorInfoResponse {
            name: self.name.clone(),
            version: self.version.clone(),
            target_kinds: self.target_kinds.iter().map(|k| *k as i32).collect(),
            transfer_modes: self.transfer_modes.iter().map(|m| *m as i32).collect(),
            context_capabilities: self
                .context
                .iter()
                .map(|(mechanism, max_bytes)| ContextCapability {
                    mechanism: *mechanism as i32,
                    max_bytes: *max_bytes,
                })
                .collect(),
            chat: self.chat,
            context_updates: self.context_updates,
            availability: self.availability,
            callbacks: self.callbacks,
        }
    }
}
