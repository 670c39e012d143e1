//! Percentiles past a cap: a mergeable quantile sketch (DDSketch, from the
//! `sketches-ddsketch` crate) of latencies, with a relative error bound.
//! Runs keep latencies exactly up to a number of requests
//! ([`DEFAULT_EXACT_QUANTILES`], `sim --exact-quantiles`) and switch to one
//! sketch per model past it; the overall sketch is their merge.

use crate::stats::Summary;
use serde::Serialize;
use sketches_ddsketch::{Config, DDSketch};

/// Requests whose latencies a run keeps exactly unless told otherwise.
pub const DEFAULT_EXACT_QUANTILES: u64 = 10_000_000;

/// Relative error of a sketched percentile: the value returned for a
/// quantile is within this fraction of the latency at its rank.
pub const SKETCH_RELATIVE_ERROR: f64 = 0.005;

/// Bins a sketch may hold: at [`SKETCH_RELATIVE_ERROR`] they span a factor
/// of about 1e17 above [`SKETCH_MIN_S`], so none is ever collapsed.
const SKETCH_MAX_BINS: u32 = 4096;

/// Smallest latency told apart from 0 by a sketch, seconds (1 ns).
const SKETCH_MIN_S: f64 = 1e-9;

/// What `summary.json` says when percentiles came from sketches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SketchedQuantiles {
    /// The sketch used.
    pub sketch: &'static str,
    /// Requests kept exactly before switching (`--exact-quantiles`).
    pub exact_up_to: u64,
    /// Each percentile is within this relative error of the latency at its
    /// rank (`floor(q (n - 1))`, 0-based); means, maxima and SLO
    /// attainment stay exact.
    pub relative_error: f64,
}

impl SketchedQuantiles {
    /// The note for runs that switched past `exact_up_to` requests.
    pub fn new(exact_up_to: u64) -> SketchedQuantiles {
        SketchedQuantiles {
            sketch: "DDSketch (sketches-ddsketch 0.4)",
            exact_up_to,
            relative_error: SKETCH_RELATIVE_ERROR,
        }
    }
}

/// A mergeable sketch of latencies, seconds.
#[derive(Clone)]
pub struct LatencySketch {
    inner: DDSketch,
    /// Exact sum and largest value (the sketch's own are kept too, but
    /// these are stated exact in `summary.json`).
    sum: f64,
    max: f64,
}

impl std::fmt::Debug for LatencySketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LatencySketch({} values)", self.count())
    }
}

impl Default for LatencySketch {
    fn default() -> Self {
        LatencySketch::new()
    }
}

impl LatencySketch {
    /// An empty sketch at [`SKETCH_RELATIVE_ERROR`].
    pub fn new() -> LatencySketch {
        LatencySketch {
            inner: DDSketch::new(Config::new(
                SKETCH_RELATIVE_ERROR,
                SKETCH_MAX_BINS,
                SKETCH_MIN_S,
            )),
            sum: 0.0,
            max: f64::NEG_INFINITY,
        }
    }

    /// Adds one latency.
    pub fn add(&mut self, x: f64) {
        self.inner.add(x);
        self.sum += x;
        self.max = self.max.max(x);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencySketch) {
        self.inner
            .merge(&other.inner)
            .expect("sketches of one configuration merge");
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.inner.count() as u64
    }

    /// The `q`-quantile (0..=1) within the relative error; `NaN` when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        self.inner
            .quantile(q.clamp(0.0, 1.0))
            .expect("q is within 0..=1")
            .unwrap_or(f64::NAN)
    }

    /// The summary of the values added; `within_slo` counts those that met
    /// their SLO.
    pub fn summary(&self, within_slo: u64) -> Summary {
        let n = self.count();
        if n == 0 {
            return Summary::default();
        }
        Summary {
            requests: n,
            mean_s: self.sum / n as f64,
            p50_s: self.quantile(0.50),
            p90_s: self.quantile(0.90),
            p99_s: self.quantile(0.99),
            max_s: self.max,
            slo_attainment: within_slo as f64 / n as f64,
        }
    }

    /// `points` latencies at evenly spaced quantiles (ascending): a stand-in
    /// sample for drawing the CDF.
    pub fn sample(&self, points: usize) -> Vec<f64> {
        if self.count() == 0 {
            return Vec::new();
        }
        (0..points)
            .map(|i| self.quantile((i as f64 + 0.5) / points as f64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every percentile is within the stated relative error of the
        /// exact latency at its rank, for a sketch built whole or merged
        /// from parts.
        #[test]
        fn quantiles_are_within_the_relative_error(
            xs in prop::collection::vec(1e-6f64..1e3, 1..2000),
            split in 0usize..2000,
            q in 0.0f64..=1.0,
        ) {
            let mut whole = LatencySketch::new();
            xs.iter().for_each(|&x| whole.add(x));
            let k = split.min(xs.len());
            let (mut a, mut b) = (LatencySketch::new(), LatencySketch::new());
            xs[..k].iter().for_each(|&x| a.add(x));
            xs[k..].iter().for_each(|&x| b.add(x));
            a.merge(&b);
            let mut sorted = xs.clone();
            sorted.sort_unstable_by(f64::total_cmp);
            let exact = sorted[(q * (sorted.len() - 1) as f64) as usize];
            for s in [&whole, &a] {
                let got = s.quantile(q);
                prop_assert!(
                    (got - exact).abs() <= SKETCH_RELATIVE_ERROR * exact * (1.0 + 1e-9),
                    "q {} got {} exact {}", q, got, exact
                );
                prop_assert_eq!(s.count(), xs.len() as u64);
                prop_assert_eq!(s.summary(0).max_s, *sorted.last().unwrap());
            }
        }
    }

    #[test]
    fn an_empty_sketch_summarises_as_no_requests() {
        let s = LatencySketch::new();
        assert_eq!(s.summary(0).requests, 0);
        assert!(s.quantile(0.5).is_nan());
        assert!(s.sample(10).is_empty());
    }
}
