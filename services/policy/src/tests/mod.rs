//! Unit tests of `evaluate` and the config, one file per trigger or concern;
//! the helpers they share are here.

use crate::*;

mod config;
mod distress;
mod explicit;
mod layers;
mod rules;
mod state;

/// The rules alone: these tests pin what the rules decide. The learned
/// layer and the two together are tested in `layers.rs`, the model itself
/// in `baton-policy-model`, both on the corpus in `tests/evaluation.rs`.
fn evaluate(config: &PolicyConfig, conversation: &Conversation) -> Decision {
    crate::evaluate_with(
        config,
        conversation,
        Layers {
            rules: true,
            model: false,
        },
    )
}

fn convo(texts: &[&str]) -> Conversation {
    Conversation {
        language: "en".into(),
        turns: texts.iter().map(|t| Turn::customer(*t)).collect(),
        ..Default::default()
    }
}

fn all_off() -> PolicyConfig {
    let mut c = PolicyConfig::default();
    c.distress.enabled = false;
    c.complexity.enabled = false;
    c.compliance.enabled = false;
    c.repeated_failure.enabled = false;
    c
}

fn triggers(d: &Decision) -> Vec<Trigger> {
    d.fired.iter().map(|f| f.trigger).collect()
}

#[test]
fn odd_text_never_panics() {
    let long = "agent ".repeat(5000);
    for t in [
        "",
        " ",
        "!!!",
        "\"",
        "'",
        "«",
        "\"unclosed quote agent",
        "'''",
        "😡😡😡 AGENT 😡",
        "מה זה",
        "ǅǆ İstanbul ﬁ",
        "0.0.0",
        "0,0,0",
        "..0..",
        &long,
    ] {
        let mut c = convo(&[t]);
        c.intent = Some(Intent {
            name: t.into(),
            confidence: f32::NAN,
        });
        c.turns[0].distress_score = Some(f32::NAN);
        let _ = evaluate(&PolicyConfig::default(), &c);
    }
}
