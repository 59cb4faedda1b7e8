//! Context tokens: arbitrary strings, and valid tokens with bytes spliced
//! in, are verified without a panic, and nothing but the exact token signed
//! for this handoff and purpose is ever accepted.

#![no_main]

use baton_context_token::{Purpose, TokenSigner};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let signer = TokenSigner::new([7; 32]);
    let handoff = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    let valid = signer.sign(handoff, Purpose::ReadContext, (NOW + 60) as u32);
    let Some((&case, rest)) = data.split_first() else {
        return;
    };
    let candidate = if case % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        }
    } else {
        let Some((&at, splice)) = rest.split_first() else {
            return;
        };
        let mut token = valid.as_bytes().to_vec();
        let at = usize::from(at) * token.len() / 256;
        let end = (at + splice.len()).min(token.len());
        token.splice(at..end, splice.iter().copied());
        match String::from_utf8(token) {
            Ok(text) => text,
            Err(_) => return,
        }
    };
    if signer
        .verify(&candidate, handoff, Purpose::ReadContext, NOW)
        .is_ok()
    {
        assert_eq!(candidate, valid, "an altered token was accepted");
    }
    // Never for another handoff, nor after expiry.
    let other = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002);
    assert!(
        signer
            .verify(&candidate, other, Purpose::ReadContext, NOW)
            .is_err()
    );
    assert!(
        signer
            .verify(&candidate, handoff, Purpose::ReadContext, NOW + 61)
            .is_err()
    );
});
