//! The rules of plain values the domain checks (route targets' numbers, URIs
//! and names; the size limits). Checking a whole request reads its protobuf
//! message, so it is the edge's (`crate::api::validate`); these rules name
//! no message, which the request-validation crate's own test keeps true.

pub use baton_request_validation::rules::{Limits, is_e164, is_name, is_sip_uri, mask_number};
