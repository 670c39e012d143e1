//! Results of a run and `summary.json`.

use crate::timeline::Timeline;
use serde::Serialize;
use std::path::Path;
use switchyard_core::latency_sketch::{LatencySketch, SketchedQuantiles};
use switchyard_core::stats::Summary;
use switchyard_core::summary::{self, ModelSummary, RunSummary};
use switchyard_core::Error;

/// Latency summary and loads of one model (`summary.json`'s `models`).
pub type ModelResult = ModelSummary;

/// Everything a run produced except the per-request records: `summary.json`
/// ([`RunSummary`], shared with `replay`) with the simulator's own fields.
pub type SimResult = RunSummary<SimRun>;

/// What only a simulated run reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimRun {
    /// Virtual time when the last request finished, seconds.
    pub simulated_s: f64,
    /// The workload's background jobs: iterations and share of their GPU
    /// (absent without jobs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub background: Vec<crate::background::BackgroundResult>,
    /// Present when `timeline.json` hit its span cap: what it holds and
    /// what was left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline_cut: Option<TimelineCut>,
    /// Present when the run served more requests than `--exact-quantiles`:
    /// its percentiles came from sketches, within the error stated here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantiles_sketched: Option<SketchedQuantiles>,
    /// Spans for `timeline.json` (empty unless asked for).
    #[serde(skip)]
    pub timeline: Timeline,
}

/// How `timeline.json` was cut by its span cap (`summary.json`'s `timeline_cut`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimelineCut {
    /// The cap (`--timeline-max-spans`).
    pub max_spans: u64,
    /// Spans written.
    pub kept_spans: u64,
    /// Spans in the window left out by the cap.
    pub dropped_spans: u64,
    /// Virtual time, seconds, up to which the timeline is complete: every
    /// span in the window that starts before it was written.
    pub complete_until_s: f64,
}

/// Writes `summary.json` (pretty JSON, atomically).
pub fn write_summary(path: &Path, result: &SimResult) -> Result<(), Error> {
    summary::write(path, result)
}

/// Writes several runs' summaries (e.g. `--compare-systems`) as one JSON array.
pub fn write_comparison(path: &Path, results: &[SimResult]) -> Result<(), Error> {
    summary::write(path, results)
}

/// Latencies past the exact cap gathered before they are added to the
/// sketches ([`Latencies::push`]): 16 MiB.
const PENDING_BLOCK: usize = 1 << 20;

/// Per-model latencies: kept exactly (for exact percentiles at the end)
/// up to `exact_up_to` requests in all, then moved into one sketch per
/// model (see `core::latency_sketch`).
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    pub(crate) per_model: Vec<Vec<f64>>,
    pub(crate) within_slo: Vec<u64>,
    /// One sketch per model once the exact cap is passed.
    sketches: Option<Vec<LatencySketch>>,
    /// Past the cap: `(model, latency)` not yet added to the sketches, in
    /// arrival order. Added a block at a time, model by model (each
    /// model's in the order they came, so every sketch, its float sum
    /// included, is the one adding them one by one gives), which visits
    /// each sketch once per block instead of once per request.
    pending: Vec<(u32, f64)>,
    /// Latencies recorded so far.
    count: u64,
    exact_up_to: u64,
}

impl Latencies {
    /// Latencies of `models` models, exact up to `exact_up_to` requests.
    pub(crate) fn new(models: usize, exact_up_to: u64) -> Latencies {
        Latencies {
            per_model: vec![Vec::new(); models],
            within_slo: vec![0; models],
            sketches: None,
            pending: Vec::new(),
            count: 0,
            exact_up_to,
        }
    }

    /// Records latency `x` of model `m`.
    pub(crate) fn push(&mut self, m: usize, x: f64) {
        self.count += 1;
        if self.sketches.is_some() {
            self.pending.push((m as u32, x));
            if self.pending.len() >= PENDING_BLOCK {
                self.add_pending();
            }
            return;
        }
        self.per_model[m].push(x);
        if self.count > self.exact_up_to {
            let sketches = self
                .per_model
                .iter_mut()
                .map(|v| {
                    let mut s = LatencySketch::new();
                    v.iter().for_each(|&x| s.add(x));
                    *v = Vec::new();
                    s
                })
                .collect();
            self.sketches = Some(sketches);
        }
    }

    /// Adds the pending latencies to their models' sketches, grouped by
    /// model by a counting sort (stable: each model's in arrival order).
    fn add_pending(&mut self) {
        let Some(sketches) = &mut self.sketches else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        let mut start = vec![0u32; sketches.len() + 1];
        for &(m, _) in &self.pending {
            start[m as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut grouped = vec![0.0f64; self.pending.len()];
        let mut next = start.clone();
        for &(m, x) in &self.pending {
            grouped[next[m as usize] as usize] = x;
            next[m as usize] += 1;
        }
        for (m, sketch) in sketches.iter_mut().enumerate() {
            for &x in &grouped[start[m] as usize..start[m + 1] as usize] {
                sketch.add(x);
            }
        }
        self.pending.clear();
    }

    /// What `summary.json` says of the sketches, when percentiles came from them.
    pub(crate) fn sketched(&self) -> Option<SketchedQuantiles> {
        self.sketches
            .as_ref()
            .map(|_| SketchedQuantiles::new(self.exact_up_to))
    }

    /// Summary of model `m` (sorts its latencies in place; same values as `Summary::of`).
    pub(crate) fn model(&mut self, m: usize) -> Summary {
        self.add_pending();
        if let Some(s) = &self.sketches {
            return s[m].summary(self.within_slo[m]);
        }
        let v = &mut self.per_model[m];
        v.sort_by(f64::total_cmp);
        Summary::of_sorted(v, self.within_slo[m])
    }

    /// Summary over every model; consumes the latencies (call after [`Latencies::model`]).
    pub(crate) fn overall(&mut self) -> Summary {
        let within_slo = self.within_slo.iter().sum();
        self.add_pending();
        if let Some(sketches) = &self.sketches {
            let mut all = LatencySketch::new();
            sketches.iter().for_each(|s| all.merge(s));
            return all.summary(within_slo);
        }
        let n = self.per_model.iter().map(Vec::len).sum();
        let mut all = Vec::with_capacity(n);
        for v in &mut self.per_model {
            all.append(v);
            v.shrink_to_fit();
        }
        all.sort_by(f64::total_cmp);
        Summary::of_sorted(&all, within_slo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_match_core_summary() {
        let mut l = Latencies::new(2, u64::MAX);
        l.per_model[0] = vec![0.3, 0.1, 0.2];
        l.per_model[1] = vec![0.05, 0.7];
        l.within_slo = vec![2, 1];
        assert_eq!(l.model(0), Summary::of(&[0.3, 0.1, 0.2], 2));
        assert_eq!(l.model(1), Summary::of(&[0.05, 0.7], 1));
        assert_eq!(l.overall(), Summary::of(&[0.3, 0.1, 0.2, 0.05, 0.7], 3));
    }

    #[test]
    fn sketches_fed_in_blocks_are_those_fed_one_by_one() {
        let models = 7;
        let mut l = Latencies::new(models, 10);
        let mut one_by_one = vec![LatencySketch::new(); models];
        let n = PENDING_BLOCK * 2 + 12345;
        for i in 0..n {
            let m = (i as u64 * 2_654_435_761 % 1_000_003) as usize % models;
            let x = 1e-3 + ((i as f64) * 0.618).fract() * 0.1;
            l.push(m, x);
            one_by_one[m].add(x);
        }
        // The first 11 went in exactly, then all moved into the sketches
        // in order: the same adds, model by model.
        for (m, s) in one_by_one.iter().enumerate() {
            assert!(s.summary(0).requests > 0, "model {m} got none");
            assert_eq!(l.model(m), s.summary(0), "model {m}");
        }
    }

    #[test]
    fn past_the_exact_cap_percentiles_come_from_sketches() {
        let xs: Vec<f64> = (1..=1000).map(|i| i as f64 * 1e-3).collect();
        let mut exact = Latencies::new(2, 1000);
        let mut sketched = Latencies::new(2, 400);
        for (i, &x) in xs.iter().enumerate() {
            exact.push(i % 2, x);
            sketched.push(i % 2, x);
        }
        assert_eq!(exact.sketched(), None);
        let note = sketched.sketched().expect("switched past 400");
        assert_eq!(note.exact_up_to, 400);
        let (e, s) = (exact.overall(), sketched.overall());
        assert_eq!(s.requests, 1000);
        assert_eq!(s.max_s, e.max_s);
        // Type-7 interpolation vs the order statistic at the floor rank:
        // within one step (1 ms) plus the sketch's relative error.
        for (a, b) in [(s.p50_s, e.p50_s), (s.p90_s, e.p90_s), (s.p99_s, e.p99_s)] {
            assert!(
                (a - b).abs() <= 1e-3 + note.relative_error * b,
                "{a} vs {b}"
            );
        }
        assert!((s.mean_s - e.mean_s).abs() < 1e-12);
        assert!(sketched.per_model.iter().all(Vec::is_empty));
    }
}
