//! Per-GPU indexes that keep dispatch and eviction O(log n) in the number
//! of models on a GPU: the models with requests waiting, ordered by their
//! head request's arrival, and the stages that may be evicted, ordered by
//! the eviction policy. Both are kept equal to what a scan of every model
//! would find (`check_index` compares them), so the choices, and the
//! outputs, are those of the scans they replace.

use super::{Scheduler, VictimKey};
use std::collections::BTreeSet;
use switchyard_core::workload::Eviction;

/// One GPU's indexes.
#[derive(Debug, Default)]
pub(super) struct GpuIndex {
    /// `(head request's arrival sequence number, model)` of every model whose
    /// first stage uses this GPU and that has requests queued.
    pub(super) ready: BTreeSet<(u64, u32)>,
    /// `(victim key, model, stage)` of every stage on this GPU that may be
    /// evicted now (resident, no copy in flight, no compute outstanding);
    /// the first not excluded is the victim (ties to the lower model, then
    /// stage, as the scan in model order did).
    pub(super) evictable: BTreeSet<(VictimKey, u32, u32)>,
}

impl Scheduler {
    /// Model `m`'s head request (arrival sequence `seq`) enters the ready
    /// sets of its first stage's GPUs.
    pub(super) fn mark_ready(&mut self, m: u32, seq: u64) {
        for &g in self.placements[m as usize].stage_gpus(0) {
            self.gpus[g as usize].ready.insert((seq, m));
        }
    }

    /// Model `m`'s head request (arrival sequence `seq`) leaves the ready sets.
    pub(super) fn unmark_ready(&mut self, m: u32, seq: u64) {
        for &g in self.placements[m as usize].stage_gpus(0) {
            self.gpus[g as usize].ready.remove(&(seq, m));
        }
    }

    /// The model to batch on GPU `g`: the one whose head request arrived
    /// first among those whose first-stage GPUs are all idle.
    pub(super) fn ready_model(&self, g: u32) -> Option<u32> {
        self.gpus[g as usize]
            .ready
            .iter()
            .find(|&&(_, m)| {
                self.placements[m as usize]
                    .stage_gpus(0)
                    .iter()
                    .all(|&h| self.busy[h as usize] == 0)
            })
            .map(|&(_, m)| m)
    }

    /// The victim key of stage `s` of `m` now, `None` if it may not be evicted:
    /// (needed by a formed batch, policy key, tie-break); smallest goes first.
    fn victim_key(&self, m: u32, s: u32) -> Option<VictimKey> {
        let ms = &self.models[m as usize];
        let st = &ms.stages[s as usize];
        if !st.resident || !st.loading.is_empty() || st.in_use > 0 {
            return None;
        }
        let tier = (st.pending > 0) as u64;
        Some(match self.eviction {
            Eviction::Lru => (tier, ms.last_use, 0),
            Eviction::Lfu => (tier, ms.served, ms.last_use),
            Eviction::Belady => (tier, u64::MAX - self.next_use(m), 0),
        })
    }

    /// Belady: schedule position of the next request `m` will serve.
    fn next_use(&self, m: u32) -> u64 {
        let ms = &self.models[m as usize];
        if let Some((seq, _)) = self.queues.front(&ms.queue) {
            return seq;
        }
        self.future[m as usize]
            .get(ms.arrived as usize)
            .map_or(u64::MAX, |&p| p as u64)
    }

    /// Brings stage `s` of `m` up to date in the eviction sets of its GPUs;
    /// called after anything its victim key reads has changed. Systems that
    /// never evict (`resident`) keep no eviction sets.
    pub(super) fn reindex_stage(&mut self, m: u32, s: u32) {
        if self.traits.preloads {
            return;
        }
        let new = self.victim_key(m, s);
        let st = &mut self.models[m as usize].stages[s as usize];
        if st.indexed == new {
            return;
        }
        let old = std::mem::replace(&mut st.indexed, new);
        let (mi, tp) = (m as usize, self.placements[m as usize].tp as usize);
        for r in 0..tp {
            let g = self.placements[mi].gpus[s as usize * tp + r];
            let set = &mut self.gpus[g as usize].evictable;
            if let Some(k) = old {
                set.remove(&(k, m, s));
            }
            if let Some(k) = new {
                set.insert((k, m, s));
            }
            self.touch(g);
        }
    }

    /// [`Scheduler::reindex_stage`] for every stage of `m`.
    pub(super) fn reindex_model(&mut self, m: u32) {
        for s in 0..self.placements[m as usize].pp {
            self.reindex_stage(m, s);
        }
    }

    /// The stage on GPU `g` to evict (not of model `exclude`), by policy;
    /// stages a formed batch still needs only if `allow_pending`.
    pub(super) fn victim(&self, g: u32, exclude: u32, allow_pending: bool) -> Option<(u32, u32)> {
        if self.traits.preloads {
            return None;
        }
        let &(key, m, s) = self.gpus[g as usize]
            .evictable
            .iter()
            .find(|&&(_, m, _)| m != exclude)?;
        (key.0 == 0 || allow_pending).then_some((m, s))
    }

    /// Checks the indexes against a scan of every model: each GPU's ready set
    /// holds exactly the queued models whose first stage uses it, keyed by
    /// their head request, and its eviction set exactly the stages on it that
    /// may be evicted, keyed by their current victim key.
    pub(super) fn check_index(&self) -> Result<(), String> {
        let mut ready = vec![BTreeSet::new(); self.gpus.len()];
        let mut evictable = vec![BTreeSet::new(); self.gpus.len()];
        for (m, ms) in self.models.iter().enumerate() {
            let m = m as u32;
            let p = &self.placements[m as usize];
            if let Some((seq, _)) = self.queues.front(&ms.queue) {
                for &g in p.stage_gpus(0) {
                    ready[g as usize].insert((seq, m));
                }
            }
            if self.traits.preloads {
                continue;
            }
            for s in 0..p.pp {
                if let Some(k) = self.victim_key(m, s) {
                    for &g in p.stage_gpus(s) {
                        evictable[g as usize].insert((k, m, s));
                    }
                }
            }
        }
        for (g, ix) in self.gpus.iter().enumerate() {
            if ix.ready != ready[g] {
                return Err(format!(
                    "GPU {g}: ready set {:?} differs from the queues {:?}",
                    ix.ready, ready[g]
                ));
            }
            if ix.evictable != evictable[g] {
                return Err(format!(
                    "GPU {g}: eviction set {:?} differs from the stages' keys {:?}",
                    ix.evictable, evictable[g]
                ));
            }
        }
        Ok(())
    }
}
