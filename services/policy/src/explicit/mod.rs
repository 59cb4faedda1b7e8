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

/// Finds a request for a human in one customer turn's clauses.
pub(crate) fn locate(clauses: &[Vec<String>], extra_phrases: &[Vec<String>]) -> Option<Hit> {
    let words = &lexicon().explicit;
    // "zero, zero, zero": zeros split by punctuation are still one request.
    if clauses.len() > 1
        && let Some(z) = zeros(&clauses.concat())
    {
        return Some(Hit::Zeros(z));
    }
    for (ci, clause) in clauses.iter().enumerate() {
        let next = clauses.get(ci + 1);
        if let Some(z) = zeros(clause) {
            return Some(Hit::Zeros(z));
        }
        for phrase in extra_phrases {
            if phrase.is_empty() || phrase.len() > clause.len() {
                continue;
            }
            for s in 0..=clause.len() - phrase.len() {
                let end = s + phrase.len() - 1;
                if clause[s..=end] == phrase[..] && !cancelled(clause, s, end, next) {
                    return Some(Hit::Words {
                        clause: ci,
                        start: s,
                        end,
                    });
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
                    return Some(Hit::Words {
                        clause: ci,
                        start: 0,
                        end: clause.len() - 1,
                    });
                }
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
            if let Some(s) = start
                && !cancelled(clause, s, end.max(k), next)
            {
                return Some(Hit::Words {
                    clause: ci,
                    start: s,
                    end: end.max(k),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::own_clauses;

    fn fires(text: &str) -> bool {
        detect(&own_clauses(text), &[]).is_some()
    }

    #[test]
    fn requests_in_five_languages() {
        for t in [
            "I want to talk to a real person",
            "AGENT!!!",
            "representative please",
            "human please",
            "operator",
            "Can I speak with someone?",
            "0 0 0",
            "000",
            "Quiero hablar con un agente",
            "pásame con una persona, por favor",
            "Je voudrais parler à un conseiller",
            "Passez-moi quelqu'un s'il vous plaît",
            "Ich möchte mit einem Mitarbeiter sprechen",
            "Verbinden Sie mich bitte mit einem Menschen",
            "Quero falar com um atendente",
            "me passa pra uma pessoa de verdade",
            "Why can't I talk to a human?",
            "I said 'agent'!",
        ] {
            assert!(fires(t), "{t}");
        }
    }

    #[test]
    fn negation_quotes_and_other_senses() {
        for t in [
            "I don't need a person, you're doing fine",
            "no quiero un agente",
            "je n'ai pas besoin d'un conseiller",
            "Ich brauche keinen Mitarbeiter",
            "não preciso de um atendente",
            "my friend said 'talk to an agent'",
            "my friend said talk to an agent",
            "my travel agent booked this flight",
            "I need my insurance agent's number",
            "the agent on the phone yesterday was nice",
            "was my dad exposed to agent orange",
            "are you a real person?",
            "the total was $0.00",
            "my account number ends in 000",
            "as if I need a human to reset a password",
            "Quero falar com meu agente de viagens",
        ] {
            assert!(!fires(t), "{t}");
        }
    }

    #[test]
    fn evidence_masks_digits() {
        let e = detect(&own_clauses("press 0"), &[]);
        assert_eq!(e.as_deref(), Some("press 0"));
        let e = detect(&own_clauses("I want to talk to a person"), &[]);
        assert_eq!(e.as_deref(), Some("want to talk to a person"));
    }
}
