//! Embeds every language file in `data/` into the crate, so adding a
//! language is adding a file: writes `$OUT_DIR/languages.rs`, a list of
//! `(tag, text)` pairs in tag order, each text an `include_str!` of its file.

use std::{env, fs, path::Path};

fn main() {
    let data = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("data");
    println!("cargo:rerun-if-changed={}", data.display());
    let mut languages: Vec<(String, String)> = fs::read_dir(&data)
        .unwrap_or_else(|e| panic!("{}: {e}", data.display()))
        .map(|entry| entry.expect("readable data/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| {
            let tag = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_else(|| panic!("{}: file name is not UTF-8", path.display()))
                .to_owned();
            (tag, path.display().to_string())
        })
        .collect();
    // Tag order, so the merged lexicon does not depend on directory order.
    languages.sort();
    let mut out = String::from("&[\n");
    for (tag, path) in &languages {
        out.push_str(&format!("    ({tag:?}, include_str!({path:?})),\n"));
    }
    out.push_str("]\n");
    let target = Path::new(&env::var("OUT_DIR").expect("set by cargo")).join("languages.rs");
    fs::write(&target, out).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
}
