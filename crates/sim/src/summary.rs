//! Results of a run and `summary.json`.

use crate::timeline::Timeline;
use serde::Serialize;
use std::path::Path;
use switchyard_core::output::write_atomic;
use switchyard_core::stats::Summary;
use switchyard_core::Error;

/// Latency summary and loads of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    /// Model name.
    pub model: String,
    /// Its latency summary.
    #[serde(flatten)]
    pub summary: Summary,
    /// Stage loads of the model (streaming: stage passes).
    pub loads: u64,
    /// Bytes copied host-to-device for the model.
    pub bytes_loaded: u64,
}

/// Everything a run produced except the per-request records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimResult {
    /// Workload name.
    pub workload: String,
    /// Serving system.
    pub system: String,
    /// Eviction policy.
    pub eviction: String,
    /// Layer grouping (PipeSwitch, streaming).
    pub grouping: String,
    /// Latency summary over all requests.
    #[serde(flatten)]
    pub summary: Summary,
    /// Stage loads over all models.
    pub loads: u64,
    /// Bytes copied host-to-device.
    pub bytes_loaded: u64,
    /// Scheduler events processed (arrivals, copy and compute completions).
    pub events: u64,
    /// Virtual time when the last request finished, seconds.
    pub simulated_s: f64,
    /// Per model, in workload order.
    pub models: Vec<ModelResult>,
    /// Spans for `timeline.json` (empty unless asked for).
    #[serde(skip)]
    pub timeline: Timeline,
}

/// Writes `summary.json` (pretty JSON, atomically).
pub fn write_summary(path: &Path, result: &SimResult) -> Result<(), Error> {
    let mut bytes = serde_json::to_vec_pretty(result).expect("summaries always serialise");
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes several runs' summaries (e.g. `--compare-systems`) as one JSON array.
pub fn write_comparison(path: &Path, results: &[SimResult]) -> Result<(), Error> {
    let mut bytes = serde_json::to_vec_pretty(results).expect("summaries always serialise");
    bytes.push(b'\n');
    write_atomic(path, &bytes)
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
        sorted_summary(v, self.within_slo[m])
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
        sorted_summary(&all, self.within_slo.iter().sum())
    }
}

/// `Summary::of` for latencies already in ascending order (no copy).
fn sorted_summary(sorted: &[f64], within_slo: u64) -> Summary {
    use switchyard_core::stats::quantile;
    let n = sorted.len();
    Summary {
        requests: n as u64,
        mean_s: if n == 0 {
            f64::NAN
        } else {
            sorted.iter().sum::<f64>() / n as f64
        },
        p50_s: quantile(sorted, 0.50),
        p90_s: quantile(sorted, 0.90),
        p99_s: quantile(sorted, 0.99),
        max_s: sorted.last().copied().unwrap_or(f64::NAN),
        slo_attainment: if n == 0 {
            f64::NAN
        } else {
            within_slo as f64 / n as f64
        },
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
