//! The data policy: what of a handoff's context crosses to which
//! connector, and in which form (`policy`), applied to the context before
//! anything leaves the control service for a connector, and recorded in
//! the audit log as a disclosure (`apply`). The context served through
//! the signed context URL stays complete: `reference` sends the human
//! there.

mod apply;
mod policy;

pub use apply::{Disclosed, MASKED_ENTITY, audit_detail, carries_fields, disclose};
pub use policy::{DataPolicy, DataPolicyConfig, FieldForms, Form, RoutePolicyConfig, Rules};
