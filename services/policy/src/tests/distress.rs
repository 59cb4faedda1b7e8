//! Distress, through `evaluate`.

use super::*;

#[test]
fn runtime_distress_score_is_used_against_the_threshold() {
    let mut c = PolicyConfig::default();
    c.distress.threshold = 0.8;
    let mut conv = convo(&["ok"]);
    conv.turns[0].distress_score = Some(0.8);
    let d = evaluate(&c, &conv);
    assert_eq!(triggers(&d), [Trigger::Distress]);
    assert_eq!(d.fired[0].score, Some(0.8));
    assert_eq!(d.fired[0].threshold, Some(0.8));
    assert!(d.fired[0].evidence.contains("runtime score"));
    conv.turns[0].distress_score = Some(0.7);
    let d = evaluate(&c, &conv);
    assert!(!d.escalate);
    assert_eq!(
        d.near_misses,
        ["distress 0.70 is close to threshold 0.80 (runtime score)"]
    );
}

#[test]
fn built_in_scorer_fires_on_anger_and_not_on_calm() {
    let c = PolicyConfig::default();
    let d = evaluate(&c, &convo(&["This is RIDICULOUS!!! I am FURIOUS"]));
    assert_eq!(triggers(&d), [Trigger::Distress]);
    assert!(
        d.fired[0].evidence.contains("ridiculous"),
        "{}",
        d.fired[0].evidence
    );
    assert!(!evaluate(&c, &convo(&["Thanks, that's all I needed."])).escalate);
}

#[test]
fn distress_can_be_disabled() {
    let mut c = PolicyConfig::default();
    c.distress.enabled = false;
    assert!(!evaluate(&c, &convo(&["This is RIDICULOUS!!! I am FURIOUS"])).escalate);
}

#[test]
fn rising_frustration_across_turns_fires() {
    let d = evaluate(
        &PolicyConfig::default(),
        &convo(&[
            "where is my order",
            "this is annoying",
            "this is ridiculous, seriously!!",
        ]),
    );
    assert_eq!(triggers(&d), [Trigger::Distress]);
    assert!(
        d.fired[0].evidence.contains("rising"),
        "{}",
        d.fired[0].evidence
    );
}
