//! The trainer behind `baton-policy-train`: labelled turns in, weights
//! file out. Deterministic: one thread, f64, a fixed seed, inputs in the
//! order given, so the same files give the same bytes (a test holds the
//! committed weights to that).
//!
//! Thresholds come from k-fold cross-validation on the training cases,
//! folds grouped by phrasing `family` (a case without one is its own
//! group) so that a phrasing's siblings never sit on both sides of a
//! fold, which is how the held-out evaluation is split too.

mod corpus;
mod logistic;
mod threshold;

use std::collections::BTreeMap;
use std::fmt;

use crate::Label;
use crate::features::{FeatureConfig, for_each_feature};
use crate::normalize::normalize;
use crate::weights::{LabelParams, Weights};

pub use corpus::{
    Case, Corpus, OLDER_SETS, corpus_train_files, default_inputs, is_eval_file, parse_jsonl,
    read_files,
};
pub use threshold::{Operating, choose};

use logistic::{Example, Fit, Linear, SplitMix64, shuffle, sigmoid};

const LABELS: usize = Label::ALL.len();

/// Everything that decides the weights besides the cases. The defaults
/// are what the committed weights were trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub features: FeatureConfig,
    pub seed: u64,
    pub epochs: u32,
    /// AdaGrad's step.
    pub learning_rate: f64,
    /// L2 penalty, applied to the weights a case touches.
    pub l2: f64,
    /// A bucket seen in fewer training cases than this keeps weight 0:
    /// one-off n-grams are memory, not evidence, and cost file space.
    pub min_cases: u32,
    pub folds: u32,
    /// Cross-validation runs, each dealing the families to the folds
    /// anew; a case's out-of-fold probability is their mean, so a
    /// threshold does not hang on one lucky deal.
    pub cv_repeats: u32,
    /// Per label in [`Label::ALL`] order: how much a positive case counts
    /// in the loss (positives are the minority of every label).
    pub positive_weight: [f64; LABELS],
    /// Average the weights of the epochs from this one (1-based) on; 0:
    /// the last epoch's weights.
    pub average_from: u32,
    /// False positives assumed on top of those counted when a threshold's
    /// cross-validated precision is held against its target, so that a
    /// threshold a handful of cases happen to clear is not taken.
    pub threshold_prior: f64,
    /// Per label in [`Label::ALL`] order: the cross-validated precision
    /// the default threshold must reach.
    pub precision_targets: [f64; LABELS],
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            features: FeatureConfig::default(),
            seed: 0x00ba_7011_2026,
            epochs: 40,
            learning_rate: 1.0,
            l2: 3e-4,
            min_cases: 2,
            folds: 5,
            cv_repeats: 2,
            positive_weight: [1.0; LABELS],
            average_from: 0,
            threshold_prior: 1.0,
            precision_targets: [0.97, 0.90, 0.90, 0.90],
        }
    }
}

/// Why training stopped.
#[derive(Debug)]
pub enum TrainError {
    Io {
        path: String,
        error: std::io::Error,
    },
    /// A line of a training file is not a case.
    Parse {
        source: String,
        line: usize,
        message: String,
    },
    /// Evaluation files are held out; the trainer never reads them.
    EvalFile(String),
    NoInputs(String),
    TooFewCases(usize),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, error } => write!(f, "{path}: {error}"),
            Self::Parse {
                source,
                line,
                message,
            } => write!(f, "{source}:{line}: {message}"),
            Self::EvalFile(path) => write!(
                f,
                "{path}: an evaluation file; the trainer reads *.train.jsonl only"
            ),
            Self::NoInputs(dir) => write!(f, "no *.train.jsonl in {dir}"),
            Self::TooFewCases(n) => write!(f, "{n} training cases, too few to cross-validate"),
        }
    }
}

impl std::error::Error for TrainError {}

/// One label's part of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelReport {
    pub label: Label,
    pub positives: usize,
    pub precision_target: f64,
    /// The default threshold and its cross-validated precision and recall.
    pub cv: Operating,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    pub cases: usize,
    pub folds: usize,
    pub labels: Vec<LabelReport>,
    /// Buckets with a weight after pruning and quantisation.
    pub rows: usize,
    pub bytes: usize,
    /// Per case, in input order: its probabilities from the folds that did
    /// not see it (the mean over the cross-validation repeats), which the
    /// thresholds were chosen from.
    pub out_of_fold: Vec<[f64; LABELS]>,
}

#[derive(Debug, Clone)]
pub struct Trained {
    /// The weights file.
    pub bytes: Vec<u8>,
    pub report: TrainReport,
}

/// A case's features before the fold decides which buckets count.
struct Counted {
    /// (bucket, occurrences), by bucket.
    buckets: Vec<(u32, u32)>,
    norm: f64,
    labels: [bool; LABELS],
}

/// Trains the four labels on `cases` and encodes the weights file.
pub fn train(cases: &[Case], config: &TrainConfig) -> Result<Trained, TrainError> {
    if cases.len() < 2 {
        return Err(TrainError::TooFewCases(cases.len()));
    }
    let counted: Vec<Counted> = cases.iter().map(|c| count(c, &config.features)).collect();
    let fit = Fit {
        buckets: config.features.buckets(),
        epochs: config.epochs,
        learning_rate: config.learning_rate,
        l2: config.l2,
        seed: config.seed,
        positive_weight: config.positive_weight,
        average_from: config.average_from,
    };

    // Out-of-fold probabilities, grouped by family, averaged over
    // `cv_repeats` different deals of the families to the folds.
    let repeats = config.cv_repeats.max(1);
    let mut oof = vec![[0.0f64; LABELS]; cases.len()];
    let mut fold_count = 0;
    for repeat in 0..repeats {
        let folds = fold_of_each(cases, config, repeat);
        fold_count = folds.iter().max().map_or(0, |m| m + 1);
        for k in 0..fold_count {
            let train: Vec<&Counted> = counted
                .iter()
                .zip(&folds)
                .filter(|(_, f)| **f != k)
                .map(|(c, _)| c)
                .collect();
            let model = fit_counted(&train, config, &fit);
            for (i, c) in counted.iter().enumerate().filter(|(i, _)| folds[*i] == k) {
                let z = model.logits(&values(c, None));
                for (sum, z) in oof[i].iter_mut().zip(z) {
                    *sum += sigmoid(z);
                }
            }
        }
    }
    for p in oof.iter_mut().flatten() {
        *p /= f64::from(repeats);
    }

    let all: Vec<&Counted> = counted.iter().collect();
    let model = fit_counted(&all, config, &fit);

    let mut labels = Vec::with_capacity(LABELS);
    let mut params = [LabelParams {
        bias: 0.0,
        scale: 0.0,
        threshold: 1.0,
    }; LABELS];
    let mut rows = vec![[0i8; LABELS]; fit.buckets];
    for label in Label::ALL {
        let l = label.index();
        let scored: Vec<(f64, bool)> = oof
            .iter()
            .zip(&counted)
            .map(|(p, c)| (p[l], c.labels[l]))
            .collect();
        let cv = choose(&scored, config.precision_targets[l], config.threshold_prior);
        let scale = quantise(&model, l, &mut rows);
        params[l] = LabelParams {
            bias: model.bias[l] as f32,
            scale,
            threshold: cv.threshold as f32,
        };
        labels.push(LabelReport {
            label,
            positives: counted.iter().filter(|c| c.labels[l]).count(),
            precision_target: config.precision_targets[l],
            cv,
        });
    }
    let weights = Weights {
        features: config.features,
        labels: params,
        rows,
    };
    let bytes = weights.encode();
    Ok(Trained {
        report: TrainReport {
            cases: cases.len(),
            folds: fold_count,
            labels,
            rows: weights.nonzero_rows(),
            bytes: bytes.len(),
            out_of_fold: oof,
        },
        bytes,
    })
}

fn count(case: &Case, features: &FeatureConfig) -> Counted {
    let normalized = normalize(&case.text);
    let mut buckets: Vec<u32> = Vec::new();
    for_each_feature(&normalized, features, |hash, _| {
        buckets.push(features.bucket(hash) as u32);
    });
    let total = buckets.len();
    buckets.sort_unstable();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for b in buckets {
        match runs.last_mut() {
            Some((last, n)) if *last == b => *n += 1,
            _ => runs.push((b, 1)),
        }
    }
    Counted {
        buckets: runs,
        norm: if total == 0 {
            0.0
        } else {
            1.0 / (total as f64).sqrt()
        },
        labels: case.labels,
    }
}

/// The case's feature values, as prediction computes them: occurrences
/// over √(all occurrences), pruned buckets left out.
fn values(c: &Counted, keep: Option<&[bool]>) -> Vec<(u32, f64)> {
    c.buckets
        .iter()
        .filter(|(b, _)| keep.is_none_or(|k| k[*b as usize]))
        .map(|&(b, n)| (b, f64::from(n) * c.norm))
        .collect()
}

fn fit_counted(cases: &[&Counted], config: &TrainConfig, fit: &Fit) -> Linear {
    let mut seen = vec![0u32; fit.buckets];
    for c in cases {
        for &(b, _) in &c.buckets {
            seen[b as usize] += 1;
        }
    }
    let keep: Vec<bool> = seen.iter().map(|&n| n >= config.min_cases).collect();
    let examples: Vec<Example> = cases
        .iter()
        .map(|c| Example {
            features: values(c, Some(&keep)),
            labels: c.labels,
        })
        .collect();
    let refs: Vec<&Example> = examples.iter().collect();
    logistic::fit(&refs, fit)
}

/// The fold of each case: its group (family, else itself) is dealt to
/// the folds in a seeded shuffled order, one order per `repeat`.
fn fold_of_each(cases: &[Case], config: &TrainConfig, repeat: u32) -> Vec<usize> {
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    let keys: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| match &c.family {
            Some(f) => format!("family:{f}"),
            None => format!("case:{i}"),
        })
        .collect();
    for key in &keys {
        let next = groups.len();
        groups.entry(key.clone()).or_insert(next);
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    let seed = config.seed ^ 0xf01d ^ u64::from(repeat).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    shuffle(&mut order, &mut SplitMix64(seed));
    let folds = (config.folds as usize).clamp(2, groups.len().max(2));
    let mut fold_of_group = vec![0; groups.len()];
    for (position, &g) in order.iter().enumerate() {
        fold_of_group[g] = position % folds;
    }
    keys.iter().map(|k| fold_of_group[groups[k]]).collect()
}

/// Writes label `l`'s weights into `rows` as `i8` and returns the scale.
fn quantise(model: &Linear, l: usize, rows: &mut [[i8; LABELS]]) -> f32 {
    let max = model.rows.iter().map(|r| r[l].abs()).fold(0.0f64, f64::max);
    if max == 0.0 {
        return 0.0;
    }
    let scale = (max / 127.0) as f32;
    for (q, w) in rows.iter_mut().zip(&model.rows) {
        q[l] = (w[l] / f64::from(scale)).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// `tests/policy/corpus` of the repository this crate was built in.
pub fn default_corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/policy/corpus")
}

/// `weights/model.bin` of this crate's source, the file compiled in.
pub fn default_weights_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/model.bin")
}
