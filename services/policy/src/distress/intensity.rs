//! Cues in how the customer says it, whatever the language: capitals,
//! exclamation marks, a word said twice, letters held ("sooooo").

use super::Evidence;

/// Adds the intensity cues of one turn: `text` as written, `clauses` its
/// words.
pub(super) fn intensity_cues(text: &str, clauses: &[Vec<String>], evidence: &mut Evidence) {
    let words: usize = clauses.iter().map(Vec::len).sum();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let upper = text.chars().filter(|c| c.is_uppercase()).count();
    if letters >= 8 && upper * 10 >= letters * 7 {
        evidence.add(0.4, "capitals");
    } else if words >= 3 {
        let shouted = text
            .split_whitespace()
            .filter(|w| {
                let l: Vec<char> = w.chars().filter(|c| c.is_alphabetic()).collect();
                l.len() >= 3 && l.iter().all(|c| c.is_uppercase())
            })
            .count();
        if shouted >= 2 {
            evidence.add(0.25, "capitals");
        } else if shouted == 1 {
            evidence.add(0.15, "capitals");
        }
    }
    let bangs = text.matches('!').count();
    if bangs > 0 {
        evidence.add(
            match bangs {
                1 => 0.1,
                2 => 0.2,
                _ => 0.3,
            },
            "exclamation",
        );
    }
    if text.contains("?!") || text.contains("!?") {
        evidence.add(0.15, "exclamation");
    }
    if said_twice(clauses) {
        evidence.add(0.15, "repetition");
    }
    if elongated(text) {
        evidence.add(0.1, "elongation");
    }
}

/// The same word twice in a row ("no no", "please please").
fn said_twice(clauses: &[Vec<String>]) -> bool {
    clauses.iter().any(|clause| {
        clause.windows(2).any(|pair| {
            let w = &pair[1];
            pair[0] == *w && w.chars().count() >= 2 && w.chars().all(char::is_alphabetic)
        })
    })
}

/// "sooooo", "pleeease": the same letter four times in a row.
fn elongated(text: &str) -> bool {
    let mut run = (' ', 0u32);
    for c in text.chars() {
        let c = if c.is_ascii() {
            c.to_ascii_lowercase()
        } else {
            c
        };
        run = if c == run.0 { (c, run.1 + 1) } else { (c, 1) };
        if run.1 >= 4 && c.is_alphabetic() {
            return true;
        }
    }
    false
}
