//! The policy config: defaults, validation, customer messages.

use super::*;

#[test]
fn empty_config_is_the_documented_default_and_valid() {
    let c = PolicyConfig::from_json("{}").expect("valid");
    assert_eq!(c, PolicyConfig::default());
    assert_eq!(c.distress.threshold, 0.7);
    assert_eq!(c.repeated_failure.threshold, 2);
    assert_eq!(c.complexity.min_confidence, 0.5);
}

#[test]
fn bad_values_name_the_key() {
    for (json, key) in [
        (
            r#"{"distress": {"threshold": 1.5}}"#,
            "distress.threshold: must be between 0 and 1",
        ),
        (
            r#"{"distress": {"threshold": -0.1}}"#,
            "distress.threshold: must be between 0 and 1",
        ),
        (
            r#"{"complexity": {"min_confidence": 2}}"#,
            "complexity.min_confidence: must be between 0 and 1",
        ),
        (
            r#"{"complexity": {"capabilities": ["bill*ing"]}}"#,
            "complexity.capabilities[0]:",
        ),
        (
            r#"{"repeated_failure": {"threshold": 1}}"#,
            "repeated_failure.threshold: must be between 2 and 20",
        ),
        (
            r#"{"compliance": {"rules": [{"name": "x", "route": "", "phrases": ["a"]}]}}"#,
            "compliance.rules[0].route:",
        ),
        (
            r#"{"compliance": {"rules": [{"name": "x", "route": "r"}]}}"#,
            "compliance.rules[0]: needs at least one",
        ),
        (
            r#"{"compliance": {"rules": [{"name": "x", "route": "r", "intents": ["*x"]}]}}"#,
            "compliance.rules[0].intents[0]:",
        ),
        (
            r#"{"distress": {"route": " "}}"#,
            "distress.route: must not be empty",
        ),
        (
            r#"{"customer_messages": {"fr": ""}}"#,
            "customer_messages.fr: must not be empty",
        ),
        (
            r#"{"distress": {"treshold": 0.5}}"#,
            "unknown field `treshold`",
        ),
    ] {
        let err = PolicyConfig::from_json(json).expect_err("must be rejected");
        assert!(err.contains(key), "{json}: {err}");
    }
}

#[test]
fn customer_message_follows_the_language() {
    let c = PolicyConfig::default();
    assert!(
        c.customer_message("pt-BR")
            .is_some_and(|m| m.starts_with("Vou transferir"))
    );
    assert!(
        c.customer_message("es")
            .is_some_and(|m| m.starts_with("Le comunico"))
    );
    assert!(
        c.customer_message("ja")
            .is_some_and(|m| m.starts_with("I'm connecting"))
    );
}
