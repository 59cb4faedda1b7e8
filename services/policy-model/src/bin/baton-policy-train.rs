//! Trains the policy model's weights from labelled turns.
//!
//! ```text
//! baton-policy-train [--out FILE | --check FILE] [--eval FILE]... [TRAIN_FILE]...
//! ```
//!
//! Without files it reads every `tests/policy/corpus/*.train.jsonl`, sorted
//! by name, then the older labelled sets `tests/policy/eval-set.jsonl`,
//! `eval-holdout.jsonl`, `eval-blind.jsonl` and `eval-final.jsonl`, and writes `services/policy-model/weights/model.bin`.
//! `--check FILE` writes nothing and exits 1 if FILE is not what training
//! produces. `--eval FILE` prints scores on held-out files after training,
//! for information: nothing about the weights depends on them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use baton_policy_model::train::{self, Case, TrainConfig};
use baton_policy_model::{Label, Model};

const USAGE: &str =
    "usage: baton-policy-train [--out FILE | --check FILE] [--eval FILE]... [TRAIN_FILE]...

  TRAIN_FILE    labelled JSONL files (default: every tests/policy/corpus/*.train.jsonl, sorted,
                then tests/policy/eval-{set,holdout,blind,final}.jsonl)
  --out FILE    where to write the weights (default: services/policy-model/weights/model.bin)
  --check FILE  write nothing; exit 1 unless FILE equals what training produces
  --eval FILE   after training, print precision and recall on FILE (information only)";

#[derive(Debug, Default)]
struct Args {
    out: Option<PathBuf>,
    check: Option<PathBuf>,
    eval: Vec<PathBuf>,
    inputs: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .map(PathBuf::from)
                .ok_or_else(|| format!("{flag} needs a file"))
        };
        match arg.to_str() {
            Some("--out") => args.out = Some(value("--out")?),
            Some("--check") => args.check = Some(value("--check")?),
            Some("--eval") => args.eval.push(value("--eval")?),
            Some("-h" | "--help") => return Err(String::new()),
            Some(flag) if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => args.inputs.push(PathBuf::from(arg)),
        }
    }
    if args.out.is_some() && args.check.is_some() {
        return Err("--out and --check exclude each other".to_owned());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("baton-policy-train: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("baton-policy-train: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let inputs = if args.inputs.is_empty() {
        train::default_inputs(&train::default_corpus_dir()).map_err(|e| e.to_string())?
    } else {
        args.inputs
    };
    let corpus = train::read_files(&inputs).map_err(|e| e.to_string())?;
    let config = TrainConfig::default();
    let started = Instant::now();
    let trained = train::train(&corpus.cases, &config).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();

    let r = &trained.report;
    println!(
        "{} cases from {} files ({}), {} folds grouped by family, dealt {} times",
        r.cases,
        inputs.len(),
        languages(&corpus.cases),
        r.folds,
        config.cv_repeats
    );
    println!("label              cases  target  threshold  cv-precision  cv-recall");
    for l in &r.labels {
        println!(
            "{:<17} {:>6}  {:>6.2}  {:>9.3}  {:>12.3}  {:>9.3}{}",
            l.label.name(),
            l.positives,
            l.precision_target,
            l.cv.threshold,
            l.cv.precision,
            l.cv.recall,
            if l.cv.target_met {
                ""
            } else {
                "  (target not met: best F1)"
            }
        );
    }
    for (name, n) in &corpus.ignored_labels {
        println!("label {name} not read by the model: {n} cases");
    }
    println!(
        "{} weighted rows of {}, {} bytes, trained in {:.2} s",
        r.rows,
        1usize << config.features.buckets_log2,
        r.bytes,
        elapsed.as_secs_f64()
    );

    let code = if let Some(check) = &args.check {
        let committed = std::fs::read(check).map_err(|e| format!("{}: {e}", check.display()))?;
        if committed == trained.bytes {
            println!("{}: matches the training output", check.display());
            ExitCode::SUCCESS
        } else {
            println!(
                "{}: DIFFERS from the training output; retrain with baton-policy-train",
                check.display()
            );
            ExitCode::FAILURE
        }
    } else {
        let out = args.out.unwrap_or_else(train::default_weights_path);
        std::fs::write(&out, &trained.bytes).map_err(|e| format!("{}: {e}", out.display()))?;
        println!("wrote {}", out.display());
        ExitCode::SUCCESS
    };

    if !args.eval.is_empty() {
        let model = Model::from_bytes(&trained.bytes).map_err(|e| e.to_string())?;
        evaluate(&model, &args.eval)?;
    }
    Ok(code)
}

fn languages(cases: &[Case]) -> String {
    let mut by_lang = std::collections::BTreeMap::<&str, usize>::new();
    for c in cases {
        *by_lang.entry(c.lang.as_deref().unwrap_or("?")).or_default() += 1;
    }
    by_lang
        .iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Precision and recall at the default thresholds on held-out files. Read
/// after the weights are final and used for nothing but this printout.
fn evaluate(model: &Model, files: &[PathBuf]) -> Result<(), String> {
    let mut corpus = train::Corpus::default();
    for path in files {
        let content =
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        train::parse_jsonl(&path.display().to_string(), &content, &mut corpus)
            .map_err(|e| e.to_string())?;
    }
    println!(
        "held-out, for information ({} cases, default thresholds):",
        corpus.cases.len()
    );
    println!("label              cases  precision  recall");
    for label in Label::ALL {
        let (mut tp, mut fp, mut missed) = (0usize, 0usize, 0usize);
        for case in &corpus.cases {
            let fires = model.predict(&case.text).get(label) >= model.default_threshold(label);
            match (fires, case.labels[label as usize]) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => missed += 1,
                (false, false) => {}
            }
        }
        let ratio = |a: usize, b: usize| {
            if b == 0 {
                f64::NAN
            } else {
                a as f64 / b as f64
            }
        };
        println!(
            "{:<17} {:>6}  {:>9.3}  {:>6.3}",
            label.name(),
            tp + missed,
            ratio(tp, tp + fp),
            ratio(tp, tp + missed)
        );
    }
    Ok(())
}
