//! One-vs-rest logistic regression by AdaGrad SGD, f64 throughout, with
//! its own `exp` and PRNG so that the same cases give the same bits on
//! every platform (libm's `exp` may differ in the last place).

use crate::Label;

const LABELS: usize = Label::ALL.len();

/// A training case as the learner sees it: sparse features with their
/// values (count / √total), and its labels.
#[derive(Debug, Clone)]
pub(crate) struct Example {
    pub features: Vec<(u32, f64)>,
    pub labels: [bool; LABELS],
}

/// The knobs of one fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fit {
    pub buckets: usize,
    pub epochs: u32,
    pub learning_rate: f64,
    pub l2: f64,
    pub seed: u64,
    /// Per label: how much a positive case's gradient counts (negatives 1).
    pub positive_weight: [f64; LABELS],
    /// From this epoch (1-based) on, the weights at the end of each epoch
    /// are averaged into the result; 0 or more than `epochs`: the last
    /// epoch's weights alone.
    pub average_from: u32,
}

/// A fitted model: a dense row of weights per bucket, a bias per label.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub rows: Vec<[f64; LABELS]>,
    pub bias: [f64; LABELS],
}

impl Linear {
    pub(crate) fn logits(&self, features: &[(u32, f64)]) -> [f64; LABELS] {
        let mut z = self.bias;
        for &(j, x) in features {
            let row = &self.rows[j as usize];
            for l in 0..LABELS {
                z[l] += row[l] * x;
            }
        }
        z
    }
}

pub(crate) fn fit(examples: &[&Example], fit: &Fit) -> Linear {
    let mut model = Linear {
        rows: vec![[0.0; LABELS]; fit.buckets],
        bias: [0.0; LABELS],
    };
    let mut squared = vec![[0.0f64; LABELS]; fit.buckets];
    let mut bias_squared = [0.0f64; LABELS];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = SplitMix64(fit.seed);
    let averaging = fit.average_from >= 1 && fit.average_from <= fit.epochs;
    let mut sum = Linear {
        rows: if averaging {
            vec![[0.0; LABELS]; fit.buckets]
        } else {
            Vec::new()
        },
        bias: [0.0; LABELS],
    };
    let mut averaged = 0u32;
    for epoch in 1..=fit.epochs {
        shuffle(&mut order, &mut rng);
        for &i in &order {
            let example = examples[i];
            let z = model.logits(&example.features);
            let mut g = [0.0; LABELS];
            for l in 0..LABELS {
                g[l] = if example.labels[l] {
                    (sigmoid(z[l]) - 1.0) * fit.positive_weight[l]
                } else {
                    sigmoid(z[l])
                };
                bias_squared[l] += g[l] * g[l];
                model.bias[l] -= fit.learning_rate * g[l] / (bias_squared[l].sqrt() + 1e-8);
            }
            for &(j, x) in &example.features {
                let row = &mut model.rows[j as usize];
                let acc = &mut squared[j as usize];
                for l in 0..LABELS {
                    let grad = g[l] * x + fit.l2 * row[l];
                    acc[l] += grad * grad;
                    row[l] -= fit.learning_rate * grad / (acc[l].sqrt() + 1e-8);
                }
            }
        }
        if averaging && epoch >= fit.average_from {
            averaged += 1;
            for (s, w) in sum.rows.iter_mut().zip(&model.rows) {
                for l in 0..LABELS {
                    s[l] += w[l];
                }
            }
            for l in 0..LABELS {
                sum.bias[l] += model.bias[l];
            }
        }
    }
    if averaged == 0 {
        return model;
    }
    let n = f64::from(averaged);
    for row in &mut sum.rows {
        for w in row.iter_mut() {
            *w /= n;
        }
    }
    for b in &mut sum.bias {
        *b /= n;
    }
    sum
}

/// Fisher–Yates.
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    let z = z.clamp(-40.0, 40.0);
    1.0 / (1.0 + exp(-z))
}

/// e^x for |x| ≤ 40 from + − × ÷ and `round` alone, each correctly
/// rounded by IEEE 754, hence the same bits everywhere.
fn exp(x: f64) -> f64 {
    // fdlibm's split of ln 2: the high part has trailing zero bits, so
    // k × LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor to r^13 / 13!: |r| ≤ ln2 / 2, the rest is below 1e-18.
    let mut p = 1.0;
    for n in (1..=13).rev() {
        p = 1.0 + r * p / f64::from(n);
    }
    // 2^k, k within ±58 here.
    let two_k = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    p * two_k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_close_to_std() {
        let mut x = -40.0;
        while x <= 40.0 {
            let ours = exp(x);
            let std = x.exp();
            assert!(((ours - std) / std).abs() < 1e-14, "{x}: {ours} vs {std}");
            x += 0.037;
        }
    }

    #[test]
    fn splitmix_is_pinned() {
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn fit_separates_a_trivial_set() {
        let a = Example {
            features: vec![(1, 1.0)],
            labels: [true, false, false, false],
        };
        let b = Example {
            features: vec![(2, 1.0)],
            labels: [false, true, false, false],
        };
        let m = fit(
            &[&a, &b],
            &Fit {
                buckets: 4,
                epochs: 50,
                learning_rate: 0.5,
                l2: 0.0,
                seed: 1,
                positive_weight: [1.0; LABELS],
                average_from: 40,
            },
        );
        assert!(sigmoid(m.logits(&a.features)[0]) > 0.9);
        assert!(sigmoid(m.logits(&b.features)[0]) < 0.1);
    }
}
