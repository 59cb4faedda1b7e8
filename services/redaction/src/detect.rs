//! One detector per kind of value. Each returns the byte ranges of what
//! it found in the text; `lib.rs` merges them. Patterns find candidates,
//! then a check (Luhn, mod 97, a check letter, a calendar, a keyword
//! nearby) keeps only values that are what they look like.

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::checks;

fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this file, checked by its tests.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("a valid pattern")
}

macro_rules! pattern {
    ($(#[$doc:meta])* $name:ident, $pattern:literal) => {
        $(#[$doc])*
        static $name: LazyLock<Regex> = LazyLock::new(|| regex($pattern));
    };
}

pattern!(
    EMAIL,
    r"(?i)[a-z0-9_%+\-](?:[a-z0-9._%+\-]*[a-z0-9_%+\-])?@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}"
);
pattern!(IBAN, r"(?i)\b[a-z]{2}\d{2}(?: ?[a-z0-9]){11,40}\b");
pattern!(
    /// Digit groups separated by one space or dash.
    DIGIT_RUN,
    r"\b\d+(?:[ \-]\d+)*\b");
pattern!(SSN, r"\b(\d{3})-(\d{2})-(\d{4})\b");
pattern!(
    /// Nine digits named as an SSN, with or without separators.
    SSN_NAMED,
    r"(?i)\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:is|:|#)?\s*(\d{3}[ \-]?\d{2}[ \-]?\d{4})\b"
);
pattern!(
    NINO,
    r"\b([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
);
pattern!(DNI, r"\b(\d{8})-?([A-Z])\b");
pattern!(NIE, r"\b([XYZ])-?(\d{7})-?([A-Z])\b");
pattern!(
    DOB_KEYWORD,
    r"(?i)\b(?:born|dob\b|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|birthday)"
);
pattern!(DATE_ISO, r"\b(\d{4})[\-/.](\d{1,2})[\-/.](\d{1,2})\b");
pattern!(
    DATE_NUMERIC,
    r"\b(\d{1,2})[\-/.](\d{1,2})[\-/.](\d{4}|\d{2})\b"
);
pattern!(
    DATE_DAY_MONTH,
    r"(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+\d{4}\b"
);
pattern!(
    DATE_MONTH_DAY,
    r"(?i)\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+\d{4}\b"
);
pattern!(PHONE_INTERNATIONAL, r"\+\d[\d .\-()]{6,24}\d");
pattern!(
    PHONE_NANP,
    r"(?:\+?1[ .\-]?)?\(?\b[2-9]\d{2}\)?[ .\-]?[2-9]\d{2}[ .\-]\d{4}\b"
);
pattern!(PHONE_TRUNK, r"\b0\d{1,4}(?:[ .\-]?\d{2,4}){2,4}\b");

/// How far after a date-of-birth keyword its date may start, in bytes
/// ("DOB: ", "born on the ", "date of birth is ").
const DOB_REACH: usize = 24;

pub(crate) fn emails(text: &str) -> Vec<Range<usize>> {
    EMAIL.find_iter(text).map(|m| m.range()).collect()
}

/// IBANs, written compact or in groups of four: the longest run of groups
/// from the candidate's start that passes mod 97 (a candidate may run on
/// into the words after it).
pub(crate) fn ibans(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    for candidate in IBAN.find_iter(text) {
        let groups = groups(candidate.as_str(), |c| c == ' ');
        for end in (0..groups.len()).rev() {
            let span = candidate.start()..candidate.start() + groups[end].end;
            let compact: String = text[span.clone()].chars().filter(|c| *c != ' ').collect();
            if checks::iban(&compact) {
                found.push(span);
                break;
            }
        }
    }
    found
}

/// Card numbers: 13 to 19 digits, in one group or in groups separated by
/// single spaces or dashes, passing the Luhn check. Within a run of digit
/// groups (a card number followed by a year, say) the longest passing
/// window of whole groups is taken, left to right.
pub(crate) fn cards(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    for run in DIGIT_RUN.find_iter(text) {
        let groups = groups(run.as_str(), |c| c == ' ' || c == '-');
        let mut first = 0;
        while first < groups.len() {
            let mut best = None;
            let mut digits = Vec::new();
            for (last, group) in groups.iter().enumerate().skip(first) {
                digits.extend_from_slice(&run.as_str().as_bytes()[group.clone()]);
                if digits.len() > 19 {
                    break;
                }
                if digits.len() >= 13 && checks::luhn(&digits) {
                    best = Some(last);
                }
            }
            match best {
                Some(last) => {
                    found.push(run.start() + groups[first].start..run.start() + groups[last].end);
                    first = last + 1;
                }
                None => first += 1,
            }
        }
    }
    found
}

/// US Social Security numbers (AAA-GG-SSSS, or nine digits after "SSN" or
/// "social security number"), UK National Insurance numbers (AB 12 34 56
/// C), and Spanish DNI (12345678Z) and NIE (X1234567L) numbers with their
/// check letter.
pub(crate) fn national_ids(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    for captures in SSN.captures_iter(text) {
        let part = |i| number(&captures, i);
        if checks::ssn(part(1), part(2), part(3)) {
            found.push(whole(&captures));
        }
    }
    for captures in SSN_NAMED.captures_iter(text) {
        found.extend(captures.get(1).map(|m| m.range()));
    }
    for captures in NINO.captures_iter(text) {
        if captures
            .get(1)
            .is_some_and(|m| checks::nino_prefix(m.as_str()))
        {
            found.push(whole(&captures));
        }
    }
    for captures in DNI.captures_iter(text) {
        if letter(&captures, 2) == Some(checks::dni_letter(number(&captures, 1))) {
            found.push(whole(&captures));
        }
    }
    for captures in NIE.captures_iter(text) {
        let prefix = match captures.get(1).map(|m| m.as_str()) {
            Some("X") => 0,
            Some("Y") => 1,
            _ => 2,
        };
        let value = prefix * 10_000_000 + number(&captures, 2);
        if letter(&captures, 3) == Some(checks::dni_letter(value)) {
            found.push(whole(&captures));
        }
    }
    found
}

/// Dates of birth: a calendar date (2024-03-15, 15.03.1984, 03/15/1984,
/// 15/03/84, 15 March 1984, March 15, 1984) starting within
/// [`DOB_REACH`] bytes after "born", "DOB", "D.O.B.", "date of birth",
/// "birth date" or "birthday", with no digit in between. A date without
/// such a keyword before it (an invoice date) is left alone.
pub(crate) fn dates_of_birth(text: &str) -> Vec<Range<usize>> {
    let keywords: Vec<usize> = DOB_KEYWORD.find_iter(text).map(|m| m.end()).collect();
    if keywords.is_empty() {
        return Vec::new();
    }
    let mut dates = Vec::new();
    for captures in DATE_ISO.captures_iter(text) {
        if checks::day_month(number(&captures, 3), number(&captures, 2)) {
            dates.push(whole(&captures));
        }
    }
    for captures in DATE_NUMERIC.captures_iter(text) {
        let (a, b) = (number(&captures, 1), number(&captures, 2));
        // Day first (EU) or month first (US): either reading will do.
        if checks::day_month(a, b) || checks::day_month(b, a) {
            dates.push(whole(&captures));
        }
    }
    for captures in DATE_DAY_MONTH.captures_iter(text) {
        if number(&captures, 1) <= 31 {
            dates.push(whole(&captures));
        }
    }
    for captures in DATE_MONTH_DAY.captures_iter(text) {
        if number(&captures, 2) <= 31 {
            dates.push(whole(&captures));
        }
    }
    dates.retain(|date| {
        keywords.iter().any(|&end| {
            end <= date.start
                && date.start - end <= DOB_REACH
                && !text[end..date.start].bytes().any(|b| b.is_ascii_digit())
        })
    });
    dates
}

/// Phone numbers: international (`+` and 8 to 15 digits, separators
/// allowed), North American ((555) 123-4567, 555-123-4567, 555.123.4567,
/// with or without +1), and national numbers with a trunk 0 (020 7946
/// 0018, 06 12 34 56 78, 030 1234567: 10 or 11 digits, one kind of
/// separator throughout).
pub(crate) fn phones(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    for candidate in PHONE_INTERNATIONAL.find_iter(text) {
        let before = text[..candidate.start()].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '+') {
            continue;
        }
        // As many digit groups as make at most 15 digits: the candidate
        // may run on into a number written after it.
        let mut digits = 0;
        let mut end = None;
        for group in groups(candidate.as_str(), |c| !c.is_ascii_digit()) {
            digits += group.len();
            if digits > 15 {
                break;
            }
            end = Some(group.end);
        }
        if let Some(end) = end {
            let span = candidate.start()..candidate.start() + end;
            if count_digits(&text[span.clone()]) >= 8 {
                found.push(span);
            }
        }
    }
    found.extend(PHONE_NANP.find_iter(text).map(|m| m.range()));
    for candidate in PHONE_TRUNK.find_iter(text) {
        let value = candidate.as_str();
        let mut separators = value.chars().filter(|c| !c.is_ascii_digit());
        let first = separators.next();
        if (10..=11).contains(&count_digits(value)) && separators.all(|c| Some(c) == first) {
            found.push(candidate.range());
        }
    }
    found
}

/// The byte ranges within `text` of its groups: maximal runs of
/// characters that are not separators.
fn groups(text: &str, separator: impl Fn(char) -> bool) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (separator(c), start) {
            (true, Some(from)) => {
                groups.push(from..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(from) = start {
        groups.push(from..text.len());
    }
    groups
}

fn count_digits(text: &str) -> usize {
    text.bytes().filter(u8::is_ascii_digit).count()
}

fn whole(captures: &Captures<'_>) -> Range<usize> {
    captures.get(0).map(|m| m.range()).unwrap_or_default()
}

/// Capture `i` as a number; 0 when absent or too long to be one.
fn number(captures: &Captures<'_>, i: usize) -> u32 {
    captures
        .get(i)
        .and_then(|m| m.as_str().parse().ok())
        .unwrap_or_default()
}

fn letter(captures: &Captures<'_>, i: usize) -> Option<char> {
    captures.get(i).and_then(|m| m.as_str().chars().next())
}
