//! Seeded variation of copy and compute times ([`switchyard_core::hardware::Jitter`]).

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};
use switchyard_core::hardware::Jitter;

/// Draws the factor each copy's and each compute task's cost-model time is
/// multiplied by: log-normal with mean 1 and the profile's CV, from one
/// generator seeded by the workload's seed, drawn in event order (so the
/// same seed gives the same times). A CV of 0 always gives 1.
#[derive(Debug)]
pub(crate) struct Noise {
    rng: StdRng,
    copy: Option<LogNormal<f64>>,
    compute: Option<LogNormal<f64>>,
}

/// Log-normal of mean 1 and coefficient of variation `cv` (none for 0).
fn mean_one(cv: f64) -> Option<LogNormal<f64>> {
    if cv <= 0.0 {
        return None;
    }
    let var = (1.0 + cv * cv).ln();
    LogNormal::new(-var / 2.0, var.sqrt()).ok()
}

impl Noise {
    /// The sampler for `jitter`, seeded from the workload's `seed`.
    pub(crate) fn new(jitter: Jitter, seed: u64) -> Noise {
        Noise {
            // A stream of its own: arrivals use `seed` directly.
            rng: StdRng::seed_from_u64(seed ^ 0x6a09_e667_f3bc_c908),
            copy: mean_one(jitter.copy_cv),
            compute: mean_one(jitter.compute_cv),
        }
    }

    /// Factor of the next copy's time.
    pub(crate) fn copy(&mut self) -> f64 {
        self.copy.map_or(1.0, |d| d.sample(&mut self.rng))
    }

    /// Factor of the next compute task's time.
    pub(crate) fn compute(&mut self) -> f64 {
        self.compute.map_or(1.0, |d| d.sample(&mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean and coefficient of variation of `n` draws.
    fn moments(n: usize, mut draw: impl FnMut() -> f64) -> (f64, f64) {
        let v: Vec<f64> = (0..n).map(|_| draw()).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn factors_have_mean_one_and_the_asked_cv() {
        let jitter = Jitter {
            copy_cv: 0.02,
            compute_cv: 0.2,
        };
        let mut n = Noise::new(jitter, 1);
        let (mean, cv) = moments(100_000, || n.copy());
        assert!(
            (mean - 1.0).abs() < 1e-3 && (cv / 0.02 - 1.0).abs() < 0.03,
            "{mean} {cv}"
        );
        let (mean, cv) = moments(100_000, || n.compute());
        assert!(
            (mean - 1.0).abs() < 1e-2 && (cv / 0.2 - 1.0).abs() < 0.03,
            "{mean} {cv}"
        );
    }

    #[test]
    fn no_jitter_is_exactly_one() {
        let mut n = Noise::new(Jitter::default(), 1);
        assert_eq!((n.copy(), n.compute()), (1.0, 1.0));
    }
}
