//! `replay passes`: warm forward passes of built-in architectures, issued
//! as the executor issues them, two ways on the same weights: layer by
//! layer (a layer per step, an event poll between, as before graphs) and
//! through graphs ([`forward::Graphs`]: the embedding's launches and one
//! graph launch). Per architecture and batch size: the median GPU time of
//! a pass (events before its first launch and after its output copy, so
//! launch gaps count) and the median host time to issue it.
//! `scripts/warm_pass_bench.sh` lays them beside PyTorch.

use crate::device::{Device, StreamKind};
use crate::forward;
use crate::model::ModelLayout;
use anyhow::{bail, Result};
use std::time::Instant;
use switchyard_core::stats::median;

/// Untimed passes first (the graph is captured in these).
const WARMUP: usize = 5;

/// One architecture at one batch size.
#[derive(Debug, Clone)]
pub struct Row {
    /// Architecture.
    pub arch: String,
    /// Requests per pass.
    pub batch: u32,
    /// Median pass, layer by layer, seconds.
    pub layers_s: f64,
    /// Median pass through a graph, seconds.
    pub graph_s: f64,
    /// Median host time to issue a pass layer by layer, seconds.
    pub layers_issue_s: f64,
    /// Median host time to issue a pass through a graph, seconds.
    pub graph_issue_s: f64,
    /// Graph launches, warm-up passes included.
    pub graph_launches: u64,
}

/// CSV header of [`Row::csv`].
pub const CSV_HEADER: &str = "arch,batch,layers_ms,graph_ms,layers_issue_us,graph_issue_us";

impl Row {
    /// One CSV line.
    pub fn csv(&self) -> String {
        format!(
            "{},{},{:.3},{:.3},{:.1},{:.1}",
            self.arch,
            self.batch,
            self.layers_s * 1e3,
            self.graph_s * 1e3,
            self.layers_issue_s * 1e6,
            self.graph_issue_s * 1e6
        )
    }
}

/// Measures every architecture at every batch size, `reps` timed passes
/// each way (at least 5).
pub fn measure(
    dev: &mut dyn Device,
    archs: &[String],
    batches: &[u32],
    reps: usize,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for a in archs {
        let Some(shape) = switchyard_core::arch::builtin(a) else {
            bail!(
                "unknown architecture `{a}`; expected one of: {}",
                switchyard_core::arch::NAMES.join(", ")
            );
        };
        rows.extend(measure_layout(
            dev,
            &ModelLayout::new(&shape)?,
            batches,
            reps,
        )?);
    }
    Ok(rows)
}

/// [`measure`] of one model (alone in the arena, weights at offset 0).
pub fn measure_layout(
    dev: &mut dyn Device,
    layout: &ModelLayout,
    batches: &[u32],
    reps: usize,
) -> Result<Vec<Row>> {
    let reps = reps.max(5);
    let max_b = batches.iter().copied().max().unwrap_or(1) as usize;
    let ws = layout.total_bytes().div_ceil(256) * 256;
    dev.init_arena(ws + forward::workspace_bytes(layout, max_b) + (1 << 20))?;
    if matches!(layout.kind, crate::model::Kind::Generic) {
        forward::init_workspace(dev, 0, ws, &[layout.dtype])?;
    }
    {
        let mut host = dev.alloc_host(layout.total_bytes(), true)?;
        crate::model::weights::fill_random(layout, 7, host.as_mut_slice());
        dev.copy_h2d(0, &host, 0, 0, layout.total_bytes())?;
        let e = dev.record(0, StreamKind::Copy)?;
        dev.synchronize(e)?;
        dev.release(e);
    }
    let out = dev.alloc_host(forward::output_bytes(layout, max_b), true)?;
    let addr = forward::whole_at(layout, 0);
    let shard = crate::model::shard::ShardLayout::single(layout);
    let mut rows = Vec::new();
    for &b in batches {
        let requests: Vec<u64> = (0..b as u64).collect();
        let run = forward::Run {
            gpus: &[0],
            layout,
            shard: &shard,
            layers: 0..layout.layers(),
            addr: &addr,
            side: &forward::no_side,
            requests: &requests,
            ws,
            waits: &[],
            out: Some((&out, 0)),
            // Sizes synthetic layers only; none of the built-in ones is.
            gemm_rate: 1e14,
            synthetic_slope: 0.1,
        };
        let (layers_s, layers_issue_s) = time(dev, &run, None, reps)?;
        let mut graphs = forward::Graphs::default();
        let timed = time(dev, &run, Some(&mut graphs), reps);
        let launches = graphs.stats.launches;
        graphs.clear(dev);
        let (graph_s, graph_issue_s) = timed?;
        rows.push(Row {
            arch: layout.shape.arch.clone(),
            batch: b,
            layers_s,
            graph_s,
            layers_issue_s,
            graph_issue_s,
            graph_launches: launches,
        });
    }
    Ok(rows)
}

/// Median GPU time and median host issue time of `reps` passes after
/// [`WARMUP`] untimed ones.
fn time(
    dev: &mut dyn Device,
    run: &forward::Run,
    mut graphs: Option<&mut forward::Graphs>,
    reps: usize,
) -> Result<(f64, f64)> {
    let (mut gpu, mut host) = (Vec::new(), Vec::new());
    for p in 0..WARMUP + reps {
        let e0 = dev.record(0, StreamKind::Compute)?;
        let t0 = Instant::now();
        let mut pass = forward::Pass::new(run)?;
        while !pass.issued_all(run) {
            match graphs.as_deref_mut() {
                Some(g) => {
                    g.step(dev, &mut pass, run, 1)?;
                }
                None => pass.step(dev, run, 1)?,
            }
            dev.query(e0)?;
        }
        let start = pass.finish(dev, run)?;
        let issue = t0.elapsed().as_secs_f64();
        let e1 = dev.record(0, StreamKind::Compute)?;
        while !dev.query(e1)? {
            std::hint::spin_loop();
        }
        if p >= WARMUP {
            gpu.push(dev.elapsed_s(e0, e1)?);
            host.push(issue);
        }
        for e in [start, e0, e1] {
            dev.release(e);
        }
    }
    Ok((median(&mut gpu), median(&mut host)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_passes_both_ways() {
        let (_, dims, seq) = crate::model::tiny::tiny_models().remove(0);
        let shape = crate::model::transformer_shape("opt-tiny", dims, seq);
        let layout = ModelLayout::new(&shape).unwrap();
        let mut dev = crate::device::cpu::CpuDevice::new(1);
        let rows = measure_layout(&mut dev, &layout, &[1, 3], 5).unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert!(r.layers_s > 0.0 && r.graph_s > 0.0, "{r:?}");
            // Captured on the second warm-up pass, launched from then on.
            assert_eq!(r.graph_launches, (WARMUP + 5 - 1) as u64, "{r:?}");
            assert_eq!(r.csv().split(',').count(), CSV_HEADER.split(',').count());
        }
        assert!(measure(&mut dev, &["no-such".into()], &[1], 5).is_err());
    }
}
