//! The placement fields the per-event path reads, taken from the model's
//! state: a one-GPU stage's GPU and every stage's shard bytes and layer
//! ranges are copied into its [`StageState`](super::StageState), the
//! stage count and largest batch into the [`ModelState`](super::ModelState)
//! ([`Scheduler::check_copies`] checks them). At 100,000 models a
//! model's placement is cache lines of its own, first touched by the event
//! that reads it; the model's state is read by that event anyway. A stage
//! over several GPUs (tensor parallelism) still reads its placement.

use super::{ModelState, Scheduler};
use crate::placement::Placement;
use std::ops::Range;

/// The GPUs of stage `s` of a model (rank order), from its state `ms` when
/// the stage is one GPU, else from its placement `p`.
pub(super) fn stage_gpus<'a>(ms: &'a ModelState, p: &'a Placement, s: u32) -> &'a [u32] {
    let st = &ms.stages[s as usize];
    if st.solo {
        std::slice::from_ref(&st.gpu)
    } else {
        p.stage_gpus(s)
    }
}

/// The layers of stage `s` of a model and those of them left in host
/// memory (the placement's `stages[s]` and `direct[s]`), from its state
/// `ms` when they are copied there, else from its placement `p`.
pub(super) fn stage_ranges(ms: &ModelState, p: &Placement, s: u32) -> (Range<u32>, Range<u32>) {
    let st = &ms.stages[s as usize];
    if st.ranges_here {
        (st.layers.clone(), st.layers.start..st.direct_end)
    } else {
        (p.stages[s as usize].clone(), p.direct[s as usize].clone())
    }
}

impl Scheduler {
    /// The GPUs of stage `s` of `m` (rank order); see [`stage_gpus`].
    pub(super) fn gpus_of(&self, m: u32, s: u32) -> &[u32] {
        let mi = m as usize;
        stage_gpus(&self.models[mi], &self.placements[mi], s)
    }

    /// The tensor-parallel degree of stage `s` of `m`.
    pub(super) fn tp_of(&self, m: u32, s: u32) -> usize {
        self.gpus_of(m, s).len()
    }

    /// The GPU of tensor-parallel rank `r` of stage `s` of `m`.
    pub(super) fn gpu_of(&self, m: u32, s: u32, r: usize) -> u32 {
        self.gpus_of(m, s)[r]
    }

    /// Bytes of one shard of stage `s` of `m` (its placement's `shard_bytes`).
    pub(super) fn bytes_of(&self, m: u32, s: u32) -> u64 {
        self.models[m as usize].stages[s as usize].bytes
    }

    /// Pipeline stages of `m` (its placement's `pp`).
    pub(super) fn pp_of(&self, m: u32) -> u32 {
        self.models[m as usize].pp
    }

    /// Checks that the placement fields copied into `m`'s state equal its
    /// placement's.
    pub(super) fn check_copies(&self, m: u32) -> Result<(), String> {
        let (ms, p) = (&self.models[m as usize], &self.placements[m as usize]);
        if (ms.pp, ms.max_batch) != (p.pp, p.max_batch) || ms.stages.len() != p.pp as usize {
            return Err(format!(
                "model {m}: stage count or batch cap differs from its placement"
            ));
        }
        for s in 0..p.pp {
            let gpus_match = stage_gpus(ms, p, s) == p.stage_gpus(s);
            let ranges = (p.stages[s as usize].clone(), p.direct[s as usize].clone());
            let st = &ms.stages[s as usize];
            if !gpus_match
                || st.bytes != p.shard_bytes[s as usize]
                || stage_ranges(ms, p, s) != ranges
            {
                return Err(format!(
                    "model {m} stage {s}: its state's copy of the placement differs"
                ));
            }
        }
        Ok(())
    }
}
