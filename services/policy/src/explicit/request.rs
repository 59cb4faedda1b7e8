//! The parts of a request for a human: the human noun, the verb (*frame*)
//! that asks for it, and the senses of "agent" that are not a person.
//!
//! The words are data (`[explicit]` in `data/<tag>.toml`); what stays here
//! are the few rules that look at a word's neighbours, each tied to a
//! phrasing of one or two languages and written out where it applies.

use crate::lexicon::{ExplicitWords, lexicon};

fn words() -> &'static ExplicitWords {
    &lexicon().explicit
}

/// A human noun at `tokens[k]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Noun {
    /// May stand alone as a whole request ("AGENT!!").
    pub alone: bool,
    /// "someone": counts only after a verb of talking.
    pub generic: bool,
}

/// The human noun at `tokens[k]`, if it is one.
pub(super) fn noun_at(tokens: &[String], k: usize) -> Option<Noun> {
    let w = tokens[k].as_str();
    let before = k.checked_sub(1).map(|p| tokens[p].as_str());
    let after = tokens.get(k + 1).map(String::as_str);
    // The team of humans by its name: "customer service", "service client",
    // "atención al cliente", "servizio clienti".
    let team = match w {
        "service" | "care" | "support" => {
            before == Some("customer") || matches!(after, Some("client" | "clients" | "clientele"))
        }
        "servizio" => after == Some("clienti"),
        "atencion" => after == Some("al") && tokens.get(k + 2).is_some_and(|t| t == "cliente"),
        "atendimento" => true,
        _ => false,
    };
    let words = words();
    let (alone, generic) = if team || words.standalone_nouns.contains(w) {
        (true, false)
    } else if words.nouns.contains(w) {
        (false, false)
    } else if words.generic_nouns.contains(w) {
        (false, true)
    } else {
        return None;
    };
    Some(Noun { alone, generic })
}

/// "Agent" at `tokens[k]` in another sense: "travel agent", "agent orange",
/// "agente de viajes".
pub(super) fn other_sense(tokens: &[String], k: usize) -> bool {
    let words = words();
    let before = k.checked_sub(1).map(|p| tokens[p].as_str());
    let after = tokens.get(k + 1).map(String::as_str);
    let after2 = tokens.get(k + 2).map(String::as_str);
    before.is_some_and(|b| words.other_sense_before.contains(b))
        || after.is_some_and(|a| words.other_sense_after.contains(a))
        || (after.is_some_and(|a| words.of_words.contains(a))
            && after2.is_some_and(|a| words.other_sense_of.contains(a)))
}

/// Is `tokens[i]` a verb that asks for a human? With `talk_only`, only verbs
/// of talking count (for "someone", which any verb of wanting would make a
/// plumber).
pub(super) fn is_frame(tokens: &[String], i: usize, talk_only: bool) -> bool {
    let words = words();
    let w = tokens[i].as_str();
    if w == "call" {
        // "someone call me back", not "my call with the operator".
        return tokens
            .get(i + 1)
            .is_some_and(|t| matches!(t.as_str(), "me" | "back" | "us"));
    }
    if words.talk_verbs.contains(w) {
        return true;
    }
    // "ser atendido por una persona": being served by a person.
    if matches!(w, "atendido" | "atendida" | "atendidos") && i > 0 && tokens[i - 1] == "ser" {
        return true;
    }
    // "get me someone", "find me somebody": wanting a person for oneself.
    if matches!(w, "get" | "give" | "find" | "bring")
        && tokens.get(i + 1).is_some_and(|t| t == "me")
    {
        return true;
    }
    if w == "there" {
        // "is there a human", "there's someone"
        return i > 0 && matches!(tokens[i - 1].as_str(), "is" | "s" | "any");
    }
    if talk_only {
        return false;
    }
    if words.own_want_verbs.contains(w) {
        // Only the customer's own saying is a request ("I said agent").
        let first_person = &lexicon().text.first_person;
        return tokens[i.saturating_sub(3)..i]
            .iter()
            .any(|t| first_person.contains(t));
    }
    if w == "like" {
        return i > 0 && matches!(tokens[i - 1].as_str(), "d" | "would");
    }
    if w == "have" {
        return i > 1 && matches!(tokens[i - 2].as_str(), "can" | "could" | "may");
    }
    words.want_verbs.contains(w)
}
