//! Prints precision and recall, with 95% confidence intervals, per trigger
//! and per language, for the rules alone, the model alone and both combined.
//!
//! `baton-policy-eval [--set FILE]... [--config FILE] [--layers rules|model|combined|all] [--misses]`;
//! by default the generalization split (`tests/policy/corpus/*.eval.jsonl`)
//! and the config in the repository's `tests/policy/`.

use baton_policy::{Layers, PolicyConfig, evaluation};
use std::process::ExitCode;

const USAGE: &str = "usage: baton-policy-eval [--set FILE]... [--config FILE] \
                     [--layers rules|model|combined|all] [--misses]";

fn main() -> ExitCode {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/policy");
    let mut sets = Vec::new();
    let mut config = format!("{root}/eval-config.json");
    let mut misses = false;
    let mut modes = vec!["rules", "model", "combined"];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--set", Some(v)) => sets.push(v),
            ("--config", Some(v)) => config = v,
            ("--layers", Some(v)) => {
                modes = match v.as_str() {
                    "all" => vec!["rules", "model", "combined"],
                    "rules" => vec!["rules"],
                    "model" => vec!["model"],
                    "combined" => vec!["combined"],
                    _ => {
                        eprintln!("{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            ("--misses", next) => {
                misses = true;
                if let Some(next) = next {
                    eprintln!("unexpected argument '{next}'\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if sets.is_empty() {
        match corpus_eval_files(&format!("{root}/corpus")) {
            Ok(files) => sets = files,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
    let loaded = read(&config)
        .and_then(|text| PolicyConfig::from_json(&text).map_err(|e| format!("{config}: {e}")))
        .and_then(|cfg| {
            let mut cases = Vec::new();
            for set in &sets {
                cases.extend(evaluation::load(&read(set)?).map_err(|e| format!("{set}: {e}"))?);
            }
            Ok((cfg, cases))
        });
    let (cfg, cases) = match loaded {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{} cases from {} file(s)", cases.len(), sets.len());
    for mode in modes {
        let layers = match mode {
            "rules" => Layers {
                rules: true,
                model: false,
            },
            "model" => Layers {
                rules: false,
                model: true,
            },
            _ => Layers::BOTH,
        };
        let report = evaluation::run_with(&cfg, &cases, layers);
        println!("\n== {mode} ==");
        print!("{}", report.interval_table());
        if misses {
            println!("misses ({mode})");
            for m in &report.misses {
                println!("{m}");
            }
        }
    }
    ExitCode::SUCCESS
}

/// The evaluation half of the corpus, sorted by name.
fn corpus_eval_files(dir: &str) -> Result<Vec<String>, String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{dir}: {e}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".eval.jsonl"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{dir}: no *.eval.jsonl"));
    }
    Ok(files)
}
