//! The committed weights are exactly what the trainer makes of the
//! committed training files: weights cannot drift from the script.
//! On failure: `cargo run --release -p baton-policy-model --bin baton-policy-train`.

use baton_policy_model::train::{self, TrainConfig};

#[test]
fn committed_weights_equal_a_fresh_training_run() {
    let inputs = train::default_inputs(&train::default_corpus_dir()).expect("training files");
    assert!(inputs.iter().all(|p| !train::is_eval_file(p)));
    let corpus = train::read_files(&inputs).expect("training files parse");
    let trained = train::train(&corpus.cases, &TrainConfig::default()).expect("training runs");
    let committed = std::fs::read(train::default_weights_path()).expect("weights/model.bin");
    assert!(
        trained.bytes == committed,
        "weights/model.bin ({} bytes) differs from training on {} files ({} bytes): retrain with \
         `cargo run --release -p baton-policy-model --bin baton-policy-train`",
        committed.len(),
        inputs.len(),
        trained.bytes.len()
    );
}

#[test]
fn training_twice_gives_the_same_bytes() {
    let content = std::fs::read_to_string(
        train::default_inputs(&train::default_corpus_dir()).expect("training files")[0].clone(),
    )
    .expect("readable");
    let mut corpus = train::Corpus::default();
    train::parse_jsonl("first", &content, &mut corpus).expect("parses");
    let config = TrainConfig {
        epochs: 3,
        ..TrainConfig::default()
    };
    let a = train::train(&corpus.cases, &config).expect("trains");
    let b = train::train(&corpus.cases, &config).expect("trains");
    assert_eq!(a.bytes, b.bytes);
    assert!(a.bytes.len() <= baton_policy_model::MAX_WEIGHTS_BYTES);
}
