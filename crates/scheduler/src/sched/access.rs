//! Read access for executors, and invariant checks for tests.

use super::Scheduler;
use crate::memory::Pool;
use crate::{Batch, BatchId, LoadStats, Placement, Task, TaskId};
use switchyard_core::workload::{Eviction, System};

impl Scheduler {
    /// The compute task `id` (valid from its `Compute` action until its `ComputeDone` is fed).
    pub fn task(&self, id: TaskId) -> &Task {
        self.tasks.get(id)
    }

    /// The batch `id` (valid from its formation until the `on_event` call after its `Finish`).
    pub fn batch(&self, id: BatchId) -> &Batch {
        self.batches.get(id)
    }

    /// Hints the CPU to fetch model `m`'s state (its queue ends and stages,
    /// its placement) into cache: an arrival for it is coming. Changes
    /// nothing; see [`switchyard_core::prefetch`].
    pub fn prefetch_model(&self, m: u32) {
        use switchyard_core::prefetch::prefetch;
        let m = m as usize;
        prefetch(&self.models[m]);
        prefetch(&self.placements[m]);
        prefetch(&self.stats[m]);
    }

    /// Placement of model `m`.
    pub fn placement(&self, m: u32) -> &Placement {
        &self.placements[m as usize]
    }

    /// Whether direct host access is on for this scheduler's system
    /// (`policy.direct_host`, and a system that can honour it): what
    /// `summary.json` says.
    pub fn direct_host(&self) -> bool {
        self.direct_host
    }

    /// Whether evictions are offloads for this scheduler's system
    /// (`policy.offload`, and a system that evicts): what `summary.json`
    /// says.
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Placements of every model, in workload order.
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }

    /// Number of GPUs.
    pub fn gpus(&self) -> u32 {
        self.pools.len() as u32
    }

    /// The weight pool of GPU `g`.
    pub fn pool(&self, g: u32) -> &Pool {
        &self.pools[g as usize]
    }

    /// The serving system.
    pub fn system(&self) -> System {
        self.system
    }

    /// The eviction policy.
    pub fn eviction(&self) -> Eviction {
        self.eviction
    }

    /// Loads so far, per model.
    pub fn load_stats(&self) -> &[LoadStats] {
        &self.stats
    }

    /// Requests queued or batches in flight (false once everything fed has finished).
    pub fn busy(&self) -> bool {
        self.tasks.live() > 0 || !self.deferred.is_empty() || self.queued > 0
    }

    /// Checks memory accounting: every pool consistent, regions of resident
    /// stages inside their pool and disjoint, and a pool's used bytes equal to
    /// the stages, scratch regions and offloads in flight it holds; and that every copy in flight
    /// into a stage is a group of the grouping its load was issued with; and
    /// that the per-GPU dispatch and eviction indexes match a scan of every
    /// model; and that the placement fields copied into each model's state
    /// (`hot.rs`) equal its placement's.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_index()?;
        let mut regions: Vec<Vec<(u64, u64)>> = vec![Vec::new(); self.pools.len()];
        for (m, ms) in self.models.iter().enumerate() {
            let p = &self.placements[m];
            self.check_copies(m as u32)?;
            for (s, st) in ms.stages.iter().enumerate() {
                let planned = &p
                    .groups_via(s as u32, st.load_batch, st.load_helpers)
                    .ranges;
                if let Some((r, c)) = st.loading.iter().find(|(r, _)| !planned.contains(r)) {
                    return Err(format!(
                        "model {m} stage {s}: copy {c} carries layers {r:?}, not a group of \
                         its load's grouping (batch {}, {} helpers): {planned:?}",
                        st.load_batch, st.load_helpers
                    ));
                }
                if !st.resident {
                    continue;
                }
                for (r, &g) in p.stage_gpus(s as u32).iter().enumerate() {
                    regions[g as usize].push((st.regions[r], p.shard_bytes[s]));
                }
            }
        }
        for (g, pool) in self.pools.iter().enumerate() {
            pool.check().map_err(|e| format!("GPU {g}: {e}"))?;
            let list = &mut regions[g];
            list.sort_unstable();
            let mut end = 0;
            let mut total = self.temp_bytes[g] + self.offloading[g];
            for &(o, l) in list.iter() {
                if o < end {
                    return Err(format!("GPU {g}: regions overlap at offset {o}"));
                }
                end = o + l;
                total += l;
            }
            if end > pool.capacity() || total != pool.used() || pool.used() > pool.capacity() {
                return Err(format!(
                    "GPU {g}: {total} bytes held, pool says {} used of {}",
                    pool.used(),
                    pool.capacity()
                ));
            }
        }
        if let Some(mp) = &self.multipath {
            mp.check()?;
        }
        Ok(())
    }

    /// Multi-path loading's planner (staging pools), when the workload asks
    /// for `loading: multipath`.
    pub fn multipath(&self) -> Option<&crate::multipath::Multipath> {
        self.multipath.as_ref()
    }
}
