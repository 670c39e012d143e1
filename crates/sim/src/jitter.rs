//! Seeded variation of copy and compute times ([`switchyard_core::hardware::Jitter`]).

use rand::rngs::StdRng;
use rand::Rng;
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal, Poisson};
use switchyard_core::hardware::Jitter;

/// Draws the factor each copy's and each compute task's cost-model time is
/// multiplied by: log-normal with mean 1 and the profile's CV, from one
/// generator seeded by the workload's seed, drawn in event order (so the
/// same seed gives the same times). A CV of 0 always gives 1.
///
/// Host stalls come from a generator of their own, so a profile with them
/// draws the same copy and compute factors as one without.
#[derive(Debug)]
pub(crate) struct Noise {
    rng: StdRng,
    copy: Option<LogNormal<f64>>,
    compute: Option<LogNormal<f64>>,
    stall_rng: StdRng,
    stall_rate_per_s: f64,
    stall_quantiles_s: Vec<f64>,
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
    pub(crate) fn new(jitter: &Jitter, seed: u64) -> Noise {
        let stalls = jitter.host_stalls();
        Noise {
            // A stream of its own: arrivals use `seed` directly.
            rng: StdRng::seed_from_u64(seed ^ 0x6a09_e667_f3bc_c908),
            copy: mean_one(jitter.copy_cv),
            compute: mean_one(jitter.compute_cv),
            stall_rng: StdRng::seed_from_u64(seed ^ 0xbb67_ae85_84ca_a73b),
            stall_rate_per_s: if stalls {
                jitter.host_stall_rate_per_s
            } else {
                0.0
            },
            stall_quantiles_s: if stalls {
                jitter.host_stall_ms.iter().map(|ms| ms * 1e-3).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Seconds the host stalls while issuing for `issue_s` seconds: a
    /// Poisson number of stalls at the profile's rate, each of a size drawn
    /// from its quantiles. Always 0 without host stalls (nothing drawn).
    pub(crate) fn host_stall(&mut self, issue_s: f64) -> f64 {
        let mean = self.stall_rate_per_s * issue_s;
        if mean <= 0.0 {
            return 0.0;
        }
        let n = Poisson::new(mean).map_or(0.0, |p| p.sample(&mut self.stall_rng)) as u64;
        (0..n).map(|_| self.stall_size()).sum()
    }

    /// One stall's size: the quantile table read at a uniform probability,
    /// linearly between its points.
    fn stall_size(&mut self) -> f64 {
        let q = &self.stall_quantiles_s;
        let x = self.stall_rng.random::<f64>() * (q.len() - 1) as f64;
        let i = (x as usize).min(q.len() - 2);
        q[i] + (q[i + 1] - q[i]) * (x - i as f64)
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
            ..Jitter::default()
        };
        let mut n = Noise::new(&jitter, 1);
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
        let mut n = Noise::new(&Jitter::default(), 1);
        assert_eq!((n.copy(), n.compute()), (1.0, 1.0));
    }

    #[test]
    fn host_stalls_arrive_at_their_rate_with_their_sizes() {
        let jitter = Jitter {
            host_stall_rate_per_s: 10.0,
            host_stall_ms: vec![0.5, 1.0, 4.0],
            ..Jitter::default()
        };
        let mut n = Noise::new(&jitter, 3);
        // 200,000 passes of 5 ms: 1,000 s of issuing, about 10,000 stalls
        // of mean size (0.5 + 1.0) / 4 + (1.0 + 4.0) / 4 = 1.625 ms.
        let total: f64 = (0..200_000).map(|_| n.host_stall(5e-3)).sum();
        assert!(
            (total / (10_000.0 * 1.625e-3) - 1.0).abs() < 0.03,
            "{total}"
        );
        let sizes: Vec<f64> = (0..10_000).map(|_| n.stall_size()).collect();
        assert!(sizes.iter().all(|&s| (0.5e-3..=4e-3).contains(&s)));
        let below_1ms = sizes.iter().filter(|&&s| s < 1e-3).count() as f64 / 1e4;
        assert!((below_1ms - 0.5).abs() < 0.02, "{below_1ms}");
        // The copy and compute factors are those of a profile without stalls.
        let mut plain = Noise::new(&Jitter::default(), 3);
        assert_eq!(n.compute(), plain.compute());
        assert_eq!(plain.host_stall(1.0), 0.0);
    }
}
