//! Per-layer times: each layer of a pass timed between two events.

use crate::device::{Device, StreamKind};
use crate::forward;
use crate::model::ModelLayout;
use anyhow::Result;
use switchyard_core::stats::median;

/// Per-layer seconds of `layout` at each batch size (weights at `at`,
/// workspace at `ws`): median over `reps` passes of event-timed layers.
pub fn layer_times(
    dev: &mut dyn Device,
    layout: &ModelLayout,
    at: u64,
    ws: u64,
    batches: &[u32],
    reps: usize,
    gemm_rate: f64,
) -> Result<Vec<Vec<f64>>> {
    let n = layout.layers();
    let addr = forward::whole_at(layout, at);
    let shard = crate::model::shard::ShardLayout::single(layout);
    let mut rows = Vec::new();
    for &b in batches {
        let requests: Vec<u64> = (0..b as u64).collect();
        let mut per_layer: Vec<Vec<f64>> = vec![Vec::new(); n];
        for r in 0..reps + 1 {
            let mut evs = vec![dev.record(0, StreamKind::Compute)?];
            for l in 0..n {
                forward::run(
                    dev,
                    &forward::Run {
                        gpus: &[0],
                        layout,
                        shard: &shard,
                        layers: l..l + 1,
                        addr: &addr,
                        side: &forward::no_side,
                        requests: &requests,
                        ws,
                        waits: &[],
                        out: None,
                        gemm_rate,
                        synthetic_slope: 0.1,
                    },
                )
                .map(|e| dev.release(e))?;
                evs.push(dev.record(0, StreamKind::Compute)?);
            }
            dev.synchronize(*evs.last().unwrap())?;
            for l in 0..n {
                let t = dev.elapsed_s(evs[l], evs[l + 1])?;
                if r > 0 {
                    per_layer[l].push(t);
                }
            }
            for e in evs {
                dev.release(e);
            }
        }
        rows.push(per_layer.into_iter().map(|mut v| median(&mut v)).collect());
    }
    Ok(rows)
}
