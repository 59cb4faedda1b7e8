//! Detects a customer asking for a human, in every language of `data/`.
//!
//! A request is a *frame* (a verb of wanting or talking: "talk to", "quiero",
//! "passez-moi") joined to a *human noun* ("agent", "persona", "Mitarbeiter")
//! only by *glue* words (articles, "to", "please", "real"), or a short
//! utterance that is nothing but a noun and politeness ("AGENT!!",
//! "representante por favor"), or zeros ("0 0 0"). Requiring the frame is what
//! keeps "the agent on the phone yesterday was nice" and "are you a real
//! person?" from firing. Then the request is dropped when it is negated ("I
//! don't need a person"), reported ("my friend said talk to an agent"),
//! hypothetical or sarcastic ("as if I need a human"), in the past ("last
//! time I asked for an agent…") or the noun is another sense ("travel agent").
//! Quoted text was already removed by [`crate::normalize::own_clauses`].
//!
//! The words are data (`[explicit]` in `data/<tag>.toml`); this module
//! walks a clause, [`request`] says what a noun and a verb are, [`cancel`]
//! what context drops a request, `zeros` finds the operator by zeros.

mod cancel;
mod request;
mod zeros;

use crate::lexicon::lexicon;
use cancel::cancelled;
use request::{Noun, is_frame, noun_at, other_sense};
use zeros::zeros;

fn evidence(clause: &[String], start: usize, end: usize) -> String {
    crate::normalize::mask_digits(&clause[start..=end].join(" "))
}

/// Where a request for a human is in a turn's clauses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// Words `start..=end` of clause `clause`: the evidence is that part of
    /// what the customer wrote.
    Words {
        clause: usize,
        start: usize,
        end: usize,
    },
    /// Zeros ("0 0 0", "press 0"), quoted as tokens: their digits are the
    /// evidence, and they may span clauses.
    Zeros(String),
}

/// Finds a request for a human in one customer turn's clauses. Returns the
/// evidence phrase, made of the tokens.
pub(crate) fn detect(clauses: &[Vec<String>], extra_phrases: &[Vec<String>]) -> Option<String> {
    Some(match locate(clauses, extra_phrases)? {
        Hit::Words { clause, start, end } => evidence(&clauses[clause], start, end),
        Hit::Zeros(zeros) => zeros,
    })
}

/// What the rules make of one customer turn.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Located {
    Request(Hit),
    /// A request the context cancels: negated, reported, hypothetical… The
    /// learned layer must not override the customer's own "I don't need a
    /// person".
    Refused,
    Nothing,
}

/// Finds a request for a human in one customer turn's clauses.
pub(crate) fn locate(clauses: &[Vec<String>], extra_phrases: &[Vec<String>]) -> Option<Hit> {
    match locate_or_refusal(clauses, extra_phrases) {
        Located::Request(hit) => Some(hit),
        Located::Refused | Located::Nothing => None,
    }
}

/// Finds a request for a human in one customer turn's clauses, or says that
/// one was there but cancelled.
pub(crate) fn locate_or_refusal(clauses: &[Vec<String>], extra_phrases: &[Vec<String>]) -> Located {
    let words = &lexicon().explicit;
    let mut refused = false;
    // "zero, zero, zero": zeros split by punctuation are still one request.
    if clauses.len() > 1
        && let Some(z) = zeros(&clauses.concat())
    {
        return Located::Request(Hit::Zeros(z));
    }
    for (ci, clause) in clauses.iter().enumerate() {
        let next = clauses.get(ci + 1);
        if let Some(z) = zeros(clause) {
            return Located::Request(Hit::Zeros(z));
        }
        for phrase in extra_phrases {
            if phrase.is_empty() || phrase.len() > clause.len() {
                continue;
            }
            for s in 0..=clause.len() - phrase.len() {
                let end = s + phrase.len() - 1;
                if clause[s..=end] == phrase[..] {
                    if !cancelled(clause, s, end, next) {
                        return Located::Request(Hit::Words {
                            clause: ci,
                            start: s,
                            end,
                        });
                    }
                    refused = true;
                }
            }
        }
        for k in 0..clause.len() {
            let Some(Noun { alone, generic }) = noun_at(clause, k) else {
                continue;
            };
            if other_sense(clause, k) {
                continue;
            }
            // A bare noun with only politeness around it.
            if alone
                && clause.iter().enumerate().all(|(i, t)| {
                    i == k || words.filler.contains(t) || noun_at(clause, i).is_some()
                })
            {
                if !cancelled(clause, k, k, next) {
                    return Located::Request(Hit::Words {
                        clause: ci,
                        start: 0,
                        end: clause.len() - 1,
                    });
                }
                refused = true;
                continue;
            }
            // Frame … glue … noun.
            let mut start = None;
            let mut i = k;
            while i > 0 && k - i < 8 {
                i -= 1;
                if is_frame(clause, i, generic) {
                    start = Some(i);
                } else if !words.glue.contains(&clause[i]) {
                    break;
                }
            }
            // Noun … glue … frame ("mit einem Menschen sprechen", "a human I can talk to").
            let mut end = k;
            if start.is_none() {
                let mut j = k + 1;
                while j < clause.len() && j - k <= 5 {
                    // "someone on the phone" is a request only when wanted:
                    // "can I have someone on the phone?", not "the agent on
                    // the phone yesterday".
                    let phone = words.phone.contains(&clause[j])
                        && clause[..k].iter().any(|t| {
                            words.want_verbs.contains(t)
                                || words.ability.contains(t)
                                || words.have.contains(t)
                        });
                    if phone || is_frame(clause, j, true) {
                        end = j;
                        start = Some(k);
                        break;
                    } else if !words.glue.contains(&clause[j])
                        && !words.relative.contains(&clause[j])
                    {
                        break;
                    }
                    j += 1;
                }
            }
            if let Some(s) = start {
                if !cancelled(clause, s, end.max(k), next) {
                    return Located::Request(Hit::Words {
                        clause: ci,
                        start: s,
                        end: end.max(k),
                    });
                }
                refused = true;
            }
        }
    }
    if refused {
        Located::Refused
    } else {
        Located::Nothing
    }
}

#[cfg(test)]
mod tests;
