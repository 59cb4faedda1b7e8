//! Evidence cut from the customer's original text, by where each token
//! came from, with digits masked.

use super::{Token, is_single_quote};

/// The original text of tokens `start..=end` of `clause`, digits masked;
/// None when a token has no origin.
pub(crate) fn original_span(
    text: &str,
    clause: &[Token],
    start: usize,
    end: usize,
) -> Option<String> {
    let (from, _) = clause.get(start)?.1?;
    let (_, to) = clause.get(end)?.1?;
    let (from, to) = whole_words(text, from, to);
    text.get(from..to).map(mask_digits)
}

/// Widens `from..to` to whole words of `text`: a token split at an
/// apostrophe ("quelqu" of "quelqu'un") is quoted as the word it is part of.
fn whole_words(text: &str, mut from: usize, mut to: usize) -> (usize, usize) {
    let in_word = |before: Option<char>, c: char, after: Option<char>| {
        c.is_alphanumeric()
            || (is_single_quote(c)
                && before.is_some_and(char::is_alphanumeric)
                && after.is_some_and(char::is_alphanumeric))
    };
    loop {
        let mut ahead = text[to..].chars();
        let (Some(c), after) = (ahead.next(), ahead.next()) else {
            break;
        };
        if !in_word(text[..to].chars().next_back(), c, after) {
            break;
        }
        to += c.len_utf8();
    }
    loop {
        let mut behind = text[..from].chars();
        let (Some(c), before) = (behind.next_back(), behind.next_back()) else {
            break;
        };
        if !in_word(before, c, text[from..].chars().next()) {
            break;
        }
        from -= c.len_utf8();
    }
    (from, to)
}

/// Replaces digits so evidence never carries an account or card number.
pub(crate) fn mask_digits(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}
