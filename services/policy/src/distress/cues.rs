//! Cues in what the customer says: the lexicon's words, stems and phrases
//! (`[distress]` in `data/<tag>.toml`), and the same problem over and over.

use super::Evidence;
use crate::lexicon::lexicon;

/// How much an intensifier ("so angry") adds to the cue after it.
const INTENSIFIER_BOOST: f32 = 0.15;
/// The most one boosted cue can weigh, so that no single word is certainty.
const MAX_CUE: f32 = 0.9;

/// Is the cue at `clause[i]` negated: "not angry", "no estoy enojado", "pas
/// de panique"? A plain "no" right before the cue does not count, because
/// in Portuguese it is "in the" ("reclamar no Procon").
fn negated(clause: &[String], i: usize) -> bool {
    let words = &lexicon().distress;
    let before = |n: usize| i.checked_sub(n).map(|j| clause[j].as_str());
    before(1).is_some_and(|t| t != "no" && words.negators.contains(t))
        || (before(2).is_some_and(|t| words.negators.contains(t))
            && before(1).is_some_and(|t| words.negation_bridges.contains(t)))
}

/// Adds every lexicon cue of every clause, words first, then phrases,
/// clause by clause.
pub(super) fn lexicon_cues(clauses: &[Vec<String>], evidence: &mut Evidence) {
    let words = &lexicon().distress;
    let intensified = |clause: &[String], i: usize| {
        i.checked_sub(1)
            .is_some_and(|j| words.intensifiers.contains(&clause[j]))
    };
    for clause in clauses {
        for (i, w) in clause.iter().enumerate() {
            let hit = words.words.get(w).or_else(|| {
                // Stems cover inflections and attached pronouns ("denunciarlos").
                words.stems.iter().find(|(stem, _)| w.starts_with(stem))
            });
            if let Some((cue, weight)) = hit
                && !negated(clause, i)
            {
                let boost = if intensified(clause, i) {
                    INTENSIFIER_BOOST
                } else {
                    0.0
                };
                evidence.add((weight + boost).min(MAX_CUE), cue);
            }
        }
        for phrase in &words.phrases {
            let seq = phrase.text.words();
            let weight = phrase.weight.0;
            let mut at = clause
                .windows(seq.len())
                .enumerate()
                .filter(|(_, window)| *window == seq);
            if at.clone().any(|(i, _)| !negated(clause, i)) {
                // The boost looks at the first occurrence, negated or not.
                let boost = at.next().is_some_and(|(i, _)| intensified(clause, i));
                evidence.add(
                    if boost {
                        (weight + INTENSIFIER_BOOST).min(MAX_CUE)
                    } else {
                        weight
                    },
                    &seq.join(" "),
                );
            }
        }
    }
}

/// "The fourth time", "cinco vezes": the same problem over and over.
pub(super) fn repeated_problem(clauses: &[Vec<String>], evidence: &mut Evidence) {
    let words = &lexicon().distress;
    let repeats = clauses.iter().any(|c| {
        c.windows(2).any(|w| {
            let count = words.counts.contains(&w[0]) || w[0].chars().all(|c| c.is_ascii_digit());
            count && words.times.contains(&w[1])
        })
    });
    if repeats {
        evidence.add(0.3, "repeated problem");
    }
}
