//! Memory for stages: reserving pool regions, and choosing and evicting
//! victims by policy (LRU, LFU, Belady).

use super::{Scheduler, VictimKey};
use crate::{Action, EvictOp};
use switchyard_core::workload::Eviction;

impl Scheduler {
    /// Reserves a region for stage `s` of `m` on each of its GPUs, evicting
    /// idle stages by policy. Stages other batches still need are victims
    /// only if `allow_pending`. False (nothing reserved) if memory is held by
    /// work in flight.
    pub(super) fn allocate(
        &mut self,
        m: u32,
        s: u32,
        allow_pending: bool,
        actions: &mut Vec<Action>,
    ) -> bool {
        if !self.reserve(m, s, Some(allow_pending), actions) {
            return false;
        }
        let st = &mut self.models[m as usize].stages[s as usize];
        st.regions.clear();
        st.regions.extend_from_slice(&self.scratch);
        st.resident = true;
        for &g in self.placements[m as usize].stage_gpus(s) {
            self.loaded[g as usize] += 1;
        }
        true
    }

    /// Takes a region of stage `s` of `m`'s shard bytes from the pool of
    /// each of its GPUs (rank order, offsets left in `scratch`). When a pool
    /// is full: with `evict` = `Some(allow_pending)`, idle stages are
    /// evicted by policy (those other batches still need only if
    /// `allow_pending`); with `None`, or no victim left, every region taken
    /// is given back and the answer is false. With `policy.max_loaded`, a
    /// cached stage (`evict` given) also needs a GPU holding fewer stages
    /// than that: idle ones are evicted by the same policy first.
    pub(super) fn reserve(
        &mut self,
        m: u32,
        s: u32,
        evict: Option<bool>,
        actions: &mut Vec<Action>,
    ) -> bool {
        let (mi, si) = (m as usize, s as usize);
        let tp = self.placements[mi].tp as usize;
        let bytes = self.placements[mi].shard_bytes[si];
        self.scratch.clear();
        for r in 0..tp {
            let g = self.placements[mi].gpus[si * tp + r];
            loop {
                let full = evict.is_some()
                    && self
                        .max_loaded
                        .is_some_and(|n| self.loaded[g as usize] >= n);
                if full {
                    // Falls through to evicting a victim below.
                } else if let Some(o) = self.pools[g as usize].alloc(bytes) {
                    self.scratch.push(o);
                    break;
                }
                match evict.and_then(|allow_pending| self.victim(g, m, allow_pending)) {
                    Some((vm, vs)) => self.evict(vm, vs, actions),
                    None => {
                        for (r2, &o) in self.scratch.iter().enumerate() {
                            let g2 = self.placements[mi].gpus[si * tp + r2];
                            self.pools[g2 as usize].free(o, bytes);
                        }
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The stage on GPU `g` to evict (not of model `exclude`), by policy.
    fn victim(&self, g: u32, exclude: u32, allow_pending: bool) -> Option<(u32, u32)> {
        if self.traits.preloads {
            return None;
        }
        let mut best: Option<(VictimKey, (u32, u32))> = None;
        for &(m, s) in &self.gpu_stages[g as usize] {
            if m == exclude {
                continue;
            }
            let ms = &self.models[m as usize];
            let st = &ms.stages[s as usize];
            if !st.resident || !st.loading.is_empty() || st.in_use > 0 {
                continue;
            }
            if st.pending > 0 && !allow_pending {
                continue;
            }
            let tier = (st.pending > 0) as u64;
            let key = match self.eviction {
                Eviction::Lru => (tier, ms.last_use, 0),
                Eviction::Lfu => (tier, ms.served, ms.last_use),
                Eviction::Belady => (tier, u64::MAX - self.next_use(m), 0),
            };
            if best.is_none_or(|(k, _)| key < k) {
                best = Some((key, (m, s)));
            }
        }
        best.map(|(_, v)| v)
    }

    /// Belady: schedule position of the next request `m` will serve.
    fn next_use(&self, m: u32) -> u64 {
        let ms = &self.models[m as usize];
        if let Some(&(seq, _)) = ms.queue.front() {
            return seq;
        }
        self.future[m as usize]
            .get(ms.arrived as usize)
            .map_or(u64::MAX, |&p| p as u64)
    }

    fn evict(&mut self, m: u32, s: u32, actions: &mut Vec<Action>) {
        let (mi, si) = (m as usize, s as usize);
        let p = &self.placements[mi];
        let tp = p.tp as usize;
        let bytes = p.shard_bytes[si];
        let st = &mut self.models[mi].stages[si];
        for r in 0..tp {
            let g = p.gpus[si * tp + r];
            self.pools[g as usize].free(st.regions[r], bytes);
            actions.push(Action::Evict(EvictOp {
                model: m,
                stage: s,
                gpu: g,
                pool_offset: st.regions[r],
                bytes,
            }));
        }
        st.regions.clear();
        st.resident = false;
        for r in 0..tp {
            self.loaded[p.gpus[si * tp + r] as usize] -= 1;
        }
    }
}
