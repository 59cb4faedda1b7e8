//! Masks what looks like customer data in free text before it is written
//! to a log line, a span or an error message: card numbers (Luhn-valid,
//! 13–19 digits), national ids in the US SSN shape (`123-45-6789`), email
//! addresses and international phone numbers (`+` and 8–15 digits).
//!
//! Baton never logs context fields on purpose; this is the net under what
//! arrives as free text (a cancel reason, a connector's detail, a SIP
//! reason phrase) and under every log line, whoever wrote it.

use std::borrow::Cow;

/// What replaces each kind of value.
const CARD: &str = "[card]";
const NATIONAL_ID: &str = "[national-id]";
const EMAIL: &str = "[email]";
const PHONE: &str = "[phone]";

/// `text` with every value that looks like customer data masked; borrowed
/// when there is nothing to mask.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text
        .bytes()
        .any(|byte| byte.is_ascii_digit() || byte == b'@')
    {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        let found = if bytes[i] == b'@' {
            email_around(bytes, i).map(|(start, end)| (start, end, EMAIL))
        } else if at_token_start(bytes, i) {
            number_at(bytes, i)
        } else {
            None
        };
        match found {
            Some((start, end, mask)) if start >= copied => {
                out.push_str(&text[copied..start]);
                out.push_str(mask);
                copied = end;
                i = end;
                changed = true;
            }
            _ => i += 1,
        }
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Whether a number may start at `i`: not in the middle of a word or of a
/// longer number (ids such as `ACC-1234` or UUIDs stay whole).
fn at_token_start(bytes: &[u8], i: usize) -> bool {
    let starts = bytes[i].is_ascii_digit() || bytes[i] == b'+';
    starts && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-'))
}

/// A card number, national id or phone number starting at `start`.
fn number_at(bytes: &[u8], start: usize) -> Option<(usize, usize, &'static str)> {
    let plus = bytes[start] == b'+';
    let mut digits = Vec::new();
    let mut end = start + usize::from(plus);
    let mut last_digit_end = end;
    while end < bytes.len() && digits.len() < 20 {
        match bytes[end] {
            digit @ b'0'..=b'9' => {
                digits.push(digit - b'0');
                end += 1;
                last_digit_end = end;
            }
            // One separator between digit groups.
            b' ' | b'-' | b'.' | b'(' | b')'
                if end + 1 < bytes.len()
                    && bytes[end + 1].is_ascii_digit()
                    && last_digit_end == end =>
            {
                end += 1;
            }
            _ => break,
        }
    }
    let end = last_digit_end;
    // A longer run of letters or digits glued on is an identifier, not a number.
    if end < bytes.len() && bytes[end].is_ascii_alphanumeric() {
        return None;
    }
    let text = &bytes[start..end];
    if plus && (8..=15).contains(&digits.len()) {
        return Some((start, end, PHONE));
    }
    if !plus && is_ssn(text) {
        return Some((start, end, NATIONAL_ID));
    }
    if !plus && (13..=19).contains(&digits.len()) && matches!(digits[0], 2..=6) && luhn(&digits) {
        return Some((start, end, CARD));
    }
    None
}

fn is_ssn(text: &[u8]) -> bool {
    text.len() == 11
        && text.iter().enumerate().all(|(i, byte)| match i {
            3 | 6 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        })
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, digit)| {
            let digit = u32::from(*digit);
            if i % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The email address around the `@` at `at`, if the text there is one.
fn email_around(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let local = |byte: u8| byte.is_ascii_alphanumeric() || b"._%+-".contains(&byte);
    let domain = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-';
    let mut start = at;
    while start > 0 && local(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < bytes.len() && domain(bytes[end]) {
        end += 1;
    }
    // Trailing dots end a sentence, not a domain.
    while end > at + 1 && bytes[end - 1] == b'.' {
        end -= 1;
    }
    let host = &bytes[at + 1..end];
    let dotted = host
        .iter()
        .position(|byte| *byte == b'.')
        .is_some_and(|dot| dot > 0 && dot + 1 < host.len());
    (start < at && dotted).then_some((start, end))
}

/// A `tracing_subscriber` writer that redacts every log line it writes.
#[derive(Debug, Clone)]
pub struct RedactingWriter<M>(pub M);

impl<'a, M> tracing_subscriber::fmt::MakeWriter<'a> for RedactingWriter<M>
where
    M: tracing_subscriber::fmt::MakeWriter<'a>,
{
    type Writer = Redacted<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacted(self.0.make_writer())
    }
}

/// One redacting write; the formatter writes each event in one call.
#[derive(Debug)]
pub struct Redacted<W>(W);

impl<W: std::io::Write> std::io::Write for Redacted<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_data_is_masked() {
        let cases = [
            ("card 4111 1111 1111 1111 on file", "card [card] on file"),
            ("card 4111-1111-1111-1111.", "card [card]."),
            ("ssn 123-45-6789 given", "ssn [national-id] given"),
            ("mail jane.doe+x@example.co.uk.", "mail [email]."),
            ("call +1 415 555 0100 now", "call [phone] now"),
            ("call +14155550100", "call [phone]"),
            (
                "reason: customer (+44 20 7946 0958) asked",
                "reason: customer ([phone]) asked",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
        }
    }

    #[test]
    fn ids_times_and_counts_are_left_alone() {
        for text in [
            "handoff 0193a5b2-7c1e-7d2a-9f00-3b2c1d4e5f60 sequence=12",
            "time_ms=1732500000000 attempt 2 port 50051",
            "account ACC-99887766",
            "card-like but not Luhn 4111 1111 1111 1112",
            "version 1.2.3 at 127.0.0.1:5060",
            "user@localhost is not an address with a domain",
            "2026-11-25T01:02:03.123456Z INFO baton",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn nothing_to_mask_borrows() {
        assert!(matches!(redact("no digits here"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_writer_masks_whole_lines() {
        use std::io::Write;
        let mut out = Redacted(Vec::new());
        out.write_all(b"cancel reason=\"my card is 5500 0000 0000 0004\"\n")
            .expect("write");
        assert_eq!(
            String::from_utf8(out.0).expect("utf-8"),
            "cancel reason=\"my card is [card]\"\n"
        );
    }
}
