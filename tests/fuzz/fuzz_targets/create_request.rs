//! Arbitrary bytes decoded as a CreateHandoff request and validated: never
//! a panic, whatever the nesting, sizes or strings; a violation never
//! quotes a field's value.

#![no_main]

use std::time::Duration;

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_request_validation::{Limits, validate_create};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CreateHandoffRequest::decode(data) else {
        return;
    };
    let limits = Limits::default();
    if let Err(violations) = validate_create(&request, &limits, Duration::from_secs(600)) {
        assert!(!violations.is_empty());
        let summary = request
            .context
            .as_ref()
            .map(|context| context.summary.as_str())
            .unwrap_or_default();
        for violation in &violations {
            // A long, distinctive summary must never be echoed back.
            if summary.len() >= 16 {
                assert!(!violation.description.contains(summary), "{violation:?}");
            }
        }
    }
});
