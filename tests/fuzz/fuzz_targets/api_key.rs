//! API keys as callers send them, and keys files as operators write them:
//! never a panic; a key that parses has the documented shape.

#![no_main]

use baton_auth::api_key::{self, ApiKey, KeysFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = ApiKey::parse(text) {
        assert!(text.starts_with(api_key::PREFIX));
        assert_eq!(text.len(), api_key::KEY_CHARS);
        assert!(api_key::is_valid_id(key.id()));
        assert!(text[api_key::PREFIX.len()..].starts_with(key.id()));
    }
    if let Ok(file) = KeysFile::parse(text) {
        // What was accepted is written back and read again unchanged.
        let written = toml::to_string(&file).expect("serialises");
        assert_eq!(KeysFile::parse(&written).expect("reads back"), file);
    }
});
