//! The rules of plain values: the size limits of what a handoff carries,
//! and the syntax of phone numbers, SIP URIs, names and language tags.
//! Nothing here names a protobuf message (a test below checks), so the
//! control service's domain uses these rules without the wire; the checks
//! of whole requests, which do name the messages, are the rest of this crate.

use serde::Deserialize;

use crate::text::MAX_NAME_BYTES;

/// Size limits on what a handoff may carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest encoded request of any call, in bytes: tonic refuses a larger
    /// one from its frame header, before reading it (RESOURCE_EXHAUSTED).
    pub max_request_bytes: usize,
    /// Largest encoded response, in bytes: the server's encoding limit, and
    /// the byte budget of a ListHandoffs page (which holds at least one
    /// handoff; a handoff larger than this cannot be returned). At least
    /// `max_request_bytes` + 16 KiB, room for what the service adds to the
    /// largest handoff it accepts.
    pub max_response_bytes: usize,
    /// Longest summary, in bytes.
    pub max_summary_bytes: usize,
    /// Most transcript turns.
    pub max_transcript_turns: usize,
    /// Longest transcript turn, in bytes.
    pub max_turn_bytes: usize,
    /// Most entities.
    pub max_entities: usize,
    /// Longest entity value, in bytes.
    pub max_entity_value_bytes: usize,
    /// Most attempts listed.
    pub max_attempts: usize,
    /// Longest agent notes, in bytes.
    pub max_notes_bytes: usize,
    /// Most WatchHandoff streams one tenant may have open at once.
    pub max_watch_streams_per_tenant: usize,
    /// Most WatchHandoff streams open at once on one replica; beyond it
    /// WatchHandoff answers RESOURCE_EXHAUSTED with RetryInfo.
    pub max_watch_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 256 * 1024,
            max_response_bytes: 256 * 1024 + RESPONSE_HEADROOM_BYTES,
            max_summary_bytes: 4 * 1024,
            max_transcript_turns: 500,
            max_turn_bytes: 4 * 1024,
            max_entities: 100,
            max_entity_value_bytes: 1024,
            max_attempts: 50,
            max_notes_bytes: 8 * 1024,
            max_watch_streams_per_tenant: 100,
            max_watch_streams: 10_000,
        }
    }
}

/// What the service adds to a request in the handoff it returns (ids,
/// times, plan, events' details): `max_response_bytes` is at least
/// `max_request_bytes` plus this.
pub const RESPONSE_HEADROOM_BYTES: usize = 16 * 1024;

/// `+` then 2 to 15 digits, the first not zero (ITU-T E.164).
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// `+4930123456` as `+••••••3456`: all but the last four digits of a
/// customer's number hidden, for anything shown to someone who does not
/// dial it.
pub fn mask_number(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen + 4 <= digits { '•' } else { c }
        })
        .collect()
}

/// A `sip:`/`sips:` URI with a host, parsed by rsip, with nothing in it that
/// could break a SIP message it is copied into.
pub fn is_sip_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) || uri.len() > 512 {
        return false;
    }
    if uri
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"'))
    {
        return false;
    }
    match rsip::Uri::try_from(uri) {
        Ok(parsed) => !parsed.host_with_port.host.to_string().is_empty(),
        Err(_) => false,
    }
}

/// A queue, skill or route name: 1-128 ASCII letters, digits, `.`, `_` or `-`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A BCP 47 language tag by its syntax: subtags of 1 to 8 ASCII letters or
/// digits joined by '-', 35 bytes at most (no registry lookup).
pub fn is_language_tag(tag: &str) -> bool {
    tag.len() <= 35
        && tag.split('-').all(|part| {
            (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        for good in ["+14155550100", "+442079460000", "+49"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "14155550100",
            "+0123",
            "+1",
            "+1415555010012345",
            "+1 415",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn sip_uris() {
        for good in [
            "sip:agent@pbx.example.com",
            "sips:agent@10.0.0.1:5061",
            "sip:+14155550100@trunk.example.com;user=phone",
            "sip:queue@127.0.0.1:5070;transport=tcp",
        ] {
            assert!(is_sip_uri(good), "{good}");
        }
        for bad in [
            "http://example.com",
            "agent@pbx",
            "sip:agent@pbx\r\nVia: injected",
            "sip:<agent@pbx>",
            "sip:",
        ] {
            assert!(!is_sip_uri(bad), "{bad}");
        }
    }

    /// The control service's domain relies on this module being free of
    /// the wire: a message crate named here fails.
    #[test]
    fn the_rules_name_no_protobuf_message() {
        let source = include_str!("rules.rs");
        // Spelled in halves so that this test does not match itself.
        for word in [concat!("baton_", "proto"), concat!("pro", "st")] {
            assert!(!source.contains(word), "rules.rs names {word}");
        }
    }
}
