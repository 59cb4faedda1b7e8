//! The customer's own words: quoted text is someone else's (a name, a
//! title, what a friend said) unless the customer is quoting themselves.

use super::{
    Origin, Token, clauses_of, is_double_quote, is_single_quote, push_folded, spanned_clauses,
    strip_origins,
};
use crate::lexicon::lexicon;

/// First person saying or typing something: a quote after this is the
/// customer's own words ("I said 'agent'!"), not someone else's.
fn ends_with_first_person_saying(folded_before: &str) -> bool {
    let text = &lexicon().text;
    let words: Vec<String> = clauses_of(folded_before).into_iter().flatten().collect();
    let tail = &words[words.len().saturating_sub(4)..];
    let first_person = tail.iter().any(|w| text.first_person.contains(w));
    let saying = tail.iter().any(|w| text.quote_intro_verbs.contains(w));
    let first_person_verb = tail
        .last()
        .is_some_and(|w| text.first_person_quote_verbs.contains(w));
    (first_person && saying) || first_person_verb
}

/// Clauses of the customer's own words: text in quotation marks is dropped
/// (someone else's words, a name, a title) unless the customer is quoting
/// themselves. An unclosed quote is treated as ordinary text.
pub(crate) fn own_clauses(text: &str) -> Vec<Vec<String>> {
    strip_origins(own_spanned_clauses(text))
}

/// [`own_clauses`] with where each word came from in `text`.
pub(crate) fn own_spanned_clauses(text: &str) -> Vec<Vec<Token>> {
    let mut folded: Vec<(char, Origin)> = Vec::with_capacity(text.len());
    let mut one = String::new();
    for (at, c) in text.char_indices() {
        one.clear();
        push_folded(c, &mut one);
        let origin = Some((at, at + c.len_utf8()));
        folded.extend(one.chars().map(|f| (f, origin)));
    }
    let chars: Vec<char> = folded.iter().map(|&(c, _)| c).collect();
    // (quoted, text)
    let mut segments: Vec<(bool, Vec<(char, Origin)>)> = vec![(false, Vec::new())];
    let mut quoted = false;
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let alnum = |o: Option<char>| o.is_some_and(char::is_alphanumeric);
        let toggles = is_double_quote(c) || (is_single_quote(c) && !(alnum(prev) && alnum(next)));
        if toggles {
            quoted = !quoted;
            segments.push((quoted, Vec::new()));
        } else if let Some(last) = segments.last_mut() {
            last.1.push(folded[i]);
        }
    }
    if quoted && let Some(last) = segments.last_mut() {
        last.0 = false;
    }
    let inserted = |text: &str| text.chars().map(|c| (c, None)).collect::<Vec<_>>();
    let mut kept: Vec<(char, Origin)> = Vec::with_capacity(folded.len());
    for (quoted, segment) in segments {
        if !quoted {
            kept.extend(segment);
        } else if ends_with_first_person_saying(&kept.iter().map(|&(c, _)| c).collect::<String>()) {
            kept.extend(inserted(" , "));
            kept.extend(segment);
            kept.extend(inserted(" , "));
        } else {
            kept.extend(inserted(" . "));
        }
    }
    spanned_clauses(&kept)
}
