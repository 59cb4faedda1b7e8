//! Reading the labelled turns: JSON Lines, one case a line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::TrainError;
use crate::Label;

/// One labelled customer turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: Option<String>,
    pub lang: Option<String>,
    /// The phrasing family; cases of one family share a fold.
    pub family: Option<String>,
    pub text: String,
    /// Per label in [`Label::ALL`] order.
    pub labels: [bool; 4],
}

/// The cases of every file read, in order, and the label names met that
/// the model does not read (with how often).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Corpus {
    pub cases: Vec<Case>,
    pub ignored_labels: BTreeMap<String, usize>,
}

/// A line of a corpus file: a single `text`, or a conversation as
/// `turns`, read for its last customer turn. Other fields (`note`…) are
/// allowed and ignored: the corpus schema belongs to its writers.
#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    turns: Option<Vec<Turn>>,
    expect: Vec<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    family: Option<String>,
}

#[derive(Deserialize)]
struct Turn {
    speaker: String,
    text: String,
}

impl Line {
    /// The customer turn the case is about: `text`, else the last
    /// customer turn of `turns`.
    fn customer_text(self) -> Option<String> {
        self.text.or_else(|| {
            self.turns?
                .into_iter()
                .rev()
                .find(|t| t.speaker == "customer")
                .map(|t| t.text)
        })
    }
}

/// The older labelled sets (`tests/policy/`, beside the corpus
/// directory) that the trainer reads after the corpus's training files.
/// They were written before the corpus, by other hands, and share no
/// phrasing family with the held-out `*.eval.jsonl`; their cases have no
/// `family`, so each is its own cross-validation group.
pub const OLDER_SETS: [&str; 4] = [
    "eval-set.jsonl",
    "eval-holdout.jsonl",
    "eval-blind.jsonl",
    "eval-final.jsonl",
];

/// Whether `path` is a held-out evaluation file (`*.eval.jsonl`), which
/// the trainer refuses.
pub fn is_eval_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".eval.jsonl"))
}

/// Every `*.train.jsonl` directly in `dir`, sorted by name, then those
/// of the [`OLDER_SETS`] that exist in `dir`'s parent, in that order.
pub fn default_inputs(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut files = corpus_train_files(dir)?;
    if let Some(parent) = dir.parent() {
        files.extend(
            OLDER_SETS
                .iter()
                .map(|name| parent.join(name))
                .filter(|p| p.is_file()),
        );
    }
    Ok(files)
}

/// Every `*.train.jsonl` directly in `dir`, sorted by name.
pub fn corpus_train_files(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let io = |error| TrainError::Io {
        path: dir.display().to_string(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_train = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".train.jsonl"));
        if is_train && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(TrainError::NoInputs(dir.display().to_string()));
    }
    Ok(files)
}

/// Reads `paths` in the order given.
pub fn read_files(paths: &[PathBuf]) -> Result<Corpus, TrainError> {
    let mut corpus = Corpus::default();
    for path in paths {
        let name = path.display().to_string();
        if is_eval_file(path) {
            return Err(TrainError::EvalFile(name));
        }
        let content = std::fs::read_to_string(path).map_err(|error| TrainError::Io {
            path: name.clone(),
            error,
        })?;
        parse_jsonl(&name, &content, &mut corpus)?;
    }
    Ok(corpus)
}

/// Appends the cases of one file's `content` to `corpus`. Blank lines are
/// skipped; a line that is not a case stops with its line number.
pub fn parse_jsonl(source: &str, content: &str, corpus: &mut Corpus) -> Result<(), TrainError> {
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parsed: Line = serde_json::from_str(line).map_err(|e| TrainError::Parse {
            source: source.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        let mut labels = [false; 4];
        let expect = std::mem::take(&mut parsed.expect);
        let (id, lang, family) = (parsed.id.take(), parsed.lang.take(), parsed.family.take());
        let Some(text) = parsed.customer_text() else {
            return Err(TrainError::Parse {
                source: source.to_owned(),
                line: i + 1,
                message: "neither `text` nor a customer turn in `turns`".to_owned(),
            });
        };
        for name in &expect {
            match name.parse::<Label>() {
                Ok(label) => labels[label.index()] = true,
                Err(_) => *corpus.ignored_labels.entry(name.clone()).or_default() += 1,
            }
        }
        corpus.cases.push(Case {
            id,
            lang,
            family,
            text,
            labels,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cases_and_counts_labels_it_does_not_read() {
        let content = r#"{"id": "en-1", "lang": "en", "text": "agent please", "expect": ["explicit_request"], "note": "x"}

{"text": "it failed again", "expect": ["repeated_failure", "distress"], "family": "f1"}
"#;
        let mut corpus = Corpus::default();
        parse_jsonl("t.jsonl", content, &mut corpus).expect("parses");
        assert_eq!(corpus.cases.len(), 2);
        assert_eq!(corpus.cases[0].labels, [true, false, false, false]);
        assert_eq!(corpus.cases[1].labels, [false, true, false, false]);
        assert_eq!(corpus.cases[1].family.as_deref(), Some("f1"));
        assert_eq!(corpus.ignored_labels.get("repeated_failure"), Some(&1));
    }

    #[test]
    fn a_conversation_is_read_for_its_last_customer_turn() {
        let content = r#"{"turns": [{"speaker": "customer", "text": "move it"}, {"speaker": "customer", "text": "agent"}, {"speaker": "ai", "text": "Sorry?"}], "expect": ["explicit_request"]}"#;
        let mut corpus = Corpus::default();
        parse_jsonl("t.jsonl", content, &mut corpus).expect("parses");
        assert_eq!(corpus.cases[0].text, "agent");
        let err = parse_jsonl("t.jsonl", r#"{"turns": [], "expect": []}"#, &mut corpus)
            .expect_err("no customer turn");
        assert!(err.to_string().starts_with("t.jsonl:1:"), "{err}");
    }

    #[test]
    fn a_bad_line_names_its_place() {
        let mut corpus = Corpus::default();
        let err = parse_jsonl(
            "t.jsonl",
            "{\"text\": \"a\", \"expect\": []}\n{oops\n",
            &mut corpus,
        )
        .expect_err("refused");
        assert!(err.to_string().starts_with("t.jsonl:2:"), "{err}");
    }

    #[test]
    fn evaluation_files_are_refused() {
        assert!(is_eval_file(Path::new("corpus/en.eval.jsonl")));
        assert!(!is_eval_file(Path::new("corpus/en.train.jsonl")));
        let err = read_files(&[PathBuf::from("corpus/en.eval.jsonl")]).expect_err("refused");
        assert!(matches!(err, TrainError::EvalFile(_)));
    }
}
