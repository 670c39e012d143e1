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

    pub(crate) fn overall(&self) -> Summary {
        let all: Vec<f64> = self.per_model.iter().flatten().copied().collect();
        Summary::of(&all, self.within_slo.iter().sum())
    }
}
