//! A weighted pick among many models that draws exactly what
//! `rand_distr::weighted::WeightedIndex<f64>` draws (the same uniform
//! variate, the same index for it), found in O(1) expected time through a
//! guide table instead of a binary search over every cumulative weight:
//! with 100,000 models that search is a chain of cache misses per request.

use rand::distr::{Distribution, Uniform};
use rand::Rng;

/// Picks index `i` with probability `weights[i] / sum` (see the module docs).
#[derive(Debug, Clone)]
pub struct WeightedPick {
    /// `cumulative[i]`: `weights[0] + ... + weights[i]`, summed left to
    /// right as `WeightedIndex` sums them (the last weight's is left out).
    cumulative: Vec<f64>,
    /// Uniform on `[0, total)`: the variate `WeightedIndex` draws.
    uniform: Uniform<f64>,
    /// Width of a guide bucket: `total / buckets`.
    step: f64,
    /// `guide[k].0`: how many cumulative weights are `<=` `k * step`;
    /// `guide[k].1`: the next one (`cumulative[guide[k].0]`, infinite past
    /// the end), so a bucket holding one weight is answered from one line.
    guide: Vec<(u32, f64)>,
}

impl WeightedPick {
    /// The pick for `weights` (each finite and non-negative, sum positive
    /// and finite); `None` otherwise (where `WeightedIndex::new` fails).
    pub fn new(weights: &[f64]) -> Option<WeightedPick> {
        let (&first, rest) = weights.split_first()?;
        // `NaN` and negative weights are refused (`is_sign_negative` would
        // also refuse -0.0, which `WeightedIndex` takes).
        let valid = |w: f64| w >= 0.0;
        if !valid(first) {
            return None;
        }
        let mut total = first;
        let mut cumulative = Vec::with_capacity(rest.len());
        for &w in rest {
            if !valid(w) {
                return None;
            }
            cumulative.push(total);
            total += w;
        }
        if total == 0.0 || !total.is_finite() {
            return None;
        }
        let uniform = Uniform::new(0.0, total).ok()?;
        let buckets = weights.len();
        let step = total / buckets as f64;
        let guide = (0..=buckets)
            .map(|k| {
                let i = cumulative.partition_point(|&w| w <= k as f64 * step);
                (
                    i as u32,
                    cumulative.get(i).copied().unwrap_or(f64::INFINITY),
                )
            })
            .collect();
        Some(WeightedPick {
            cumulative,
            uniform,
            step,
            guide,
        })
    }

    /// Draws an index: `WeightedIndex::sample`'s, for the same generator state.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let x = self.uniform.sample(rng);
        let k = ((x / self.step) as usize).min(self.guide.len() - 2);
        // The bucket's bounds as the guide was built with them: when `x`
        // lies between them, so does its answer (the count is monotone).
        if k as f64 * self.step <= x && x < (k + 1) as f64 * self.step {
            let ((lo, next), hi) = (self.guide[k], self.guide[k + 1].0);
            match hi - lo {
                0 => lo as usize,
                1 => lo as usize + (next <= x) as usize,
                _ => {
                    let (lo, hi) = (lo as usize, hi as usize);
                    lo + self.cumulative[lo..hi].partition_point(|&w| w <= x)
                }
            }
        } else {
            self.cumulative.partition_point(|&w| w <= x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rand_distr::weighted::WeightedIndex;

    fn same_draws(weights: &[f64], n: usize) {
        let fast = WeightedPick::new(weights).unwrap();
        let slow = WeightedIndex::new(weights).unwrap();
        let (mut a, mut b) = (StdRng::seed_from_u64(7), StdRng::seed_from_u64(7));
        for i in 0..n {
            assert_eq!(fast.sample(&mut a), slow.sample(&mut b), "draw {i}");
        }
    }

    #[test]
    fn draws_what_weighted_index_draws() {
        let zipf: Vec<f64> = (1..=100_000).map(|r| 1.0 / (r as f64).powf(0.5)).collect();
        same_draws(&zipf, 200_000);
        let steep: Vec<f64> = (1..=1000).map(|r| 1.0 / (r as f64).powf(1.5)).collect();
        same_draws(&steep, 100_000);
        same_draws(&[1.0], 100);
        same_draws(&[0.0, 3.0, 0.0, 0.0, 1e-9, 2.0, 0.0], 100_000);
        same_draws(&[1e300, 1e-300, 1.0], 10_000);
    }

    #[test]
    fn refuses_what_weighted_index_refuses() {
        for w in [&[][..], &[0.0, 0.0], &[1.0, -1.0], &[f64::NAN, 1.0]] {
            assert!(WeightedPick::new(w).is_none(), "{w:?}");
            assert!(WeightedIndex::new(w).is_err(), "{w:?}");
        }
        // (`WeightedIndex` panics on an infinite total.)
        assert!(WeightedPick::new(&[f64::INFINITY]).is_none());
    }
}
