//! Folding, tokens, quotes and spans on real sentences.

use super::*;

#[test]
fn folds_latin1_accents_and_case() {
    assert_eq!(fold("ÀÉÎÕÜ çÑ ß œ Ærø"), "aeiou cn ss oe aero");
    // Cyrillic is lower-cased, and "ё" is written "е" as most typists do.
    assert_eq!(fold("ОПЕРАТОР Трясёт ЁЖ"), "оператор трясет еж");
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
