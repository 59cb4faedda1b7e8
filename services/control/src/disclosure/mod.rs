//! The data policy: what of a handoff's context crosses to which
//! connector, and in which form (`policy`), applied to the context before
//! anything leaves the control service for a connector (`apply`), and
//! recorded as a disclosure (`record`) in the audit log and for the
//! connector, which may show it to a supervisor. The context served
//! through the signed context URL stays complete: `reference` sends the
//! human there.

mod apply;
mod policy;
mod record;

pub use apply::{CALLER_NUMBER, Disclosed, MASKED_ENTITY, disclose};
pub use policy::{DataPolicy, DataPolicyConfig, FieldForms, Form, RoutePolicyConfig, Rules};
pub use record::{Record, carries_fields};
