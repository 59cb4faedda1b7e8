//! Text normalisation shared by the detectors: lower case, a Latin-1 accent
//! fold, words, clauses, and removal of quoted speech.
//!
//! The fold is hand-written because the five supported languages only need
//! Latin-1 (plus œ), and a full Unicode normaliser would be the largest
//! dependency of the crate for a dozen letters.

use crate::lexicon::lexicon;

/// Pushes `c` lower-cased and accent-folded to ASCII when it is a Latin-1
/// letter; other characters are pushed lower-cased and unchanged.
pub(crate) fn push_folded(c: char, out: &mut String) {
    for l in c.to_lowercase() {
        let folded = match l {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
            'æ' => "ae",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ð' => "d",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            'þ' => "th",
            'ß' => "ss",
            'œ' => "oe",
            other => {
                out.push(other);
                continue;
            }
        };
        out.push_str(folded);
    }
}

/// Lower-cased, accent-folded copy of `text`.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_folded(c, &mut out);
    }
    out
}

fn is_double_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”' | '«' | '»' | '„' | '‟')
}

fn is_single_quote(c: char) -> bool {
    matches!(c, '\'' | '‘' | '’' | '‚' | '`')
}

fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ';' | ':' | ',' | '\n' | '…' | '(' | ')'
    )
}

/// Words that join two clauses with a change of mind ("I don't need X but I
/// want Y"), so negation does not leak across them.
fn is_clause_word(w: &str) -> bool {
    lexicon().text.clause_joins.contains(w)
}

/// Where a character or token came from: its byte range in the original
/// text, or None for what the normaliser inserted. Evidence is cut from the
/// original text by it, so that the customer's words are quoted as they
/// were written ("passez-moi quelqu'un"), not as tokens.
pub(crate) type Origin = Option<(usize, usize)>;

fn union(a: Origin, b: Origin) -> Origin {
    match (a, b) {
        (Some((s1, e1)), Some((s2, e2))) => Some((s1.min(s2), e1.max(e2))),
        (a, None) => a,
        (None, b) => b,
    }
}

fn origin_of(chars: &[(char, Origin)]) -> Origin {
    chars.iter().fold(None, |acc, &(_, o)| union(acc, o))
}

/// A token and where it came from.
type Token = (String, Origin);

/// Splits a raw word (may hold apostrophes) into tokens. English `n't`
/// becomes its own `not`, so negation has one spelling.
fn push_word(word: &mut Vec<(char, Origin)>, out: &mut Vec<Token>) {
    if word.is_empty() {
        return;
    }
    let text: String = word.iter().map(|&(c, _)| c).collect();
    if let Some(stem) = text.strip_suffix("n't") {
        let stem_chars = stem.chars().count();
        let stem = match stem {
            "ca" => "can",
            "wo" => "will",
            "sha" => "shall",
            s => s,
        };
        if !stem.is_empty() {
            out.push((stem.to_owned(), origin_of(&word[..stem_chars])));
        }
        out.push(("not".to_owned(), origin_of(&word[stem_chars..])));
    } else if text.contains('\'') {
        for part in word.split(|&(c, _)| c == '\'') {
            if !part.is_empty() {
                out.push((part.iter().map(|&(c, _)| c).collect(), origin_of(part)));
            }
        }
    } else {
        out.push((text, origin_of(word)));
    }
    word.clear();
}

/// Folded words of `text`, ignoring punctuation and quotes.
pub(crate) fn words(text: &str) -> Vec<String> {
    clauses_of(&fold(text)).into_iter().flatten().collect()
}

/// Tokenises already-folded text into clauses of words.
fn clauses_of(folded: &str) -> Vec<Vec<String>> {
    let chars: Vec<(char, Origin)> = folded.chars().map(|c| (c, None)).collect();
    strip_origins(spanned_clauses(&chars))
}

fn strip_origins(clauses: Vec<Vec<Token>>) -> Vec<Vec<String>> {
    clauses
        .into_iter()
        .map(|clause| clause.into_iter().map(|(word, _)| word).collect())
        .collect()
}

/// Tokenises folded characters into clauses of words, each with where it
/// came from. Numbers keep inner `.`/`,` (`0.00` stays one token, so a
/// price is never "zero zero").
fn spanned_clauses(folded: &[(char, Origin)]) -> Vec<Vec<Token>> {
    let chars: Vec<char> = folded.iter().map(|&(c, _)| c).collect();
    let mut clauses = Vec::new();
    let mut clause: Vec<Token> = Vec::new();
    let mut word: Vec<(char, Origin)> = Vec::new();
    let end_clause = |clause: &mut Vec<Token>, clauses: &mut Vec<Vec<Token>>| {
        if !clause.is_empty() {
            clauses.push(std::mem::take(clause));
        }
    };
    for (i, &c) in chars.iter().enumerate() {
        let origin = folded[i].1;
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let alnum = |o: Option<char>| o.is_some_and(char::is_alphanumeric);
        let digit = |o: Option<char>| o.is_some_and(|c| c.is_ascii_digit());
        if c.is_alphanumeric() {
            word.push((c, origin));
        } else if is_single_quote(c) && alnum(prev) && alnum(next) {
            word.push(('\'', origin));
        } else if matches!(c, '.' | ',' | ':') && digit(prev) && digit(next) {
            word.push((c, origin));
        } else {
            push_word(&mut word, &mut clause);
            if clause.last().is_some_and(|(w, _)| is_clause_word(w)) {
                clause.pop();
                end_clause(&mut clause, &mut clauses);
            }
            if is_clause_break(c) {
                end_clause(&mut clause, &mut clauses);
            }
        }
    }
    push_word(&mut word, &mut clause);
    if clause.last().is_some_and(|(w, _)| is_clause_word(w)) {
        clause.pop();
    }
    end_clause(&mut clause, &mut clauses);
    clauses
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_latin1_accents_and_case() {
        assert_eq!(fold("ÀÉÎÕÜ çÑ ß œ Ærø"), "aeiou cn ss oe aero");
        assert_eq!(
            fold("Não, MÖCHTE, représentant"),
            "nao, mochte, representant"
        );
    }

    #[test]
    fn splits_clauses_and_contractions() {
        let c = own_clauses("I don't need help, but I want an agent!");
        assert_eq!(
            c,
            vec![
                vec!["i", "do", "not", "need", "help"],
                vec!["i", "want", "an", "agent"]
            ]
        );
        assert_eq!(
            words("can't won't j'aimerais"),
            vec!["can", "not", "will", "not", "j", "aimerais"]
        );
    }

    #[test]
    fn keeps_numbers_whole() {
        assert_eq!(
            words("I owe $0.00 or 1,000"),
            vec!["i", "owe", "0.00", "or", "1,000"]
        );
        assert_eq!(words("0-0-0"), vec!["0", "0", "0"]);
    }

    #[test]
    fn drops_quotes_unless_first_person() {
        let c = own_clauses("my friend said \"talk to an agent\" works");
        assert!(!c.concat().contains(&"agent".to_owned()));
        let c = own_clauses("I said 'AGENT' three times");
        assert!(c.concat().contains(&"agent".to_owned()));
        let c = own_clauses("the « agent » thing");
        assert!(!c.concat().contains(&"agent".to_owned()));
        // unclosed quote: ordinary text
        let c = own_clauses("I want an \"agent now");
        assert!(c.concat().contains(&"agent".to_owned()));
    }

    #[test]
    fn words_know_where_they_came_from() {
        let text = "Passez-moi quelqu'un, s'il vous plaît";
        let clauses = own_spanned_clauses(text);
        let first = &clauses[0];
        let words: Vec<&str> = first.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(words, ["passez", "moi", "quelqu", "un"]);
        assert_eq!(
            original_span(text, first, 0, 3).as_deref(),
            Some("Passez-moi quelqu'un")
        );
        assert_eq!(
            original_span(text, first, 2, 2).as_deref(),
            Some("quelqu'un"),
            "whole words"
        );
        assert_eq!(
            original_span(text, first, 3, 3).as_deref(),
            Some("quelqu'un")
        );
        let second = &clauses[1];
        assert_eq!(
            original_span(text, second, 0, second.len() - 1).as_deref(),
            Some("s'il vous plaît")
        );
        // n't: both tokens come from the one word.
        let text = "I CAN'T get through, Ærø 4111";
        let clauses = own_spanned_clauses(text);
        assert_eq!(
            original_span(text, &clauses[0], 1, 2).as_deref(),
            Some("CAN'T")
        );
        assert_eq!(
            original_span(text, &clauses[1], 0, 1).as_deref(),
            Some("Ærø ####")
        );
        // A customer quoting themselves keeps the quoted words' origins.
        let text = "I said \"agent\" twice";
        let clauses = own_spanned_clauses(text);
        let all: Vec<Token> = clauses.concat();
        let agent = all.iter().position(|(w, _)| w == "agent").expect("agent");
        assert_eq!(
            original_span(text, &all, agent, agent).as_deref(),
            Some("agent")
        );
    }

    #[test]
    fn masks_digits() {
        assert_eq!(mask_digits("card 4111 ok"), "card #### ok");
    }
}
