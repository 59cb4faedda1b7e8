//! Text normalisation shared by the detectors: lower case, a Latin-1 accent
//! fold, words and clauses (here), removal of quoted speech ([`quotes`]),
//! and evidence cut from the original text ([`span`]).
//!
//! The fold is hand-written because the five supported languages only need
//! Latin-1 (plus œ), and a full Unicode normaliser would be the largest
//! dependency of the crate for a dozen letters.

mod quotes;
mod span;

use crate::lexicon::lexicon;
pub(crate) use quotes::{own_clauses, own_spanned_clauses};
pub(crate) use span::{mask_digits, original_span};

/// Pushes `c` lower-cased and accent-folded to ASCII when it is a Latin-1
/// letter (and Cyrillic `ё` to `е`); other characters are pushed lower-cased
/// and unchanged.
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
            // Russian typists mostly write "е" for "ё"; folding it lets one
            // spelling in data/ru.toml match both.
            'ё' => "е",
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

/// Whether `text` has a quotation mark (or an apostrophe, which may be
/// one): only then can [`own_clauses`](quotes::own_clauses) have left
/// words out.
pub(crate) fn may_quote(text: &str) -> bool {
    text.chars()
        .any(|c| is_double_quote(c) || is_single_quote(c))
}

/// Clauses of all of `text`, quoted words included: what
/// [`own_clauses`](quotes::own_clauses) leaves out is the difference.
pub(crate) fn all_clauses(text: &str) -> Vec<Vec<String>> {
    clauses_of(&fold(text))
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

#[cfg(test)]
mod tests;
