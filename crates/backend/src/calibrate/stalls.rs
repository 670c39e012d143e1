//! Host stalls: how often, and for how long, the host thread that issues
//! passes stalls (`jitter.host_stall_rate_per_s` and `host_stall_ms`).
//!
//! Warm passes are timed back to back, the architectures taking turns, as
//! replay issues them; a pass more than [`THRESHOLD_S`] over its
//! architecture's median counts as a stall of that excess. On an H100 the
//! replays of the validation workloads showed 3.1-3.7 such stalls per second
//! of warm passes, of 1.0-5.9 ms (`results/validation/host_stalls.md`).

use anyhow::Result;
use std::time::{Duration, Instant};

/// Excess over the median that counts as a stall, seconds.
pub const THRESHOLD_S: f64 = 1e-3;

/// Stalls found in passes timed per class.
#[derive(Debug, Clone, PartialEq)]
pub struct StallFit {
    /// Passes timed.
    pub passes: usize,
    /// Seconds of passes timed.
    pub seconds: f64,
    /// Stall sizes (excess over the class median), seconds, ascending.
    pub stalls_s: Vec<f64>,
}

impl StallFit {
    /// Stalls per second of passes (0 with none).
    pub fn rate_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.stalls_s.len() as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The sizes' quantiles at 0, 0.1, ..., 1, milliseconds; empty with
    /// fewer than two stalls (too few to say their spread).
    pub fn quantiles_ms(&self) -> Vec<f64> {
        let n = self.stalls_s.len();
        if n < 2 {
            return Vec::new();
        }
        (0..=10)
            .map(|i| {
                let at = (i as f64 / 10.0 * (n - 1) as f64).round() as usize;
                (self.stalls_s[at] * 1e6).round() / 1e3
            })
            .collect()
    }
}

/// The stalls of `classes`, each a list of times (seconds) of one kind of
/// pass.
pub fn fit(classes: &[Vec<f64>]) -> StallFit {
    let mut fit = StallFit {
        passes: 0,
        seconds: 0.0,
        stalls_s: Vec::new(),
    };
    for times in classes.iter().filter(|t| !t.is_empty()) {
        let mut sorted = times.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        fit.passes += times.len();
        fit.seconds += times.iter().sum::<f64>();
        fit.stalls_s.extend(
            times
                .iter()
                .map(|t| t - median)
                .filter(|&e| e > THRESHOLD_S),
        );
    }
    fit.stalls_s.sort_unstable_by(f64::total_cmp);
    fit
}

/// Times passes of `kinds` kinds in turns (`pass(k)` runs one of kind `k`
/// and returns its seconds) for `budget` of wall time, then [`fit`]s them.
pub fn measure(
    kinds: usize,
    budget: Duration,
    mut pass: impl FnMut(usize) -> Result<f64>,
) -> Result<StallFit> {
    let mut classes = vec![Vec::new(); kinds];
    let end = Instant::now() + budget;
    while Instant::now() < end {
        for (k, times) in classes.iter_mut().enumerate() {
            times.push(pass(k)?);
        }
    }
    Ok(fit(&classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_excesses_over_each_class_median() {
        let mut a = vec![1e-3; 99];
        a.push(4e-3); // a 3 ms stall
        let mut b = vec![3e-3; 98];
        b.push(3.5e-3); // 0.5 ms over: not a stall
        b.push(5.5e-3); // 2.5 ms over
        let f = fit(&[a, b, Vec::new()]);
        assert_eq!(f.passes, 200);
        assert_eq!(f.stalls_s.len(), 2);
        assert!((f.stalls_s[0] - 2.5e-3).abs() < 1e-12 && (f.stalls_s[1] - 3e-3).abs() < 1e-12);
        assert!((f.seconds - (0.103 + 0.3 - 0.006 + 0.009)).abs() < 1e-9);
        assert!((f.rate_per_s() - 2.0 / f.seconds).abs() < 1e-9);
        let q = f.quantiles_ms();
        assert_eq!(q.len(), 11);
        assert_eq!((q[0], q[10]), (2.5, 3.0));
        assert!(q.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn too_few_stalls_have_no_quantiles_and_no_passes_no_rate() {
        let f = fit(&[vec![1e-3, 1e-3, 9e-3]]);
        assert_eq!(f.stalls_s.len(), 1);
        assert!(f.quantiles_ms().is_empty());
        assert_eq!(fit(&[]).rate_per_s(), 0.0);
    }

    #[test]
    fn measure_takes_turns_until_the_budget_is_spent() {
        let mut calls = [0usize; 3];
        let f = measure(3, Duration::from_millis(20), |k| {
            calls[k] += 1;
            std::thread::sleep(Duration::from_micros(200));
            Ok(2e-4)
        })
        .unwrap();
        assert!(calls[0] >= 2 && calls[0] == calls[2], "{calls:?}");
        assert_eq!(f.passes, calls.iter().sum::<usize>());
        assert!(f.stalls_s.is_empty());
    }
}
