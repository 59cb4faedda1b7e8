//! Choosing a label's threshold from out-of-fold probabilities.

/// Where a label fires, and how it did there in cross-validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operating {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    /// Whether `precision` reached the target; if not, the threshold is
    /// the one with the best F1.
    pub target_met: bool,
}

/// The lowest threshold whose cross-validated precision reaches `target`
/// (so the most recall at that precision); failing that, the best F1.
/// Held against the target, the precision counts `prior` false positives
/// more than there are (`tp / (tp + fp + prior)`), so a threshold that
/// only a few cases clear needs more of them right; the reported
/// precision is the plain one.
/// `scored` is (probability, is the label) per case. The threshold sits
/// halfway between the last probability it takes in and the next below,
/// so it does not balance on one case's exact score.
pub fn choose(scored: &[(f64, bool)], target: f64, prior: f64) -> Operating {
    let positives = scored.iter().filter(|s| s.1).count();
    if positives == 0 {
        return Operating {
            threshold: 1.0,
            precision: 0.0,
            recall: 0.0,
            target_met: false,
        };
    }
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));

    let (mut tp, mut fp) = (0usize, 0usize);
    let mut lowest_meeting: Option<Operating> = None;
    let mut best_f1: Option<(f64, Operating)> = None;
    let mut i = 0;
    while i < sorted.len() {
        // Take in every case tied at this probability.
        let p = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == p {
            if sorted[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        if tp == 0 {
            continue;
        }
        let below = sorted.get(i).map_or(0.0, |s| s.0);
        let at = Operating {
            threshold: (p + below) / 2.0,
            precision: tp as f64 / (tp + fp) as f64,
            recall: tp as f64 / positives as f64,
            target_met: false,
        };
        if tp as f64 / (tp as f64 + fp as f64 + prior) >= target {
            lowest_meeting = Some(Operating {
                target_met: true,
                ..at
            });
        }
        let f1 = 2.0 * at.precision * at.recall / (at.precision + at.recall);
        if best_f1.is_none_or(|(best, _)| f1 > best) {
            best_f1 = Some((f1, at));
        }
    }
    lowest_meeting
        .or(best_f1.map(|(_, at)| at))
        .unwrap_or(Operating {
            threshold: 1.0,
            precision: 0.0,
            recall: 0.0,
            target_met: false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_threshold_meeting_the_target() {
        let scored = [
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.5, true),
            (0.4, false),
            (0.3, false),
        ];
        let at = choose(&scored, 0.75, 0.0);
        assert!(at.target_met);
        assert!((at.threshold - 0.45).abs() < 1e-12, "{at:?}");
        assert_eq!(at.recall, 1.0);
        assert_eq!(at.precision, 0.8);

        let at = choose(&scored, 0.95, 0.0);
        assert!((at.threshold - 0.75).abs() < 1e-12, "{at:?}");
        assert_eq!(at.recall, 0.5);
    }

    #[test]
    fn falls_back_to_best_f1_and_handles_no_positives() {
        let scored = [(0.9, false), (0.8, true), (0.1, false)];
        let at = choose(&scored, 0.99, 0.0);
        assert!(!at.target_met);
        assert_eq!(at.recall, 1.0);
        assert_eq!(choose(&[(0.5, false)], 0.9, 0.0).threshold, 1.0);
    }

    #[test]
    fn a_prior_asks_more_of_a_threshold_few_cases_clear() {
        let scored = [
            (0.9, true),
            (0.8, false),
            (0.7, true),
            (0.6, true),
            (0.5, true),
            (0.4, true),
            (0.3, true),
            (0.2, false),
        ];
        // Plainly 6 of 8 meets 0.75 at the very bottom; with one assumed
        // false positive 6 / 9 does not, and 6 / 8 above 0.2 does.
        let plain = choose(&scored, 0.75, 0.0);
        assert!((plain.threshold - 0.1).abs() < 1e-12, "{plain:?}");
        let smoothed = choose(&scored, 0.75, 1.0);
        assert!(smoothed.target_met);
        assert!((smoothed.threshold - 0.25).abs() < 1e-12, "{smoothed:?}");
        assert!((smoothed.precision - 6.0 / 7.0).abs() < 1e-12);
    }
}
