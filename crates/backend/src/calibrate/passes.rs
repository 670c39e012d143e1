//! Whole forward passes for `replay calibrate`: what per-layer timing alone
//! misses.
//!
//! Events around every layer add their own gaps, and the first passes of a
//! shape pay cuBLAS and clock warm-up, so per-layer medians do not add up to
//! what a request sees. For each batch size this module
//! - warms the shape up with untimed passes;
//! - times whole passes as `replay` issues them ([`LAYERS_PER_PUMP`] layers
//!   at a time with an event poll between, or through a graph once the
//!   placement is warm ([`forward::Graphs`]), then the output copied to
//!   host memory) and scales the per-layer medians
//!   so they sum to the median pass;
//! - measures the host overhead: from issuing a pass to the host seeing its
//!   last event by polling, as the replay loop does, less the pass's GPU time;
//! - keeps each pass relative to its batch's median, for the jitter CV.

use super::layer_times::layer_times;
use crate::device::{Device, StreamKind};
use crate::exec::LAYERS_PER_PUMP;
use crate::forward;
use crate::model::ModelLayout;
use crate::pace::{idle_until, IdleWait};
use anyhow::Result;
use std::time::{Duration, Instant};
use switchyard_core::stats::median;

/// Untimed passes before measuring a batch size.
const WARMUP_PASSES: usize = 3;
/// Timed whole passes per batch size, at least.
const MIN_PASSES: usize = 15;

/// Whole-pass measurements of one architecture.
#[derive(Debug, Clone, Default)]
pub struct PassTimes {
    /// Per batch size: per-layer seconds, scaled to sum to `pass_s`.
    pub rows: Vec<Vec<f64>>,
    /// Per batch size: median whole-pass GPU time, seconds.
    pub pass_s: Vec<f64>,
    /// Per pass: host-observed time less GPU time, seconds.
    pub overhead_s: Vec<f64>,
    /// Per pass: its GPU time over its batch size's median.
    pub relative: Vec<f64>,
    /// Per batch size, per gap of [`IDLE_GAPS_S`]: median host time of a
    /// pass issued after the GPU sat idle that long, less the median of
    /// passes issued back to back, seconds (may be negative: noise).
    pub idle_extra_s: Vec<Vec<f64>>,
    /// Graphs captured and launched for the warm passes.
    pub graphs: forward::GraphStats,
}

/// Idle gaps before a pass at which the idle penalty is measured, seconds.
pub const IDLE_GAPS_S: [f64; 6] = [1e-4, 5e-4, 2e-3, 8e-3, 24e-3, 64e-3];
/// Passes per idle gap.
const IDLE_PASSES: usize = 7;

/// Coefficient of variation of values around 1 (robust to a few outliers:
/// the scaled median absolute deviation, as a normal law's sigma).
pub fn robust_cv(relative: &[f64]) -> f64 {
    let mut dev: Vec<f64> = relative.iter().map(|r| (r - 1.0).abs()).collect();
    1.4826 * median(&mut dev)
}

/// What [`measure`] times.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// Batch sizes.
    pub batches: &'a [u32],
    /// Repetitions per measurement.
    pub reps: usize,
    /// The device's GEMM rate, FLOP/s (synthetic layers' work).
    pub gemm_rate: f64,
    /// Warm passes through CUDA graphs.
    pub graphs: bool,
    /// How the idle gaps are waited.
    pub idle: IdleWait,
}

/// Measures `layout` (weights at `at`, workspace at `ws`) at each batch
/// size of `plan`.
pub fn measure(
    dev: &mut dyn Device,
    layout: &ModelLayout,
    at: u64,
    ws: u64,
    plan: &Plan,
) -> Result<PassTimes> {
    let max_b = plan.batches.iter().copied().max().unwrap_or(1) as usize;
    let out = dev.alloc_host(forward::output_bytes(layout, max_b), true)?;
    let mut times = PassTimes::default();
    let mut graphs = forward::Graphs::new(plan.graphs);
    let measured = measure_with(dev, layout, (at, ws), plan, &out, &mut graphs, &mut times);
    times.graphs = graphs.stats;
    graphs.clear(dev);
    measured.map(|_| times)
}

/// [`measure`] with its output buffer, graphs and results: weights at
/// `at`, workspace at `ws`.
fn measure_with(
    dev: &mut dyn Device,
    layout: &ModelLayout,
    (at, ws): (u64, u64),
    plan: &Plan,
    out: &crate::device::HostBuffer,
    graphs: &mut forward::Graphs,
    times: &mut PassTimes,
) -> Result<()> {
    let (batches, reps, gemm_rate) = (plan.batches, plan.reps, plan.gemm_rate);
    let n = layout.layers();
    let addr = forward::whole_at(layout, at);
    let shard = crate::model::shard::ShardLayout::single(layout);
    for &b in batches {
        let requests: Vec<u64> = (0..b as u64).collect();
        let run = forward::Run {
            gpus: &[0],
            layout,
            shard: &shard,
            layers: 0..n,
            addr: &addr,
            side: &forward::no_side,
            requests: &requests,
            ws,
            waits: &[],
            out: Some((out, 0)),
            gemm_rate,
            synthetic_slope: 0.1,
        };
        let passes = reps.max(MIN_PASSES);
        let mut gpu = Vec::with_capacity(passes);
        let mut host_times = Vec::with_capacity(passes);
        for p in 0..WARMUP_PASSES + passes {
            let e0 = dev.record(0, StreamKind::Compute)?;
            let t0 = Instant::now();
            // Issued as replay issues it: a layer per pump, the host
            // polling between layers, or whole through a graph once warm.
            let mut pass = forward::Pass::new(&run)?;
            while !pass.issued_all(&run) {
                graphs.step(dev, &mut pass, &run, LAYERS_PER_PUMP)?;
                dev.query(e0)?;
            }
            let start = pass.finish(dev, &run)?;
            dev.release(start);
            let e1 = dev.record(0, StreamKind::Compute)?;
            while !dev.query(e1)? {
                std::hint::spin_loop();
            }
            let host = t0.elapsed().as_secs_f64();
            let g = dev.elapsed_s(e0, e1)?;
            dev.release(e0);
            dev.release(e1);
            if p >= WARMUP_PASSES {
                gpu.push(g);
                host_times.push(host);
                times.overhead_s.push((host - g).max(0.0));
            }
        }
        let back_to_back = median(&mut host_times);
        let mut extra = Vec::with_capacity(IDLE_GAPS_S.len());
        for gap in IDLE_GAPS_S {
            let mut at_gap = Vec::with_capacity(IDLE_PASSES);
            for _ in 0..IDLE_PASSES {
                idle_until(Instant::now() + Duration::from_secs_f64(gap), plan.idle);
                at_gap.push(host_pass(dev, &run, graphs)?);
            }
            extra.push(median(&mut at_gap) - back_to_back);
        }
        times.idle_extra_s.push(extra);
        let pass = median(&mut gpu.clone());
        times
            .relative
            .extend(gpu.iter().map(|g| g / pass.max(1e-12)));
        let row = layer_times(dev, layout, at, ws, &[b], reps, gemm_rate)?
            .pop()
            .unwrap_or_default();
        let sum: f64 = row.iter().sum();
        let scale = if sum > 0.0 { pass / sum } else { 1.0 };
        times.rows.push(row.iter().map(|t| t * scale).collect());
        times.pass_s.push(pass);
    }
    Ok(())
}

/// Issues one pass as replay does (a layer per pump, an event poll between)
/// and waits for the host to see it done; the host time it took, seconds.
fn host_pass(
    dev: &mut dyn Device,
    run: &forward::Run,
    graphs: &mut forward::Graphs,
) -> Result<f64> {
    let t0 = Instant::now();
    let mut pass = forward::Pass::new(run)?;
    let e0 = dev.record(0, StreamKind::Compute)?;
    while !pass.issued_all(run) {
        graphs.step(dev, &mut pass, run, LAYERS_PER_PUMP)?;
        dev.query(e0)?;
    }
    let start = pass.finish(dev, run)?;
    let e1 = dev.record(0, StreamKind::Compute)?;
    while !dev.query(e1)? {
        std::hint::spin_loop();
    }
    let host = t0.elapsed().as_secs_f64();
    for e in [start, e0, e1] {
        dev.release(e);
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_cv_of_a_normal_sample_and_an_outlier() {
        // +-1% around 1, plus one far outlier: about 1% (not pulled up).
        let mut v: Vec<f64> = (0..100)
            .map(|i| 1.0 + 0.01 * ((i % 3) as f64 - 1.0))
            .collect();
        v.push(3.0);
        let cv = robust_cv(&v);
        assert!(cv > 0.005 && cv < 0.02, "{cv}");
        assert_eq!(robust_cv(&[1.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn cpu_passes_scale_layers_to_the_whole_pass() {
        let shape = switchyard_core::ModelShape::synthetic("tiny", 3, 1 << 16, 1e-4);
        let layout = ModelLayout::new(&shape).unwrap();
        let mut dev = crate::device::cpu::CpuDevice::new(1);
        let ws = layout.total_bytes().div_ceil(256) * 256;
        dev.init_arena(ws + forward::workspace_bytes(&layout, 2) + (1 << 20))
            .unwrap();
        forward::init_workspace(&mut dev, 0, ws, &[layout.dtype]).unwrap();
        let plan = Plan {
            batches: &[1, 2],
            reps: 2,
            gemm_rate: 1e9,
            graphs: false,
            idle: IdleWait::Spin,
        };
        let t = measure(&mut dev, &layout, 0, ws, &plan).unwrap();
        assert_eq!(t.rows.len(), 2);
        for (row, pass) in t.rows.iter().zip(&t.pass_s) {
            assert_eq!(row.len(), 3);
            assert!((row.iter().sum::<f64>() / pass - 1.0).abs() < 1e-9);
        }
        assert_eq!(t.overhead_s.len(), 2 * MIN_PASSES);
        assert!(t.relative.iter().all(|r| *r > 0.0));
    }
}
