//! Prints precision and recall per trigger on the labelled evaluation set.
//!
//! `baton-policy-eval [--set FILE] [--config FILE] [--misses]`; defaults are
//! the set and config in the repository's `tests/policy/`.

use baton_policy::{PolicyConfig, evaluation};
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/policy");
    let mut set = format!("{root}/eval-set.jsonl");
    let mut config = format!("{root}/eval-config.json");
    let mut misses = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--set" => set = args.next().unwrap_or_default(),
            "--config" => config = args.next().unwrap_or_default(),
            "--misses" => misses = true,
            _ => {
                eprintln!("usage: baton-policy-eval [--set FILE] [--config FILE] [--misses]");
                return ExitCode::from(2);
            }
        }
    }
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
    let result = read(&config)
        .and_then(|text| PolicyConfig::from_json(&text).map_err(|e| format!("{config}: {e}")))
        .and_then(|cfg| {
            let cases = evaluation::load(&read(&set)?).map_err(|e| format!("{set}: {e}"))?;
            Ok((cfg, cases))
        });
    let (cfg, cases) = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = evaluation::run(&cfg, &cases);
    print!("{}", report.table());
    if misses {
        println!("\nmisses");
        for m in &report.misses {
            println!("{m}");
        }
    }
    ExitCode::SUCCESS
}
