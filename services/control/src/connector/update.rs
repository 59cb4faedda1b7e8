//! A running transfer's newer context (`UpdateTransfer`), in the port's
//! words: what the dispatcher sends after an applied UpdateHandoff, and
//! what the connector did with it.

use super::TransferContext;

/// The whole updated context of one transfer, fitted and disclosed as its
/// start was.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferUpdate {
    pub tenant: String,
    pub handoff_id: String,
    pub attempt: u32,
    pub context: TransferContext,
    /// The handoff's context version this context is.
    pub context_version: u64,
}

/// What the connector did with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The transfer now carries this version.
    Applied,
    /// It carries this version or a newer one already.
    Stale,
    /// The transfer has ended.
    AlreadyEnded,
    /// The connector has no such transfer.
    Unknown,
    /// The connector's answer named no outcome.
    Unstated,
}
