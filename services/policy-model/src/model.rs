//! Prediction and explanation over decoded weights.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::features::{FeatureConfig, for_each_feature};
use crate::normalize::normalize_into;
use crate::weights::{LabelParams, Weights, WeightsError};
use crate::{Label, Scores};

/// The weights trained from `tests/policy/corpus/*.train.jsonl` and the
/// older labelled sets beside it (`train::default_inputs`).
static EMBEDDED: &[u8] = include_bytes!("../weights/model.bin");

/// The classifier: a hashed feature table and one logistic regression per
/// label. Immutable; share one between threads.
#[derive(Debug, Clone)]
pub struct Model {
    features: FeatureConfig,
    labels: [LabelParams; 4],
    /// Row per bucket, one quantised weight per label: a feature costs one
    /// four-byte load for all four labels.
    rows: Vec<[i8; 4]>,
}

/// Buffers a caller can keep between turns; [`Model::predict`] keeps one
/// per thread.
#[derive(Debug, Default)]
pub struct Scratch {
    normalized: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Model {
    /// The weights compiled into this crate, decoded on first use.
    ///
    /// # Panics
    /// If the committed weights file is damaged, which the crate's tests
    /// rule out.
    pub fn embedded() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            Model::from_bytes(EMBEDDED).expect("the committed weights/model.bin decodes")
        })
    }

    /// Decodes a weights file written by `baton-policy-train`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, WeightsError> {
        let w = Weights::decode(bytes)?;
        Ok(Model {
            features: w.features,
            labels: w.labels,
            rows: w.rows,
        })
    }

    /// How this model reads features (table size, n-gram lengths).
    pub fn feature_config(&self) -> FeatureConfig {
        self.features
    }

    /// The threshold chosen at training time by cross-validation on the
    /// training data (a turn fires at or above it).
    pub fn default_threshold(&self, label: Label) -> f32 {
        self.labels[label.index()].threshold
    }

    /// The probabilities for one turn.
    pub fn predict(&self, text: &str) -> Scores {
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut scratch) => self.predict_with(&mut scratch, text),
            Err(_) => self.predict_with(&mut Scratch::default(), text),
        })
    }

    /// [`Model::predict`] with the caller's buffers.
    pub fn predict_with(&self, scratch: &mut Scratch, text: &str) -> Scores {
        normalize_into(text, &mut scratch.normalized);
        let mut sums = [0i64; 4];
        let mut count = 0u32;
        for_each_feature(&scratch.normalized, &self.features, |hash, _| {
            let row = self.rows[self.features.bucket(hash)];
            for (sum, q) in sums.iter_mut().zip(row) {
                *sum += i64::from(q);
            }
            count += 1;
        });
        let norm = inverse_sqrt(count);
        let mut p = [0f32; 4];
        for ((p, sum), params) in p.iter_mut().zip(sums).zip(&self.labels) {
            let logit = params.bias + params.scale * sum as f32 * norm;
            *p = sigmoid(logit);
        }
        Scores::from_array(p)
    }

    /// The features of `text` that pushed it towards `label` most, as
    /// (feature, contribution to the log-odds), strongest first, at most
    /// `top`. A feature is words (`"speak with"`, `"person"`) or characters
    /// with a space where a word starts or ends (`" hum"`). Only features
    /// that pushed towards the label are listed; none may.
    pub fn explain(&self, text: &str, label: Label, top: usize) -> Vec<(String, f32)> {
        let normalized = crate::normalize(text);
        let params = self.labels[label.index()];
        let mut by_feature: BTreeMap<String, i64> = BTreeMap::new();
        let mut count = 0u32;
        for_each_feature(&normalized, &self.features, |hash, feature| {
            count += 1;
            let q = self.rows[self.features.bucket(hash)][label.index()];
            if q > 0 {
                *by_feature.entry(feature.display()).or_default() += i64::from(q);
            }
        });
        let norm = inverse_sqrt(count);
        let mut evidence: Vec<(String, f32)> = by_feature
            .into_iter()
            .map(|(feature, q)| (feature, params.scale * q as f32 * norm))
            .collect();
        // Stable sort over a sorted map: ties stay in text order.
        evidence.sort_by(|a, b| b.1.total_cmp(&a.1));
        evidence.truncate(top);
        evidence
    }
}

fn inverse_sqrt(count: u32) -> f32 {
    if count == 0 {
        0.0
    } else {
        1.0 / (count as f32).sqrt()
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_weights_decode() {
        let model = Model::embedded();
        for label in Label::ALL {
            let t = model.default_threshold(label);
            assert!((0.0..=1.0).contains(&t), "{label}: {t}");
        }
    }

    #[test]
    fn damaged_weights_are_refused_with_a_reason() {
        assert!(matches!(
            Model::from_bytes(&[]),
            Err(WeightsError::TooShort { len: 0 })
        ));
        let mut flipped = EMBEDDED.to_vec();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        let err = Model::from_bytes(&flipped).expect_err("a flipped bit is refused");
        assert!(matches!(err, WeightsError::ChecksumMismatch { .. }));
        assert!(err.to_string().contains("damaged"), "{err}");
        let cut = &EMBEDDED[..EMBEDDED.len() - 100];
        assert!(Model::from_bytes(cut).is_err());
        let mut other = EMBEDDED.to_vec();
        other[..4].copy_from_slice(b"GIF8");
        assert!(matches!(
            Model::from_bytes(&other),
            Err(WeightsError::BadMagic)
        ));
    }

    #[test]
    fn predictions_are_probabilities() {
        let model = Model::embedded();
        let long = "help ".repeat(5000);
        for text in [
            "",
            "   ",
            "I want to talk to a human",
            "what is my balance",
            "担当者と話したいです",
            "Позовите оператора, пожалуйста",
            &long,
        ] {
            let scores = model.predict(text);
            for label in Label::ALL {
                let p = scores.get(label);
                assert!((0.0..=1.0).contains(&p), "{text:?} {label}: {p}");
            }
        }
    }

    #[test]
    fn predict_and_predict_with_agree() {
        let model = Model::embedded();
        let mut scratch = Scratch::default();
        for text in ["agent please", "Je veux parler à un opérateur", "hi"] {
            assert_eq!(model.predict(text), model.predict_with(&mut scratch, text));
        }
    }

    #[test]
    fn explanation_names_features_of_the_text() {
        let model = Model::embedded();
        let text = "I want to talk to a human";
        let evidence = model.explain(text, Label::ExplicitRequest, 5);
        assert!(!evidence.is_empty());
        assert!(evidence.len() <= 5);
        let normalized = crate::normalize(text);
        let padded = format!(" {} ", normalized);
        for (feature, weight) in &evidence {
            assert!(*weight > 0.0, "{feature}: {weight}");
            // A skip pair ("a … b") or a negated word ("¬w") names words of
            // the text too.
            let words_or_chars = feature.replace("^ ", "").replace(" $", "").replace('¬', "");
            for part in words_or_chars.split(" … ") {
                assert!(padded.contains(part), "{feature:?} not in {padded:?}");
            }
        }
        for pair in evidence.windows(2) {
            assert!(pair[0].1 >= pair[1].1);
        }
    }

    #[test]
    fn accents_do_not_change_the_score() {
        let model = Model::embedded();
        assert_eq!(
            model.predict("je veux un opérateur"),
            model.predict("JE VEUX UN OPERATEUR !")
        );
    }
}
