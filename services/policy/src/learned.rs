//! The learned layer's side of the policy: the classifier of
//! `baton-policy-model` in the policy's terms (triggers, thresholds,
//! evidence with digits masked).

use baton_policy_model::{Label, Model};

use crate::Trigger;
use crate::normalize::mask_digits;

/// One turn's probabilities.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scores(baton_policy_model::Scores);

impl Scores {
    /// The probability for `trigger`; 0 for a trigger the model does not
    /// know (repeated failure is counted, not read).
    pub(crate) fn get(&self, trigger: Trigger) -> f32 {
        label(trigger).map_or(0.0, |l| self.0.get(l))
    }
}

fn label(trigger: Trigger) -> Option<Label> {
    match trigger {
        Trigger::ExplicitRequest => Some(Label::ExplicitRequest),
        Trigger::Distress => Some(Label::Distress),
        Trigger::Complexity => Some(Label::Complexity),
        Trigger::Compliance => Some(Label::Compliance),
        Trigger::RepeatedFailure => None,
    }
}

pub(crate) fn score(text: &str) -> Scores {
    Scores(Model::embedded().predict(text))
}

/// The tenant's threshold, else the one trained with the weights.
pub(crate) fn threshold(trigger: Trigger, configured: Option<f32>) -> f32 {
    configured
        .unwrap_or_else(|| label(trigger).map_or(1.0, |l| Model::embedded().default_threshold(l)))
}

/// The features that pushed the turn towards `trigger` most, as the
/// explanation's evidence: `"speak with", "person"`. Words only: the score
/// and threshold are the decision's own fields, and a feature without a
/// letter (a masked digit run) says nothing to a reviewer.
pub(crate) fn evidence(text: &str, trigger: Trigger) -> String {
    let Some(label) = label(trigger) else {
        return String::new();
    };
    let features: Vec<String> = Model::embedded()
        .explain(text, label, 5)
        .into_iter()
        .map(|(feature, _)| mask_digits(feature.trim()))
        .filter(|f| f.chars().any(char::is_alphabetic))
        .take(3)
        .map(|f| format!("\"{f}\""))
        .collect();
    if features.is_empty() {
        "no single feature stands out".to_owned()
    } else {
        features.join(", ")
    }
}
