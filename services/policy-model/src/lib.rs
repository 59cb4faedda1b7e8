//! Baton's learned escalation classifier: reads one customer turn and
//! gives four independent probabilities (explicit request for a human,
//! distress, complexity, compliance).
//!
//! Character n-grams, words, word pairs, skip pairs and negated words of
//! the normalised text are hashed into a fixed table; one logistic regression per label reads
//! them. Plain Rust, no I/O when predicting: the weights are compiled in
//! ([`Model::embedded`]) and come from the in-repo trainer
//! (`baton-policy-train`, module [`train`]), which a test re-runs to check
//! the committed file.
#![forbid(unsafe_code)]

mod features;
mod model;
mod normalize;
pub mod train;
mod weights;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use features::{FeatureConfig, fnv1a64, word_hash};
pub use model::{Model, Scratch};
pub use normalize::{normalize, normalize_into};
pub use weights::{MAX_WEIGHTS_BYTES, WeightsError};

/// What the classifier reads a turn for. Independent: a turn can be all
/// four or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// The customer asks for a human.
    ExplicitRequest,
    /// The customer is upset, anxious or fed up.
    Distress,
    /// The matter is more than a bot should take on.
    Complexity,
    /// A regulated topic (complaint, legal, privacy, medical, financial hardship…).
    Compliance,
}

impl Label {
    /// Every label, in the order of the weights file and of [`Scores`].
    pub const ALL: [Label; 4] = [
        Label::ExplicitRequest,
        Label::Distress,
        Label::Complexity,
        Label::Compliance,
    ];

    /// The name used in the corpus files (`expect`) and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Label::ExplicitRequest => "explicit_request",
            Label::Distress => "distress",
            Label::Complexity => "complexity",
            Label::Compliance => "compliance",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Label {
    type Err = UnknownLabel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| UnknownLabel(s.to_owned()))
    }
}

/// A label name the model does not know (`repeated_failure` is counted by
/// the policy, not read from words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLabel(pub String);

impl fmt::Display for UnknownLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown label {:?}", self.0)
    }
}

impl std::error::Error for UnknownLabel {}

/// One turn's probabilities, each in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Scores {
    pub explicit_request: f32,
    pub distress: f32,
    pub complexity: f32,
    pub compliance: f32,
}

impl Scores {
    pub fn get(&self, label: Label) -> f32 {
        match label {
            Label::ExplicitRequest => self.explicit_request,
            Label::Distress => self.distress,
            Label::Complexity => self.complexity,
            Label::Compliance => self.compliance,
        }
    }

    pub(crate) fn from_array(p: [f32; 4]) -> Self {
        Self {
            explicit_request: p[0],
            distress: p[1],
            complexity: p[2],
            compliance: p[3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_round_trip_in_file_order() {
        for (i, label) in Label::ALL.into_iter().enumerate() {
            assert_eq!(label.index(), i);
            assert_eq!(label.name().parse::<Label>(), Ok(label));
        }
        assert!("repeated_failure".parse::<Label>().is_err());
    }
}
