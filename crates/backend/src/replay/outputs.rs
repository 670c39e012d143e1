//! What a replay writes, the files `sim` writes: `requests.csv`,
//! `summary.json` (with the replay's own fields: device, late dispatches,
//! hand-overs), `timeline.json` and `latency_cdf.svg`/`.png`.

use super::{Run, LATE_S};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use switchyard_core::records::RecordWriter;
use switchyard_core::stats::Summary;
use switchyard_core::summary::{self, ModelSummary, RunSummary};
use switchyard_core::timeline::write_timeline;
use switchyard_core::workload::PolicyName;
use switchyard_core::Workload;

/// Latency summary and loads of one model (`summary.json`'s `models`).
pub type ModelResult = ModelSummary;

/// `summary.json` of a replay ([`RunSummary`], shared with `sim`) with what
/// only a real run has.
pub type ReplayResult = RunSummary<ReplayRun>;

/// What only a replay reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayRun {
    /// Wall time from `t0` to the last finish, seconds.
    pub wall_s: f64,
    /// The device (`cuda`/`cpu`) and what it ran on.
    pub device: String,
    /// Measured GEMM rate used to size synthetic layers, TFLOP/s.
    pub gemm_tflops: f64,
    /// Arrivals fed more than `late_threshold_s` after their time.
    pub late_dispatches: u64,
    /// The threshold, seconds.
    pub late_threshold_s: f64,
    /// Largest dispatch delay, seconds.
    pub max_dispatch_delay_s: f64,
    /// Mean dispatch delay, seconds.
    pub mean_dispatch_delay_s: f64,
    /// Activations handed between pipeline stages, by path.
    pub handoffs: crate::exec::HandoffStats,
    /// Host time in single issuing calls of the executor (what can hold
    /// the dispatcher back), counted over the measured run.
    pub host_path: crate::exec::IssueStats,
    /// The CPUs replay's host thread was pinned to (`--pin-cpus`), `null`
    /// when it was left to the OS.
    pub host_cpus: Option<String>,
    /// How the host thread waited with nothing in flight (`--idle`:
    /// `sleep` or `spin`).
    pub idle: &'static str,
    /// `tp x pp` of each model as placed, in workload order.
    pub parallel: Vec<String>,
    /// The workload's background jobs: iterations and share of their GPU
    /// over the run (to `duration_s` at least, as `sim` counts).
    pub background: Vec<crate::exec::background::BackgroundResult>,
    /// The run was interrupted (Ctrl-C): only the requests finished by then
    /// are recorded and summarised.
    pub partial: bool,
}

/// Writes every output of `run` into `out`.
pub(super) fn write_outputs(
    run: &Run,
    w: &Workload,
    result: &ReplayResult,
    out: &Path,
) -> Result<()> {
    let mut writer = RecordWriter::create(&out.join("requests.csv"))?;
    for r in &run.records {
        writer.write(r)?;
    }
    writer.finish()?;
    summary::write(&out.join("summary.json"), result)?;
    write_timeline(&out.join("timeline.json"), run.spans.timeline())?;
    let mut lines: Vec<(String, Vec<f64>)> = vec![(
        "all".into(),
        run.records.iter().map(|r| r.latency_s).collect(),
    )];
    if w.models.len() <= 8 {
        for m in &w.models {
            lines.push((
                m.name.clone(),
                run.records
                    .iter()
                    .filter(|r| r.model == m.name)
                    .map(|r| r.latency_s)
                    .collect(),
            ));
        }
    }
    switchyard_report::cdf_figure(
        &lines,
        &format!("replay: {} ({})", w.name, result.run.device),
        true,
        &out.join("latency_cdf.svg"),
        &out.join("latency_cdf.png"),
    )?;
    Ok(())
}

/// How late the dispatcher fed arrivals to the scheduler.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dispatch {
    /// Arrivals fed more than [`LATE_S`] late.
    pub late: u64,
    /// The latest, seconds.
    pub max_delay_s: f64,
    /// Mean delay over all arrivals fed, seconds.
    pub mean_delay_s: f64,
}

pub(super) fn summarize(
    run: &Run,
    w: &Workload,
    device: String,
    gemm_tflops: f64,
    wall_s: f64,
    dispatch: Dispatch,
    partial: bool,
) -> ReplayResult {
    let stats = run.sched.load_stats();
    let mut models = Vec::new();
    let (mut all, mut within) = (Vec::new(), 0u64);
    for (i, m) in w.models.iter().enumerate() {
        let lat: Vec<f64> = run
            .records
            .iter()
            .filter(|r| r.model == m.name)
            .map(|r| r.latency_s)
            .collect();
        let ok = lat
            .iter()
            .filter(|l| m.slo_s.is_none_or(|s| **l <= s))
            .count() as u64;
        within += ok;
        all.extend_from_slice(&lat);
        let placement = run.sched.placement(i as u32);
        let (direct_host_layers, direct_host_bytes) = placement.direct_host();
        let (multipath_groups, one_link) = placement.helper_groups();
        models.push(ModelResult {
            model: m.name.clone(),
            summary: Summary::of(&lat, ok),
            loads: stats[i].loads,
            bytes_loaded: stats[i].bytes,
            direct_host_layers,
            direct_host_bytes,
            multipath_groups,
            one_link_groups: if multipath_groups > 0 { one_link } else { 0 },
        });
    }
    ReplayResult {
        workload: w.name.clone(),
        system: w.policy.system.name().to_string(),
        eviction: w.policy.eviction.name().to_string(),
        grouping: w.policy.grouping.name().to_string(),
        multipath_helpers: if w.loading.multipath() {
            w.loading.helpers
        } else {
            0
        },
        direct_host: run.sched.direct_host(),
        summary: Summary::of(&all, within),
        loads: stats.iter().map(|s| s.loads).sum(),
        bytes_loaded: stats.iter().map(|s| s.bytes).sum(),
        offloads: run.sched.offload().then_some(run.offloads),
        events: run.events,
        run: ReplayRun {
            wall_s,
            device,
            gemm_tflops,
            late_dispatches: dispatch.late,
            late_threshold_s: LATE_S,
            max_dispatch_delay_s: dispatch.max_delay_s,
            mean_dispatch_delay_s: dispatch.mean_delay_s,
            handoffs: run.ex.handoff_stats(),
            host_path: run.ex.issue,
            host_cpus: run.ex.host_cpus.clone(),
            idle: run.ex.idle.name(),
            parallel: run
                .sched
                .placements()
                .iter()
                .map(|p| format!("{}x{}", p.tp, p.pp))
                .collect(),
            background: run.background.clone(),
            partial,
        },
        models,
    }
}
