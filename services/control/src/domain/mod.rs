//! The control service's domain: plain Rust, no gRPC, HTTP or SQL, so that
//! every rule here is tested without a network. Nothing here names the
//! generated protobuf types, prost or tonic (a test below checks): the
//! edges convert (`crate::convert`).

pub mod availability;
pub mod callback;
pub mod chat;
pub mod closed_message;
pub mod context;
pub mod decision;
pub mod hours;
pub mod message;
pub mod model;
pub mod outcome;
pub mod routing;
pub mod state;
pub mod target;
pub mod validate;

pub use context::{
    ContextCapability, ContextMechanism, ContextReference, EncodedContext, EncodedConversation,
};
pub use decision::{EscalationDecision, EscalationKind, EscalationLayer, FiredTrigger};
pub use model::*;
pub use state::{EventKind, HandoffState, IllegalTransition};
pub use target::{ConcreteTarget, PlannedTarget, RequestedTarget, TargetKind, TransferMode};

#[cfg(test)]
mod tests {
    /// The domain stays free of the wire: a generated type, prost or tonic
    /// named in any of its files fails this test.
    #[test]
    fn the_domain_uses_no_generated_type_nor_the_wire_crates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
        let mut checked = 0;
        let mut dirs = vec![dir.clone()];
        while let Some(next) = dirs.pop() {
            for entry in std::fs::read_dir(&next).expect("a domain directory") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let source = std::fs::read_to_string(&path).expect("a source file");
                // Paths, not words: a comment may name them. Spelled in halves
                // so that this file does not match itself.
                for word in [
                    concat!("baton_", "proto"),
                    concat!("pro", "st::"),
                    concat!("pro", "st_"),
                    concat!("ton", "ic::"),
                    concat!("ton", "ic_"),
                ] {
                    assert!(!source.contains(word), "{} names {word}", path.display());
                }
                // The request-validation crate reads the messages; only its
                // plain rules may be named here.
                let validation = concat!("baton_request_", "validation");
                for (at, _) in source.match_indices(validation) {
                    assert!(
                        source[at + validation.len()..].starts_with("::rules::"),
                        "{} names {validation} beyond its rules",
                        path.display()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 7, "only {checked} files in {}", dir.display());
    }
}
