//! Text normalisation shared by the detectors: lower case, a Latin-1 accent
//! fold, words, clauses, and removal of quoted speech.
//!
//! The fold is hand-written because the five supported languages only need
//! Latin-1 (plus œ), and a full Unicode normaliser would be the largest
//! dependency of the crate for a dozen letters.

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
    matches!(
        w,
        "but" | "pero" | "mais" | "aber" | "mas" | "however" | "sino" | "sondern" | "although"
    )
}

/// Splits a raw word (may hold apostrophes) into tokens. English `n't`
/// becomes its own `not`, so negation has one spelling.
fn push_word(word: &mut String, out: &mut Vec<String>) {
    if word.is_empty() {
        return;
    }
    if let Some(stem) = word.strip_suffix("n't") {
        let stem = match stem {
            "ca" => "can",
            "wo" => "will",
            "sha" => "shall",
            s => s,
        };
        if !stem.is_empty() {
            out.push(stem.to_owned());
        }
        out.push("not".to_owned());
    } else if word.contains('\'') {
        out.extend(
            word.split('\'')
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        );
    } else {
        out.push(std::mem::take(word));
    }
    word.clear();
}

/// Folded words of `text`, ignoring punctuation and quotes.
pub(crate) fn words(text: &str) -> Vec<String> {
    clauses_of(&fold(text)).into_iter().flatten().collect()
}

/// Tokenises already-folded text into clauses of words. Numbers keep inner
/// `.`/`,` (`0.00` stays one token, so a price is never "zero zero").
fn clauses_of(folded: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = folded.chars().collect();
    let mut clauses = Vec::new();
    let mut clause: Vec<String> = Vec::new();
    let mut word = String::new();
    let end_clause = |clause: &mut Vec<String>, clauses: &mut Vec<Vec<String>>| {
        if !clause.is_empty() {
            clauses.push(std::mem::take(clause));
        }
    };
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let alnum = |o: Option<char>| o.is_some_and(char::is_alphanumeric);
        let digit = |o: Option<char>| o.is_some_and(|c| c.is_ascii_digit());
        if c.is_alphanumeric() {
            word.push(c);
        } else if is_single_quote(c) && alnum(prev) && alnum(next) {
            word.push('\'');
        } else if matches!(c, '.' | ',' | ':') && digit(prev) && digit(next) {
            word.push(c);
        } else {
            push_word(&mut word, &mut clause);
            if clause.last().is_some_and(|w| is_clause_word(w)) {
                clause.pop();
                end_clause(&mut clause, &mut clauses);
            }
            if is_clause_break(c) {
                end_clause(&mut clause, &mut clauses);
            }
        }
    }
    push_word(&mut word, &mut clause);
    if clause.last().is_some_and(|w| is_clause_word(w)) {
        clause.pop();
    }
    end_clause(&mut clause, &mut clauses);
    clauses
}

/// First person saying or typing something: a quote after this is the
/// customer's own words ("I said 'agent'!"), not someone else's.
fn ends_with_first_person_saying(folded_before: &str) -> bool {
    let words: Vec<String> = clauses_of(folded_before).into_iter().flatten().collect();
    let tail = &words[words.len().saturating_sub(4)..];
    let first_person = tail
        .iter()
        .any(|w| matches!(w.as_str(), "i" | "yo" | "je" | "j" | "ich" | "eu"));
    let saying = tail.iter().any(|w| {
        matches!(
            w.as_str(),
            "said"
                | "say"
                | "saying"
                | "typed"
                | "type"
                | "typing"
                | "asked"
                | "wrote"
                | "dit"
                | "dis"
                | "ecrit"
                | "demande"
                | "sagte"
                | "sage"
                | "gesagt"
                | "geschrieben"
                | "disse"
                | "digo"
                | "falei"
                | "escrevi"
                | "pedi"
                | "dije"
                | "dicho"
                | "escribi"
                | "escrito"
        )
    });
    let first_person_verb = tail.last().is_some_and(|w| {
        matches!(
            w.as_str(),
            "dije" | "digo" | "escribi" | "pedi" | "falei" | "escrevi" | "repito"
        )
    });
    (first_person && saying) || first_person_verb
}

/// Clauses of the customer's own words: text in quotation marks is dropped
/// (someone else's words, a name, a title) unless the customer is quoting
/// themselves. An unclosed quote is treated as ordinary text.
pub(crate) fn own_clauses(text: &str) -> Vec<Vec<String>> {
    let folded = fold(text);
    let chars: Vec<char> = folded.chars().collect();
    // (quoted, text)
    let mut segments: Vec<(bool, String)> = vec![(false, String::new())];
    let mut quoted = false;
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let alnum = |o: Option<char>| o.is_some_and(char::is_alphanumeric);
        let toggles = is_double_quote(c) || (is_single_quote(c) && !(alnum(prev) && alnum(next)));
        if toggles {
            quoted = !quoted;
            segments.push((quoted, String::new()));
        } else if let Some(last) = segments.last_mut() {
            last.1.push(c);
        }
    }
    if quoted && let Some(last) = segments.last_mut() {
        last.0 = false;
    }
    let mut kept = String::with_capacity(folded.len());
    for (quoted, segment) in segments {
        if !quoted {
            kept.push_str(&segment);
        } else if ends_with_first_person_saying(&kept) {
            kept.push_str(" , ");
            kept.push_str(&segment);
            kept.push_str(" , ");
        } else {
            kept.push_str(" . ");
        }
    }
    clauses_of(&kept)
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
    fn masks_digits() {
        assert_eq!(mask_digits("card 4111 ok"), "card #### ok");
    }
}
