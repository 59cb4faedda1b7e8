//! Text normalisation: the one spelling of a turn that features are read
//! from, so that "OPÉRATEUR!!", "operateur" and "opérateur" meet.
//!
//! Lower-case (Unicode), fold the common Latin diacritics and a few
//! look-alikes with [`FOLDS`], drop combining accents (decomposed input),
//! map full-width ASCII to ASCII, and turn every run of anything that is
//! not a letter or a digit into one space. Scripts without spaces
//! (Japanese, Chinese) pass through as one long word; the character
//! n-grams read them.

/// Letters folded to their base spelling, sorted by the letter (binary
/// searched; a test keeps the order). Lower-case only: folding happens
/// after lower-casing. Small on purpose: the letters of the languages the
/// corpus covers, not a full Unicode decomposition.
const FOLDS: &[(char, &str)] = &[
    ('ß', "ss"),
    ('à', "a"),
    ('á', "a"),
    ('â', "a"),
    ('ã', "a"),
    ('ä', "a"),
    ('å', "a"),
    ('æ', "ae"),
    ('ç', "c"),
    ('è', "e"),
    ('é', "e"),
    ('ê', "e"),
    ('ë', "e"),
    ('ì', "i"),
    ('í', "i"),
    ('î', "i"),
    ('ï', "i"),
    ('ð', "d"),
    ('ñ', "n"),
    ('ò', "o"),
    ('ó', "o"),
    ('ô', "o"),
    ('õ', "o"),
    ('ö', "o"),
    ('ø', "o"),
    ('ù', "u"),
    ('ú', "u"),
    ('û', "u"),
    ('ü', "u"),
    ('ý', "y"),
    ('þ', "th"),
    ('ÿ', "y"),
    ('ā', "a"),
    ('ă', "a"),
    ('ą', "a"),
    ('ć', "c"),
    ('č', "c"),
    ('ď', "d"),
    ('đ', "d"),
    ('ē', "e"),
    ('ė', "e"),
    ('ę', "e"),
    ('ě', "e"),
    ('ğ', "g"),
    ('ī', "i"),
    ('į', "i"),
    ('ı', "i"),
    ('ł', "l"),
    ('ń', "n"),
    ('ň', "n"),
    ('ō', "o"),
    ('ő', "o"),
    ('œ', "oe"),
    ('ř', "r"),
    ('ś', "s"),
    ('ş', "s"),
    ('š', "s"),
    ('ţ', "t"),
    ('ť', "t"),
    ('ū', "u"),
    ('ů', "u"),
    ('ű', "u"),
    ('ų', "u"),
    ('ź', "z"),
    ('ż', "z"),
    ('ž', "z"),
    ('ё', "е"),
];

/// Writes the normal form of `text` into `out` (cleared first), so a
/// caller can keep one buffer for many turns.
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    let mut gap = false;
    for c in text.chars() {
        if c.is_ascii() {
            // The common case, lowered by `push` without Unicode tables.
            push(c, out, &mut gap);
        } else {
            for c in c.to_lowercase() {
                push(c, out, &mut gap);
            }
        }
    }
}

/// The normal form of `text`.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

fn push(c: char, out: &mut String, gap: &mut bool) {
    let c = full_width_to_ascii(c);
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() {
            word_char(out, gap);
            // Upper-case full-width letters arrive here already lowered.
            out.push(c.to_ascii_lowercase());
        } else {
            *gap = !out.is_empty();
        }
        return;
    }
    if is_combining_accent(c) {
        // "e" + U+0301 is "é" decomposed: the accent goes, the word stays whole.
        return;
    }
    if let Ok(i) = FOLDS.binary_search_by_key(&c, |&(from, _)| from) {
        word_char(out, gap);
        out.push_str(FOLDS[i].1);
    } else if c.is_alphanumeric() {
        word_char(out, gap);
        out.push(c);
    } else {
        *gap = !out.is_empty();
    }
}

fn word_char(out: &mut String, gap: &mut bool) {
    if *gap {
        out.push(' ');
        *gap = false;
    }
}

fn is_combining_accent(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

fn full_width_to_ascii(c: char) -> char {
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_table_is_sorted_and_lower_case() {
        for pair in FOLDS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} before {:?}", pair[0], pair[1]);
        }
        for (from, _) in FOLDS {
            assert_eq!(from.to_lowercase().next(), Some(*from), "{from:?}");
        }
    }

    #[test]
    fn accents_fold_so_spellings_meet() {
        assert_eq!(normalize("opérateur"), "operateur");
        assert_eq!(normalize("OPÉRATEUR"), "operateur");
        assert_eq!(normalize("ope\u{0301}rateur"), "operateur");
        assert_eq!(normalize("Straße"), "strasse");
        assert_eq!(normalize("não, ação"), "nao acao");
        assert_eq!(normalize("Ёлка"), "елка");
    }

    #[test]
    fn punctuation_and_whitespace_collapse_to_one_space() {
        assert_eq!(
            normalize("  Hello,\tWORLD!!  how's  it?? "),
            "hello world how s it"
        );
        assert_eq!(normalize("...?!"), "");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("0 0 0"), "0 0 0");
    }

    #[test]
    fn scripts_without_spaces_stay_one_word() {
        assert_eq!(normalize("担当者と話したい。"), "担当者と話したい");
        assert_eq!(
            normalize("オペレーターに、つないで"),
            "オペレーターに つないで"
        );
        assert_eq!(normalize("Позовите ОПЕРАТОРА"), "позовите оператора");
    }

    #[test]
    fn full_width_ascii_folds() {
        assert_eq!(normalize("ＡＧＥＮＴ！"), "agent");
    }
}
