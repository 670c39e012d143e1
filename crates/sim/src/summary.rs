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
    /// The latencies, seconds, ascending, for a CDF figure: every one up
    /// to the exact cap, past it evenly spaced quantiles of the sketch
    /// (empty unless [`crate::engine::SimOptions::keep_latencies`]).
    #[serde(skip)]
    pub latencies_s: Vec<f64>,
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

/// Latencies a CDF figure is drawn from once a run passes the exact cap
/// (evenly spaced quantiles of the sketch).
pub const CDF_SAMPLE_POINTS: usize = 10_000;

/// Latencies past the exact cap gathered before they are added to the
/// sketches ([`Latencies::push`]): 16 MiB.
const PENDING_BLOCK: usize = 1 << 20;

/// Per-model latencies: kept exactly (for exact percentiles at the end)
/// up to `exact_up_to` requests in all, then moved into one sketch per
/// model (see `core::latency_sketch`).
///
/// Exact latencies are logged in arrival order, `(model, latency)` side by
/// side in two flat vectors, and grouped by model only when summarised: a
/// push appends where the last one did, instead of touching a vector of
/// its model's own (at 100,000 models, a cache miss per request).
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    /// Model of each exact latency, in the order recorded.
    models: Vec<u32>,
    /// Each exact latency, in the order recorded.
    values: Vec<f64>,
    /// Each model's latency objective, seconds (`None`: every request meets it).
    slo_s: Vec<Option<f64>>,
    /// Requests within their SLO, per model, among those grouped so far
    /// (counted when the log is grouped by model, not as each latency is
    /// recorded: at 100,000 models a per-request count is a cache miss).
    within_slo: Vec<u64>,
    /// The exact latencies grouped by model (each model's slice sorted
    /// once summarised), built from the log at the first summary.
    grouped: Option<Grouped>,
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

/// Latencies grouped by model: model `m`'s are `values[start[m]..start[m + 1]]`.
#[derive(Debug, Default)]
struct Grouped {
    start: Vec<usize>,
    values: Vec<f64>,
}

impl Grouped {
    /// Groups `(model, value)` pairs by model, each model's in the order
    /// given (a stable counting sort).
    fn of(models: usize, pairs: impl Iterator<Item = (u32, f64)> + Clone) -> Grouped {
        let mut start = vec![0usize; models + 1];
        let mut n = 0;
        for (m, _) in pairs.clone() {
            start[m as usize + 1] += 1;
            n += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut values = vec![0.0f64; n];
        let mut next = start.clone();
        for (m, x) in pairs {
            values[next[m as usize]] = x;
            next[m as usize] += 1;
        }
        Grouped { start, values }
    }

    /// Model `m`'s values.
    fn of_model(&mut self, m: usize) -> &mut [f64] {
        &mut self.values[self.start[m]..self.start[m + 1]]
    }

    /// Adds to `within[m]` the values of model `m` within `slo_s[m]`, for
    /// every model.
    fn count_within(&self, slo_s: &[Option<f64>], within: &mut [u64]) {
        for (m, (slo, n)) in slo_s.iter().zip(within.iter_mut()).enumerate() {
            let values = &self.values[self.start[m]..self.start[m + 1]];
            *n += match *slo {
                None => values.len() as u64,
                Some(slo) => values.iter().filter(|&&x| x <= slo).count() as u64,
            };
        }
    }
}

impl Latencies {
    /// Latencies of models whose latency objectives are `slo_s` (`None`:
    /// none), exact up to `exact_up_to` requests, room made for `expected`
    /// of them: the log is reserved once, not grown by doubling (each
    /// doubling below the allocator's mmap threshold copies the whole log
    /// and touches fresh pages).
    pub(crate) fn new(slo_s: Vec<Option<f64>>, exact_up_to: u64, expected: u64) -> Latencies {
        let room = expected.min(exact_up_to.saturating_add(1)) as usize;
        Latencies {
            within_slo: vec![0; slo_s.len()],
            slo_s,
            models: Vec::with_capacity(room),
            values: Vec::with_capacity(room),
            exact_up_to,
            ..Latencies::default()
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
        self.models.push(m as u32);
        self.values.push(x);
        if self.count > self.exact_up_to {
            let mut sketches = vec![LatencySketch::new(); self.within_slo.len()];
            let mut grouped = self.group();
            for (m, sketch) in sketches.iter_mut().enumerate() {
                grouped.of_model(m).iter().for_each(|&x| sketch.add(x));
            }
            self.sketches = Some(sketches);
        }
    }

    /// The exact log grouped by model, its latencies within their SLO
    /// counted; empties the log.
    fn group(&mut self) -> Grouped {
        let models = std::mem::take(&mut self.models);
        let values = std::mem::take(&mut self.values);
        let grouped = Grouped::of(
            self.within_slo.len(),
            models.iter().copied().zip(values.iter().copied()),
        );
        grouped.count_within(&self.slo_s, &mut self.within_slo);
        grouped
    }

    /// Adds the pending latencies to their models' sketches, grouped by
    /// model (stable: each model's in arrival order).
    fn add_pending(&mut self) {
        let Some(sketches) = &mut self.sketches else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        let mut grouped = Grouped::of(sketches.len(), self.pending.iter().copied());
        grouped.count_within(&self.slo_s, &mut self.within_slo);
        for (m, sketch) in sketches.iter_mut().enumerate() {
            grouped.of_model(m).iter().for_each(|&x| sketch.add(x));
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
        if self.grouped.is_none() {
            self.grouped = Some(self.group());
        }
        let v = self.grouped.as_mut().expect("grouped above").of_model(m);
        v.sort_unstable_by(f64::total_cmp);
        Summary::of_sorted(v, self.within_slo[m])
    }

    /// Summary over every model, and with `keep` the latencies for a CDF
    /// (all of them ascending, or past the exact cap
    /// [`CDF_SAMPLE_POINTS`] quantiles of the sketch); consumes the
    /// latencies (call after [`Latencies::model`]).
    pub(crate) fn overall(&mut self, keep: bool) -> (Summary, Vec<f64>) {
        self.add_pending();
        if self.sketches.is_none() && self.grouped.is_none() {
            self.grouped = Some(self.group());
        }
        let within_slo = self.within_slo.iter().sum();
        if let Some(sketches) = &self.sketches {
            let mut all = LatencySketch::new();
            sketches.iter().for_each(|s| all.merge(s));
            let cdf = if keep {
                all.sample(CDF_SAMPLE_POINTS)
            } else {
                Vec::new()
            };
            return (all.summary(within_slo), cdf);
        }
        let mut all = self.grouped.take().expect("grouped above").values;
        all.sort_unstable_by(f64::total_cmp);
        let summary = Summary::of_sorted(&all, within_slo);
        (summary, if keep { all } else { Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_match_core_summary() {
        let mut l = Latencies::new(vec![Some(0.25), Some(0.1)], u64::MAX, 0);
        for (m, x) in [(0, 0.3), (1, 0.05), (0, 0.1), (1, 0.7), (0, 0.2)] {
            l.push(m, x);
        }
        assert_eq!(l.model(0), Summary::of(&[0.3, 0.1, 0.2], 2));
        assert_eq!(l.model(1), Summary::of(&[0.05, 0.7], 1));
        assert_eq!(
            l.overall(false).0,
            Summary::of(&[0.3, 0.1, 0.2, 0.05, 0.7], 3)
        );
    }

    #[test]
    fn sketches_fed_in_blocks_are_those_fed_one_by_one() {
        let models = 7;
        // Model 0 has no objective; the others 50 ms.
        let slo: Vec<_> = (0..models).map(|m| (m > 0).then_some(0.05)).collect();
        let mut l = Latencies::new(slo.clone(), 10, 1000);
        let mut one_by_one = vec![LatencySketch::new(); models];
        let mut within = vec![0u64; models];
        let n = PENDING_BLOCK * 2 + 12345;
        for i in 0..n {
            let m = (i as u64 * 2_654_435_761 % 1_000_003) as usize % models;
            let x = 1e-3 + ((i as f64) * 0.618).fract() * 0.1;
            l.push(m, x);
            one_by_one[m].add(x);
            within[m] += slo[m].is_none_or(|s| x <= s) as u64;
        }
        // The first 11 went in exactly, then all moved into the sketches
        // in order: the same adds, model by model; the SLO counted across
        // the switch and every block.
        for (m, s) in one_by_one.iter().enumerate() {
            assert!(s.summary(0).requests > 0, "model {m} got none");
            assert!(
                within[m] > 0 && within[m] < n as u64,
                "model {m}: {}",
                within[m]
            );
            assert_eq!(l.model(m), s.summary(within[m]), "model {m}");
        }
        assert_eq!(
            l.overall(false).0.slo_attainment,
            within.iter().sum::<u64>() as f64 / n as f64
        );
    }

    #[test]
    fn past_the_exact_cap_percentiles_come_from_sketches() {
        let xs: Vec<f64> = (1..=1000).map(|i| i as f64 * 1e-3).collect();
        let mut exact = Latencies::new(vec![None; 2], 1000, 5);
        let mut sketched = Latencies::new(vec![None; 2], 400, u64::MAX);
        for (i, &x) in xs.iter().enumerate() {
            exact.push(i % 2, x);
            sketched.push(i % 2, x);
        }
        assert_eq!(exact.sketched(), None);
        let note = sketched.sketched().expect("switched past 400");
        assert_eq!(note.exact_up_to, 400);
        let (e, s) = (exact.overall(false).0, sketched.overall(false).0);
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
        assert!(sketched.values.is_empty() && sketched.models.is_empty());
    }
}
