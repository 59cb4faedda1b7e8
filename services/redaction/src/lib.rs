//! Free-text PII detection and masking: what the control service applies
//! to a handoff's summary, transcript and notes before they leave for a
//! connector whose data policy says `redacted`.
//!
//! Kinds found, and the rule for each (details on each detector):
//!
//! | kind | rule | placeholder |
//! | --- | --- | --- |
//! | card number | 13–19 digits, one group or groups split by single spaces or dashes, passing Luhn | `[card]` |
//! | national id | US SSN (`123-45-6789`, or 9 digits after "SSN"/"social security number"), UK National Insurance number (`AB 12 34 56 C`), Spanish DNI/NIE with their check letter | `[national_id]` |
//! | e-mail | `local@domain.tld` | `[email]` |
//! | phone | `+` and 8–15 digits; North American `(555) 123-4567`; national numbers with a trunk 0 and 10–11 digits (`020 7946 0018`) | `[phone]` |
//! | IBAN | country code, check digits, 11–30 more, compact or in groups, passing mod 97 | `[iban]` |
//! | date of birth | an ISO, EU, US or spelled-out date within 24 bytes after "born", "DOB", "date of birth", "birth date" or "birthday" | `[date_of_birth]` |
//!
//! Overlapping finds are masked as one (the kind listed first above
//! names it), so nothing of either is left. A value found once is masked
//! wherever else it appears in the same text, even where the context that
//! made it recognisable (a keyword, a boundary) is missing.
//!
//! What it does not promise: names, addresses and numbers in words are
//! not detected; a number that happens to pass a check (one 10-digit
//! order number in ten passes Luhn, but card numbers have 13 or more) and
//! national numbers starting with 0 may be masked although they are not
//! personal.

#![forbid(unsafe_code)]

mod checks;
mod detect;

use std::collections::BTreeMap;
use std::ops::Range;

/// A kind of personal value found in free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PiiKind {
    Card,
    NationalId,
    Email,
    Phone,
    Iban,
    DateOfBirth,
}

impl PiiKind {
    /// In the order overlapping finds are named.
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Iban,
        PiiKind::Card,
        PiiKind::NationalId,
        PiiKind::DateOfBirth,
        PiiKind::Phone,
    ];

    /// The kind's name in audit records and configuration.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Card => "card",
            PiiKind::NationalId => "national_id",
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Iban => "iban",
            PiiKind::DateOfBirth => "date_of_birth",
        }
    }

    /// What replaces a value of this kind.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Card => "[card]",
            PiiKind::NationalId => "[national_id]",
            PiiKind::Email => "[email]",
            PiiKind::Phone => "[phone]",
            PiiKind::Iban => "[iban]",
            PiiKind::DateOfBirth => "[date_of_birth]",
        }
    }

    fn detect(self, text: &str) -> Vec<Range<usize>> {
        match self {
            PiiKind::Card => detect::cards(text),
            PiiKind::NationalId => detect::national_ids(text),
            PiiKind::Email => detect::emails(text),
            PiiKind::Phone => detect::phones(text),
            PiiKind::Iban => detect::ibans(text),
            PiiKind::DateOfBirth => detect::dates_of_birth(text),
        }
    }
}

/// A personal value found in a text: its kind and where it is (byte
/// offsets). No `Debug` of the value itself: it stays in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: PiiKind,
    pub range: Range<usize>,
}

/// The personal values in `text`, in order, none overlapping.
pub fn find(text: &str) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    // Every kind but e-mail needs a digit (`\d` is any script's decimal
    // digit, all of which are numeric), an e-mail an `@`: most turns of a
    // conversation have neither, and are spared every pattern.
    let has_digit = text.chars().any(char::is_numeric);
    let has_at = text.contains('@');
    for kind in PiiKind::ALL {
        let possible = match kind {
            PiiKind::Email => has_at,
            _ => has_digit,
        };
        if !possible {
            continue;
        }
        for range in kind.detect(text) {
            merge(&mut found, Finding { kind, range });
        }
    }
    found.sort_by_key(|f| f.range.start);
    found
}

/// Adds `new` to `found`, joining it with every finding it overlaps; the
/// joined finding keeps the kind found first.
fn merge(found: &mut Vec<Finding>, mut new: Finding) {
    let mut i = 0;
    while i < found.len() {
        let old = &found[i];
        if old.range.start < new.range.end && new.range.start < old.range.end {
            let old = found.swap_remove(i);
            new = Finding {
                kind: old.kind,
                range: old.range.start.min(new.range.start)..old.range.end.max(new.range.end),
            };
            // The joined range may now overlap one seen before.
            i = 0;
        } else {
            i += 1;
        }
    }
    found.push(new);
}

/// A text with its personal values masked, and how many of each kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redacted {
    pub text: String,
    pub masked: BTreeMap<PiiKind, usize>,
}

impl Redacted {
    /// Whether anything was masked.
    pub fn changed(&self) -> bool {
        !self.masked.is_empty()
    }
}

/// `text` with every personal value [`find`] finds replaced by its kind's
/// placeholder, and every other occurrence of those values too.
pub fn redact(text: &str) -> Redacted {
    let found = find(text);
    let mut masked = BTreeMap::new();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for finding in &found {
        out.push_str(&text[copied..finding.range.start]);
        out.push_str(finding.kind.placeholder());
        *masked.entry(finding.kind).or_insert(0) += 1;
        copied = finding.range.end;
    }
    out.push_str(&text[copied..]);
    // Longest first, so that a value inside another is not masked first
    // and leaves the rest of the longer one. No value holds a bracket, so
    // a placeholder never completes a value anew.
    let mut values: Vec<(&str, PiiKind)> = found
        .iter()
        .map(|f| (&text[f.range.clone()], f.kind))
        .collect();
    values.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    for (value, kind) in values {
        let again = out.matches(value).count();
        if again > 0 {
            out = out.replace(value, kind.placeholder());
            *masked.entry(kind).or_insert(0) += again;
        }
    }
    Redacted { text: out, masked }
}

#[cfg(test)]
mod tests;
