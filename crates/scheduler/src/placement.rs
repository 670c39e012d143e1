//! Static placement: which GPU holds each shard of each model, the layers of
//! each pipeline stage, and how each stage's shard is split into copies.

use crate::grouping;
use std::ops::Range;
use switchyard_core::cost::{layer_compute_s, shard_layer_bytes};
use switchyard_core::hardware::HardwareProfile;
use switchyard_core::model::stage_partition;
use switchyard_core::workload::{Grouping, ModelSpec, System};

/// Where one model lives and how its shards are loaded.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// `gpus[stage * tp + rank]`: the GPU holding that shard. All distinct.
    pub gpus: Vec<u32>,
    /// Layers of each stage (absolute layer indices).
    pub stages: Vec<Range<u32>>,
    /// Bytes of one shard of each stage on one GPU (sum of the stage's
    /// per-layer shard bytes, each layer's bytes divided by `tp`, rounded up).
    pub shard_bytes: Vec<u64>,
    /// Copy groups of each stage (absolute layer ranges, in order).
    pub groups: Vec<Vec<Range<u32>>>,
    /// For each stage and group: `(offset within the shard, bytes)` on one GPU.
    pub group_bytes: Vec<Vec<(u64, u64)>>,
}

impl Placement {
    /// The GPUs of the tensor-parallel group of `stage` (rank order).
    pub fn stage_gpus(&self, stage: u32) -> &[u32] {
        let tp = self.tp as usize;
        &self.gpus[stage as usize * tp..(stage as usize + 1) * tp]
    }
}

/// The copy grouping `system` uses: PipeSwitch and streaming follow
/// `grouping`; Computron, stop-and-start and resident copy a whole stage shard at once.
pub fn effective_grouping(system: System, grouping: Grouping) -> Grouping {
    match system {
        System::Pipeswitch | System::Streaming => grouping,
        _ => Grouping::OneGroup,
    }
}

/// The `(tp, pp)` `system` runs model `m` with. Computron and resident use
/// the model's `parallel` config; PipeSwitch, stop-and-start and streaming
/// are one-GPU systems, as published: each model runs whole on one GPU.
pub fn parallelism(system: System, m: &ModelSpec) -> (u32, u32) {
    match system {
        System::Computron | System::Resident => (m.tp.max(1), m.pp.max(1)),
        System::Pipeswitch | System::StopAndStart | System::Streaming => (1, 1),
    }
}

/// Places every model (with [`parallelism`]): each takes `tp * pp` distinct GPUs starting at the
/// base GPU (wrapping) that keeps the most loaded GPU lightest (ties: lowest base).
pub fn place(
    models: &[ModelSpec],
    gpus: u32,
    hw: &HardwareProfile,
    system: System,
    grouping: Grouping,
) -> Vec<Placement> {
    let mut load = vec![0u64; gpus as usize];
    let grouping = effective_grouping(system, grouping);
    let link = if system == System::StopAndStart {
        &hw.pageable
    } else {
        &hw.pinned
    };
    models
        .iter()
        .map(|m| {
            let (tp, pp) = parallelism(system, m);
            let stages: Vec<Range<usize>> = stage_partition(&m.shape, pp as usize);
            let shard_bytes: Vec<u64> = stages
                .iter()
                .map(|r| r.clone().map(|l| shard_layer_bytes(&m.shape, l, tp)).sum())
                .collect();
            let width = (tp * pp) as usize;
            let gpu_at = |base: usize, i: usize| ((base + i) % gpus as usize) as u32;
            let base = (0..gpus as usize)
                .min_by_key(|&b| {
                    (0..width)
                        .map(|i| load[gpu_at(b, i) as usize] + shard_bytes[i / tp as usize])
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            let placed: Vec<u32> = (0..width).map(|i| gpu_at(base, i)).collect();
            for (i, g) in placed.iter().enumerate() {
                load[*g as usize] += shard_bytes[i / tp as usize];
            }
            let mut groups = Vec::with_capacity(stages.len());
            let mut group_bytes = Vec::with_capacity(stages.len());
            for r in &stages {
                let bytes: Vec<u64> = r
                    .clone()
                    .map(|l| shard_layer_bytes(&m.shape, l, tp))
                    .collect();
                let compute: Vec<f64> = r
                    .clone()
                    .map(|l| layer_compute_s(hw, &m.shape, l, 1, tp))
                    .collect();
                let gs = grouping::groups(grouping, &bytes, &compute, link);
                let mut off = 0u64;
                let mut gb = Vec::with_capacity(gs.len());
                for g in &gs {
                    let b: u64 = bytes[g.clone()].iter().sum();
                    gb.push((off, b));
                    off += b;
                }
                groups.push(
                    gs.iter()
                        .map(|g| (r.start + g.start) as u32..(r.start + g.end) as u32)
                        .collect(),
                );
                group_bytes.push(gb);
            }
            Placement {
                tp,
                pp,
                gpus: placed,
                stages: stages
                    .iter()
                    .map(|r| r.start as u32..r.end as u32)
                    .collect(),
                shard_bytes,
                groups,
                group_bytes,
            }
        })
        .collect()
}
