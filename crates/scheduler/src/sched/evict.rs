//! Memory for stages: reserving pool regions, and choosing and evicting
//! victims by policy (LRU, LFU, Belady).

use super::Scheduler;
use crate::{Action, EvictOp};

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
        for r in 0..self.tp_of(m, s) {
            let g = self.gpu_of(m, s, r);
            self.loaded[g as usize] += 1;
        }
        self.reindex_stage(m, s);
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
        let tp = self.tp_of(m, s);
        let bytes = self.bytes_of(m, s);
        self.scratch.clear();
        for r in 0..tp {
            let g = self.gpu_of(m, s, r);
            loop {
                let full = evict.is_some()
                    && self
                        .max_loaded
                        .is_some_and(|n| self.loaded[g as usize] >= n);
                if full {
                    // Falls through to evicting a victim below.
                } else if let Some(o) = self.pool_alloc(g, bytes) {
                    self.scratch.push(o);
                    break;
                } else if evict.is_some() && self.offload_will_free(g, bytes) {
                    // Offloads in flight free enough: wait for them
                    // rather than evict more.
                    self.give_back(m, s);
                    return false;
                }
                match evict.and_then(|allow_pending| self.victim(g, m, allow_pending)) {
                    Some((vm, vs)) => self.evict(vm, vs, actions),
                    None => {
                        self.give_back(m, s);
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Returns the regions `reserve` took so far for stage `s` of `m`
    /// (the offsets in `scratch`).
    fn give_back(&mut self, m: u32, s: u32) {
        let bytes = self.bytes_of(m, s);
        for r in 0..self.scratch.len() {
            let g = self.gpu_of(m, s, r);
            self.pool_free(g, self.scratch[r], bytes);
        }
    }

    /// Evicts stage `s` of `m` from each of its GPUs: its regions are free
    /// at once, or, with `policy.offload`, once their copies back to host
    /// memory are done.
    fn evict(&mut self, m: u32, s: u32, actions: &mut Vec<Action>) {
        let (mi, si) = (m as usize, s as usize);
        let tp = self.tp_of(m, s);
        let bytes = self.bytes_of(m, s);
        let regions = std::mem::take(&mut self.models[mi].stages[si].regions);
        for (r, &pool_offset) in regions.iter().enumerate().take(tp) {
            let g = self.gpu_of(m, s, r);
            if self.offload {
                self.issue_offload(m, s, r as u32, pool_offset, actions);
                continue;
            }
            self.pool_free(g, pool_offset, bytes);
            actions.push(Action::Evict(EvictOp {
                model: m,
                stage: s,
                gpu: g,
                pool_offset,
                bytes,
            }));
        }
        let st = &mut self.models[mi].stages[si];
        st.regions = regions;
        st.regions.clear();
        st.resident = false;
        for r in 0..tp {
            let g = self.gpu_of(m, s, r);
            self.loaded[g as usize] -= 1;
        }
        self.reindex_stage(m, s);
    }
}
