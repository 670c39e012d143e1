//! Offload (`policy.offload`): an evicted stage shard is copied back to
//! host memory, as Computron's `model.to("cpu")` does, and its region is
//! given back only when that copy is done.

use super::Scheduler;
use crate::{Action, EvictOp, OffloadOp};

/// The region an offload in flight holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Held {
    /// The GPU.
    pub(super) gpu: u32,
    /// Start of the region in its pool.
    pub(super) pool_offset: u64,
    /// Length of the region.
    pub(super) bytes: u64,
}

impl Scheduler {
    /// Issues the copy back to host memory of rank `shard` of stage `s` of
    /// `m`, whose region at `pool_offset` stays taken until it is done.
    pub(super) fn issue_offload(
        &mut self,
        m: u32,
        s: u32,
        shard: u32,
        pool_offset: u64,
        actions: &mut Vec<Action>,
    ) {
        let p = &self.placements[m as usize];
        let (si, tp) = (s as usize, p.tp as usize);
        let gpu = p.gpus[si * tp + shard as usize];
        let bytes = p.shard_bytes[si];
        let layers = p.direct[si].end.max(p.stages[si].start)..p.stages[si].end;
        let held = Held {
            gpu,
            pool_offset,
            bytes,
        };
        let id = self.copies.alloc();
        *self.copies.get_mut(id) = super::CopyMeta {
            model: m,
            stage: s,
            streamed: false,
            offload: Some(held),
        };
        self.offloading[gpu as usize] += bytes;
        actions.push(Action::Offload(OffloadOp {
            id,
            model: m,
            stage: s,
            gpu,
            shard,
            layers,
            bytes,
            pool_offset,
            source: self.traits.source,
        }));
    }

    /// An offload is done: its region is free ([`Action::Evict`]) and the
    /// batches waiting for memory on its GPU are retried.
    pub(super) fn offload_done(&mut self, m: u32, s: u32, held: Held, actions: &mut Vec<Action>) {
        let Held {
            gpu,
            pool_offset,
            bytes,
        } = held;
        self.offloading[gpu as usize] -= bytes;
        self.pool_free(gpu, pool_offset, bytes);
        actions.push(Action::Evict(EvictOp {
            model: m,
            stage: s,
            gpu,
            pool_offset,
            bytes,
        }));
        if !self.deferred.is_empty() {
            self.retry_deferred(actions);
        }
    }

    /// Whether the offloads in flight on GPU `g` will free enough that
    /// `bytes` fit in its pool (counting free bytes, not their layout; a
    /// load that still finds no extent then evicts more).
    pub(super) fn offload_will_free(&self, g: u32, bytes: u64) -> bool {
        let held = self.offloading[g as usize];
        let pool = &self.pools[g as usize];
        held > 0 && pool.capacity() - pool.used() + held >= bytes
    }

    /// Bytes of GPU `g`'s pool held by offloads in flight.
    pub fn offloading_bytes(&self, g: u32) -> u64 {
        self.offloading[g as usize]
    }
}
