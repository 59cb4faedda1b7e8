//! Arbitrary bytes decoded as a CreateHandoff request and validated: never
//! a panic, whatever the nesting, sizes or strings; a violation never
//! quotes a value.

#![no_main]

use std::time::Duration;

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_request_validation::{Limits, validate_create};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// What the free text is replaced with: no description has a run of it.
const MARKER: char = '~';
const MARKER_RUN: &str = "~~~~~~~~";

fuzz_target!(|data: &[u8]| {
    let Ok(mut request) = CreateHandoffRequest::decode(data) else {
        return;
    };
    let limits = Limits::default();
    let max_timeout = Duration::from_secs(600);
    if let Err(violations) = validate_create(&request, &limits, max_timeout) {
        assert!(!violations.is_empty());
    }

    // The summary and the entity values (free text, possibly personal) are
    // replaced with a marker of the same length, which keeps every length
    // check as it was; no violation may then quote the marker. (Checking for
    // the original text instead would fail whenever the fuzzer makes it a
    // piece of a fixed description, such as "contains control characters".)
    let Some(context) = request.context.as_mut() else {
        return;
    };
    let mut marked = context.summary.len() >= MARKER_RUN.len();
    context.summary = MARKER.to_string().repeat(context.summary.len());
    for entity in &mut context.entities {
        marked |= entity.value.len() >= MARKER_RUN.len();
        entity.value = MARKER.to_string().repeat(entity.value.len());
    }
    if !marked {
        return;
    }
    if let Err(violations) = validate_create(&request, &limits, max_timeout) {
        for violation in &violations {
            assert!(!violation.description.contains(MARKER_RUN), "{violation:?}");
        }
    }
});
