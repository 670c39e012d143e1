//! `summary.json`: one type, written by `sim` and `replay` and read by
//! `plot`.
//!
//! Both write the same fields in the same order; what only one kind of run
//! knows (the simulator's virtual time; the replay's device, late
//! dispatches, hand-overs) is its own type `X`, flattened between `events`
//! and `models`. A reader that does not care which kind wrote the file uses
//! [`AnySummary`], which keeps those fields as JSON.

use crate::error::{Error, InputError, Result};
use crate::output::write_atomic;
use crate::stats::Summary;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `summary.json` of one run: policy, latency summary and loads over all
/// requests, then the run's own fields `X`, then the same per model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary<X> {
    /// Workload name.
    pub workload: String,
    /// Serving system.
    pub system: String,
    /// Eviction policy.
    pub eviction: String,
    /// Layer grouping (PipeSwitch, streaming).
    pub grouping: String,
    /// Multi-path loading's helpers per load (`policy.loading: multipath`);
    /// absent (0) with direct loading, so earlier outputs are unchanged.
    #[serde(skip_serializing_if = "is_zero")]
    pub multipath_helpers: u32,
    /// Direct host access was on (`policy.direct_host`); absent when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub direct_host: bool,
    /// Latency summary over all requests.
    #[serde(flatten)]
    pub summary: Summary,
    /// Stage loads over all models (streaming: stage passes).
    pub loads: u64,
    /// Bytes copied host-to-device.
    pub bytes_loaded: u64,
    /// Evictions copied back to host memory (`policy.offload`); absent
    /// when off, so earlier outputs are unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offloads: Option<Offloads>,
    /// Scheduler events processed (arrivals, copy and compute completions).
    pub events: u64,
    /// What only this kind of run reports.
    #[serde(flatten)]
    pub run: X,
    /// Per model, in workload order.
    pub models: Vec<ModelSummary>,
}

/// Device-to-host copies of evicted weights (`policy.offload`), one per
/// evicted stage shard on each of its GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Offloads {
    /// Copies (a stage of tp ranks counts tp).
    pub count: u64,
    /// Bytes copied device-to-host.
    pub bytes: u64,
    /// Mean time of one copy, first byte to last, seconds (0 when none).
    pub mean_s: f64,
    /// Longest copy, seconds.
    pub max_s: f64,
}

impl Offloads {
    /// Counts one copy of `bytes` that took `secs`.
    pub fn add(&mut self, bytes: u64, secs: f64) {
        let n = self.count as f64;
        self.mean_s = (self.mean_s * n + secs) / (n + 1.0);
        self.max_s = self.max_s.max(secs);
        self.count += 1;
        self.bytes += bytes;
    }
}

/// Latency summary and loads of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelSummary {
    /// Model name.
    pub model: String,
    /// Its latency summary.
    #[serde(flatten)]
    pub summary: Summary,
    /// Stage loads of the model (streaming: stage passes).
    pub loads: u64,
    /// Bytes copied host-to-device for the model.
    pub bytes_loaded: u64,
    /// Direct host access: the model's first layers the grouping DP left
    /// in pinned host memory (per stage, summed); absent when none.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub direct_host_layers: u64,
    /// Bytes of those layers (never copied, no GPU memory); absent when none.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub direct_host_bytes: u64,
    /// Multi-path loading with helper-aware grouping: copy groups of the
    /// plan for a load with every helper lent, at the model's largest
    /// batch (over its stages); absent without that plan.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub multipath_groups: u64,
    /// Copy groups of the one-link plan at the same batch, beside
    /// [`ModelSummary::multipath_groups`]; absent without that plan.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub one_link_groups: u64,
}

/// Whether a count is zero (fields left out of `summary.json` then).
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// A summary read without knowing which kind of run wrote it: the run's
/// own fields stay JSON values.
pub type AnySummary = RunSummary<serde_json::Map<String, serde_json::Value>>;

/// `value` as `summary.json` holds it: pretty JSON and a final newline.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("summaries always serialise");
    bytes.push(b'\n');
    bytes
}

/// Writes `value` (a [`RunSummary`], or several) to `path` as pretty JSON,
/// atomically.
pub fn write<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &to_json(value))
}

/// Reads a `summary.json`; fields it lacks take their defaults (latencies
/// `NaN`, counts 0). Errors name the file and the line.
pub fn read(path: &Path) -> Result<AnySummary> {
    let text = crate::line_cap::read_text(path).map_err(|e| Error::unreadable(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Input(InputError::new(
            path,
            Some(e.line() as u64),
            "",
            format!("not a summary.json: {e}"),
        ))
    })
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Own {
        simulated_s: f64,
    }

    #[test]
    fn field_order_and_round_trip() {
        let s = RunSummary {
            workload: "w".into(),
            system: "computron".into(),
            eviction: "lru".into(),
            grouping: "optimal".into(),
            multipath_helpers: 0,
            direct_host: false,
            summary: Summary::of(&[1.0, 2.0], 2),
            loads: 3,
            bytes_loaded: 4,
            offloads: None,
            events: 5,
            run: Own { simulated_s: 6.0 },
            models: vec![ModelSummary {
                model: "m".into(),
                summary: Summary::of(&[], 0),
                loads: 0,
                bytes_loaded: 0,
                direct_host_layers: 0,
                direct_host_bytes: 0,
                multipath_groups: 0,
                one_link_groups: 0,
            }],
        };
        let text = String::from_utf8(to_json(&s)).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "workload",
                "system",
                "eviction",
                "grouping",
                "requests",
                "mean_s",
                "p50_s",
                "p90_s",
                "p99_s",
                "max_s",
                "slo_attainment",
                "loads",
                "bytes_loaded",
                "events",
                "simulated_s",
                "models"
            ]
        );
        let back: RunSummary<Own> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.run, s.run);
        assert_eq!(back.summary, s.summary);
        assert!(back.models[0].summary.mean_s.is_nan());
        let any: AnySummary = serde_json::from_str(&text).unwrap();
        assert_eq!(any.run["simulated_s"], 6.0);
        assert_eq!(any.summary.slo_attainment, 1.0);
    }
}
