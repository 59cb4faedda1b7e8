//! The control service's top-level modules form no import cycle (see the
//! README's Architecture section): each concern can be read, tested and
//! changed from the modules below it. Read from the source as text: every
//! `crate::<module>` outside test code and comments is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its non-test code names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).expect("below src");
            let name = relative.to_string_lossy();
            if !name.ends_with(".rs") || name.ends_with("tests.rs") || name.contains("tests/") {
                continue;
            }
            let top = name
                .split('/')
                .next()
                .expect("a first component")
                .trim_end_matches(".rs")
                .to_owned();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (_, rest) in line
                    .match_indices("crate::")
                    .map(|(i, _)| line.split_at(i + 7))
                {
                    let module: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !module.is_empty() && module != top {
                        edges.entry(top.clone()).or_default().insert(module);
                    }
                }
            }
        }
    }
    edges
}

/// A path from `from` back to itself through `edges`, if any.
fn cycle_through(from: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("non-empty");
        for next in edges.get(last).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let edges = edges();
    assert!(
        edges.get("api").is_some_and(|e| e.contains("domain")),
        "the reader sees the imports: {edges:?}"
    );
    let cycles: Vec<Vec<String>> = edges
        .keys()
        .filter_map(|module| cycle_through(module, &edges))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn the_domain_names_no_other_module() {
    let edges = edges();
    let named = edges.get("domain").cloned().unwrap_or_default();
    assert!(named.is_empty(), "domain imports {named:?}");
}
