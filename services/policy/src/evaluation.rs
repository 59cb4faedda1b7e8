//! The labelled evaluation set and its scoring: precision and recall per
//! trigger. Used by the `baton-policy-eval` command and the integration test.
//!
//! One JSON object per line:
//! `{"id": "en-ex-001", "lang": "en", "text": "…", "expect": ["explicit_request"]}`;
//! `turns` instead of `text` for a conversation, and optional `intent`,
//! `entity_types`, `flags` as in [`Conversation`]. `expect` lists every
//! trigger a careful human reviewer says should fire; every other trigger is
//! a negative for that case.

use crate::{
    Conversation, Intent, Layers, PolicyConfig, RuntimeFlags, Trigger, Turn, evaluate_with,
};
use serde::Deserialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub lang: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub turns: Vec<Turn>,
    #[serde(default)]
    pub intent: Option<Intent>,
    #[serde(default)]
    pub entity_types: Vec<String>,
    #[serde(default)]
    pub flags: RuntimeFlags,
    pub expect: Vec<Trigger>,
    /// Why the label is what it is, for hard cases.
    #[serde(default)]
    pub note: Option<String>,
    /// The phrasing family (the corpus in `tests/policy/corpus/`): a family
    /// is wholly in the training split or wholly in the evaluation split.
    #[serde(default)]
    pub family: Option<String>,
}

impl Case {
    pub fn conversation(&self) -> Conversation {
        let mut turns = self.turns.clone();
        if let Some(text) = &self.text {
            turns.push(Turn::customer(text.clone()));
        }
        Conversation {
            language: self.lang.clone(),
            intent: self.intent.clone(),
            turns,
            entity_types: self.entity_types.clone(),
            flags: self.flags,
        }
    }
}

/// Parses the set; errors carry the line number.
pub fn load(jsonl: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if case.text.is_none() && case.turns.is_empty() {
            return Err(format!("line {}: {}: needs text or turns", i + 1, case.id));
        }
        cases.push(case);
    }
    Ok(cases)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub true_positives: u32,
    pub false_positives: u32,
    pub false_negatives: u32,
    pub true_negatives: u32,
}

impl Counts {
    /// 1.0 when nothing fired (no false alarm was possible to make).
    pub fn precision(&self) -> f64 {
        share(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// 1.0 when nothing should have fired (no escalation to miss).
    pub fn recall(&self) -> f64 {
        share(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

/// The 95% Wilson score interval of `part` of `whole`: honest for small
/// counts and for shares near 0 or 1, where the normal approximation is not.
pub fn wilson(part: u32, whole: u32) -> (f64, f64) {
    if whole == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n = f64::from(whole);
    let p = f64::from(part) / n;
    let z2n = z * z / n;
    let center = (p + z2n / 2.0) / (1.0 + z2n);
    let half = z * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt() / (1.0 + z2n);
    ((center - half).max(0.0), (center + half).min(1.0))
}

impl Counts {
    pub fn precision_interval(&self) -> (f64, f64) {
        wilson(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall_interval(&self) -> (f64, f64) {
        wilson(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

/// `part` of `whole`, and 1.0 of nothing: with no case to judge, nothing
/// was got wrong.
fn share(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        1.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

#[derive(Debug, Clone)]
pub struct Miss {
    pub id: String,
    pub trigger: Trigger,
    /// `true`: fired but not expected; `false`: expected but did not fire.
    pub false_positive: bool,
    pub text: String,
    pub evidence: Option<String>,
}

/// One line per miss: FP or FN, the case, the trigger, the text and the
/// evidence found, if any.
impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.false_positive { "FP" } else { "FN" };
        write!(
            f,
            "{kind} {:<16} {:<17} {}",
            self.id,
            self.trigger.as_str(),
            self.text
        )?;
        match &self.evidence {
            Some(evidence) => write!(f, " [{evidence}]"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub cases: usize,
    pub per_trigger: Vec<(Trigger, Counts)>,
    /// Every trigger per language, sorted by trigger then language.
    pub by_language: Vec<(Trigger, String, Counts)>,
    pub misses: Vec<Miss>,
}

impl Report {
    pub fn counts(&self, trigger: Trigger) -> Counts {
        self.per_trigger
            .iter()
            .find(|(t, _)| *t == trigger)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }

    /// Precision and recall with 95% Wilson intervals, per trigger that has
    /// a positive or a false alarm in the set, overall and per language.
    pub fn interval_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<26} {:>5} {:>5} {:>5} {:>22} {:>22}",
            "trigger / language", "pos", "fp", "fn", "precision [95% CI]", "recall [95% CI]"
        );
        for (t, c) in &self.per_trigger {
            if c.true_positives + c.false_negatives + c.false_positives == 0 {
                continue;
            }
            interval_row(&mut out, t.as_str(), c);
            for (_, lang, c) in self.by_language.iter().filter(|(lt, _, _)| lt == t) {
                interval_row(&mut out, &format!("  {lang}"), c);
            }
        }
        out
    }

    /// The per-language counts of one trigger.
    pub fn language_counts(&self, trigger: Trigger) -> impl Iterator<Item = (&str, &Counts)> {
        self.by_language
            .iter()
            .filter(move |(t, _, _)| *t == trigger)
            .map(|(_, lang, c)| (lang.as_str(), c))
    }
}

fn interval_row(out: &mut String, label: &str, c: &Counts) {
    let (plo, phi) = c.precision_interval();
    let (rlo, rhi) = c.recall_interval();
    let _ = writeln!(
        out,
        "{:<26} {:>5} {:>5} {:>5} {:>6.1}% [{:>5.1}–{:>5.1}] {:>6.1}% [{:>5.1}–{:>5.1}]",
        label,
        c.true_positives + c.false_negatives,
        c.false_positives,
        c.false_negatives,
        c.precision() * 100.0,
        plo * 100.0,
        phi * 100.0,
        c.recall() * 100.0,
        rlo * 100.0,
        rhi * 100.0
    );
}

fn tally(c: &mut Counts, expected: bool, fired: bool) {
    match (expected, fired) {
        (true, true) => c.true_positives += 1,
        (false, true) => c.false_positives += 1,
        (true, false) => c.false_negatives += 1,
        (false, false) => c.true_negatives += 1,
    }
}

/// Evaluates every case with both layers and counts per trigger.
pub fn run(config: &PolicyConfig, cases: &[Case]) -> Report {
    run_with(config, cases, Layers::BOTH)
}

/// Evaluates every case with the given layers and counts per trigger.
pub fn run_with(config: &PolicyConfig, cases: &[Case], layers: Layers) -> Report {
    let mut report = Report {
        cases: cases.len(),
        per_trigger: Trigger::ALL
            .iter()
            .map(|t| (*t, Counts::default()))
            .collect(),
        ..Report::default()
    };
    for case in cases {
        let conversation = case.conversation();
        let decision = evaluate_with(config, &conversation, layers);
        let primary = case
            .lang
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        for (trigger, counts) in &mut report.per_trigger {
            let expected = case.expect.contains(trigger);
            let hit = decision.fired.iter().find(|f| f.trigger == *trigger);
            tally(counts, expected, hit.is_some());
            let at = match report
                .by_language
                .iter()
                .position(|(t, l, _)| t == trigger && *l == primary)
            {
                Some(i) => i,
                None => {
                    report
                        .by_language
                        .push((*trigger, primary.clone(), Counts::default()));
                    report.by_language.len() - 1
                }
            };
            tally(&mut report.by_language[at].2, expected, hit.is_some());
            if expected != hit.is_some() {
                report.misses.push(Miss {
                    id: case.id.clone(),
                    trigger: *trigger,
                    false_positive: hit.is_some(),
                    text: conversation
                        .turns
                        .iter()
                        .filter(|t| t.speaker == crate::Speaker::Customer)
                        .map(|t| t.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" / "),
                    evidence: hit.map(|f| f.evidence.clone()),
                });
            }
        }
    }
    report
        .by_language
        .sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    report
}
