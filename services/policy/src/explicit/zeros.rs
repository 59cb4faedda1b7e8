//! The operator by zeros: "0 0 0", "000", "zero, zero, zero", "press 0".

use crate::lexicon::lexicon;

/// Zeros as the whole clause ("0 0 0", "000", "cero cero") or after a press
/// verb ("I pressed 0"); the zeros as evidence.
pub(super) fn zeros(clause: &[String]) -> Option<String> {
    let words = &lexicon().explicit;
    let zero_count = |t: &str| -> usize {
        if words.zero_words.contains(t) {
            1
        } else if !t.is_empty() && t.bytes().all(|b| b == b'0') {
            t.len()
        } else {
            0
        }
    };
    let mut count = 0;
    let mut all = true;
    for t in clause {
        let z = zero_count(t);
        count += z;
        if z == 0 && !words.filler.contains(t) && !words.press_verbs.contains(t) {
            all = false;
        }
    }
    if all && count >= 2 {
        return Some(clause.join(" "));
    }
    for (i, t) in clause.iter().enumerate() {
        if words.press_verbs.contains(t) && clause.get(i + 1).is_some_and(|n| zero_count(n) > 0) {
            return Some(format!("{t} {}", clause[i + 1]));
        }
    }
    None
}
