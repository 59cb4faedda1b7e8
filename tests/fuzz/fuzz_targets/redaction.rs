//! Free-text redaction: any text is redacted without a panic, and no value
//! the detectors found in it is left anywhere in the redacted text (not
//! where it was found, nor repeated elsewhere).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let found = baton_redaction::find(text);
    let redacted = baton_redaction::redact(text);
    for finding in &found {
        let value = &text[finding.range.clone()];
        assert!(
            !redacted.text.contains(value),
            "{:?} {value:?} is still in {:?}",
            finding.kind,
            redacted.text
        );
    }
    assert_eq!(redacted.changed(), !found.is_empty());
    // Findings are in order and apart.
    for pair in found.windows(2) {
        assert!(pair[0].range.end <= pair[1].range.start);
    }
});
