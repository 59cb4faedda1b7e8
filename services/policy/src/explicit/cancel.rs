//! Context that cancels a request found in a clause: negation, someone
//! else's words or a past event, describing the conversation, a hypothesis
//! or sarcasm, "not now", and an offer turned down in the next clause.

use crate::lexicon::{Phrase, lexicon};

/// A negation at `tokens[i]` that refuses, rather than complains: "I don't
/// need an agent", not "why can't I talk to an agent?".
fn negated_at(tokens: &[String], i: usize) -> bool {
    let words = &lexicon().explicit;
    if !words.negations.contains(&tokens[i]) {
        return false;
    }
    let lo = i.saturating_sub(2);
    let hi = (i + 3).min(tokens.len());
    !tokens[lo..hi].iter().any(|t| words.ability.contains(t))
}

/// Does `tokens` hold `phrase` starting at `at`?
fn starts_with(tokens: &[String], at: usize, phrase: &Phrase) -> bool {
    phrase
        .words()
        .iter()
        .enumerate()
        .all(|(j, s)| tokens.get(at + j) == Some(s))
}

/// Is the request at `start..=end` of `clause` cancelled by context?
pub(super) fn cancelled(
    clause: &[String],
    start: usize,
    end: usize,
    next_clause: Option<&Vec<String>>,
) -> bool {
    let words = &lexicon().explicit;
    // Negation just before the request, or inside it.
    let lo = start.saturating_sub(3);
    if (lo..=end).any(|i| negated_at(clause, i)) {
        return true;
    }
    // Negation just after the noun, unless it is a contrast ("an agent, not a bot").
    for i in end + 1..(end + 4).min(clause.len()) {
        if negated_at(clause, i) {
            let contrast = clause
                .get(i + 1)
                .is_some_and(|t| words.contrasts.contains(t));
            if !contrast {
                return true;
            }
        }
    }
    // Reported speech or a past event before the request, unless the customer
    // is reporting themselves ("I said…", "I already asked for…").
    let first_person = &lexicon().text.first_person;
    for i in 0..start {
        if words.reporting.contains(&clause[i]) {
            let own = clause[i.saturating_sub(2)..i]
                .iter()
                .any(|t| first_person.contains(t))
                && !words.past_reporting.contains(&clause[i]);
            if !own {
                return true;
            }
        }
    }
    // Describing the conversation, not asking for a change: "am I talking to
    // a human?", "¿estoy hablando con una persona?".
    if words.describing_verbs.contains(&clause[start])
        && start > 0
        && clause[start.saturating_sub(2)..start]
            .iter()
            .any(|t| words.describing_copulas.contains(t))
    {
        return true;
    }
    // Hypothetical or sarcastic.
    for i in 0..start {
        if words.irrealis.iter().any(|seq| starts_with(clause, i, seq)) {
            return true;
        }
    }
    // Not now: "I'd love to talk to a human someday".
    if clause[end + 1..]
        .iter()
        .take(4)
        .any(|t| words.later.contains(t))
    {
        return true;
    }
    // "An agent? No thanks."
    if let Some(next) = next_clause
        && words.refusals.iter().any(|seq| starts_with(next, 0, seq))
    {
        return true;
    }
    false
}
