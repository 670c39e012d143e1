//! The executor for a workload: its models' layouts, split as the
//! scheduler places them, with weights held in the host memory the
//! scheduler's copies read from (used by `replay` and `replay calibrate`).

use super::{Executor, Split};
use crate::device::Device;
use crate::host_store::{HostStore, WeightSource};
use crate::model::shard::ShardLayout;
use crate::model::ModelLayout;
use anyhow::{bail, Result};
use switchyard_core::Workload;
use switchyard_scheduler::placement::Placement;
use switchyard_scheduler::{copy_source, Source};

/// The scheduler's placement of the workload's models under its policy
/// ([`switchyard_scheduler::placements`]).
pub fn placements(w: &Workload) -> Vec<Placement> {
    switchyard_scheduler::placements(w, w.policy)
}

/// The shard layout of a placed model.
pub fn shard_layout(layout: &ModelLayout, p: &Placement) -> Result<ShardLayout> {
    let stages: Vec<std::ops::Range<usize>> = p
        .stages
        .iter()
        .map(|r| r.start as usize..r.end as usize)
        .collect();
    ShardLayout::new(layout, p.tp as usize, &stages)
}

/// Builds the executor for a workload: layouts, shards as the scheduler
/// places them, host store and arenas.
pub fn build_executor(
    dev: Box<dyn Device>,
    w: &Workload,
    weights: &WeightSource,
) -> Result<Executor> {
    let mut dev = dev;
    if (w.cluster.gpus as usize) > dev.gpus() {
        bail!(
            "the workload asks for {} GPUs but the {} device has {}",
            w.cluster.gpus,
            dev.kind(),
            dev.gpus()
        );
    }
    super::check_peer_access(dev.as_ref(), w)?;
    let layouts: Vec<ModelLayout> = w
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| ModelLayout::typed(&m.shape, w.dtype(i)))
        .collect::<Result<_>>()?;
    let placed = placements(w);
    let shards: Vec<ShardLayout> = layouts
        .iter()
        .zip(&placed)
        .map(|(l, p)| shard_layout(l, p))
        .collect::<Result<_>>()?;
    let homes: Vec<Vec<usize>> = placed
        .iter()
        .map(|p| p.gpus.iter().map(|&g| g as usize).collect())
        .collect();
    // Weights are held in the host memory the scheduler's copies read from.
    let pageable = copy_source(w.policy.system) == Source::Pageable;
    let host = HostStore::build(
        dev.as_mut(),
        &layouts,
        &shards,
        &w.model_names(),
        !pageable,
        pageable,
        weights,
    )?;
    let max_batch: Vec<usize> = w.models.iter().map(|m| m.max_batch as usize).collect();
    let hw = &w.cluster.hardware;
    let mut ex = Executor::with_shards(
        dev,
        host,
        layouts,
        Split { shards, homes },
        &max_batch,
        hw.usable_bytes(),
        hw.compute.synthetic_batch_slope,
    )?;
    // Layers the scheduler leaves in host memory are read there.
    ex.map_direct_layers(&placed)?;
    Ok(ex)
}
