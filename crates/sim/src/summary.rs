//! Results of a run and `summary.json`.

use crate::timeline::Timeline;
use serde::Serialize;
use std::path::Path;
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

/// Per-model latencies, kept to compute exact percentiles at the end.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    pub(crate) per_model: Vec<Vec<f64>>,
    pub(crate) within_slo: Vec<u64>,
}

impl Latencies {
    pub(crate) fn new(models: usize) -> Latencies {
        Latencies {
            per_model: vec![Vec::new(); models],
            within_slo: vec![0; models],
        }
    }

    /// Summary of model `m` (sorts its latencies in place; same values as `Summary::of`).
    pub(crate) fn model(&mut self, m: usize) -> Summary {
        let v = &mut self.per_model[m];
        v.sort_by(f64::total_cmp);
        Summary::of_sorted(v, self.within_slo[m])
    }

    /// Summary over every model; consumes the latencies (call after [`Latencies::model`]).
    pub(crate) fn overall(&mut self) -> Summary {
        let n = self.per_model.iter().map(Vec::len).sum();
        let mut all = Vec::with_capacity(n);
        for v in &mut self.per_model {
            all.append(v);
            v.shrink_to_fit();
        }
        all.sort_by(f64::total_cmp);
        Summary::of_sorted(&all, self.within_slo.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_match_core_summary() {
        let mut l = Latencies::new(2);
        l.per_model[0] = vec![0.3, 0.1, 0.2];
        l.per_model[1] = vec![0.05, 0.7];
        l.within_slo = vec![2, 1];
        assert_eq!(l.model(0), Summary::of(&[0.3, 0.1, 0.2], 2));
        assert_eq!(l.model(1), Summary::of(&[0.05, 0.7], 1));
        assert_eq!(l.overall(), Summary::of(&[0.3, 0.1, 0.2, 0.05, 0.7], 3));
    }
}
