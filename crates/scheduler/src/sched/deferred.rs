//! Batches waiting for memory at a stage, retried only when one of the
//! stage's GPUs changed.
//!
//! A retry that fails has no effect when nothing on the stage's GPUs
//! changed since the last one: every rank that fitted fits again without
//! evicting, and the rank that did not still has no victim. So instead of
//! retrying every waiting batch after every completion, a batch is retried
//! when one of its GPUs' pools or eviction sets changed since its last
//! attempt ("dirty"), in the order the batches started waiting: the same
//! attempts with an effect, in the same order, as retrying them all.

use super::Scheduler;
use crate::{Action, BatchId};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// The waiting batches.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    /// By the order they started waiting: `(batch, stage)`.
    entries: BTreeMap<u64, (BatchId, u32)>,
    /// Per GPU: the entries waiting on it.
    on_gpu: Vec<Vec<u64>>,
    /// Entries one of whose GPUs changed since their last attempt.
    dirty: BTreeSet<u64>,
    next: u64,
}

impl Deferred {
    /// No batch is waiting, over `gpus` GPUs.
    pub(super) fn new(gpus: usize) -> Deferred {
        Deferred {
            on_gpu: vec![Vec::new(); gpus],
            ..Deferred::default()
        }
    }

    /// Whether no batch is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Scheduler {
    /// GPU `g`'s pool or eviction set changed: its waiting batches may fit now.
    pub(super) fn touch(&mut self, g: u32) {
        let d = &mut self.deferred;
        for &q in &d.on_gpu[g as usize] {
            d.dirty.insert(q);
        }
    }

    /// `bytes` from GPU `g`'s pool (first fit), `None` if no extent fits.
    pub(super) fn pool_alloc(&mut self, g: u32, bytes: u64) -> Option<u64> {
        let o = self.pools[g as usize].alloc(bytes)?;
        self.touch(g);
        Some(o)
    }

    /// Returns `[offset, offset + bytes)` to GPU `g`'s pool.
    pub(super) fn pool_free(&mut self, g: u32, offset: u64, bytes: u64) {
        self.pools[g as usize].free(offset, bytes);
        self.touch(g);
    }

    /// Batch `b` waits for memory at stage `s` (its attempt just failed).
    pub(super) fn defer(&mut self, b: BatchId, s: u32) {
        let m = self.batches.get(b).model as usize;
        let d = &mut self.deferred;
        let q = d.next;
        d.next += 1;
        d.entries.insert(q, (b, s));
        for &g in self.placements[m].stage_gpus(s) {
            d.on_gpu[g as usize].push(q);
        }
    }

    /// Retries, in the order they started waiting, the batches whose GPUs
    /// changed since their last attempt (including changes made by the
    /// retries before them in this pass).
    pub(super) fn retry_deferred(&mut self, actions: &mut Vec<Action>) {
        let mut cursor = None;
        loop {
            let d = &mut self.deferred;
            let next = match cursor {
                None => d.dirty.first(),
                Some(c) => d.dirty.range((Bound::Excluded(c), Bound::Unbounded)).next(),
            };
            let Some(&q) = next else { break };
            cursor = Some(q);
            let (b, s) = d.entries[&q];
            let m = self.batches.get(b).model as usize;
            for &g in self.placements[m].stage_gpus(s) {
                self.busy[g as usize] -= 1;
            }
            let done = self.reach(b, s, actions);
            let d = &mut self.deferred;
            // Changes made by its own attempt are seen: not dirty for them.
            d.dirty.remove(&q);
            if done {
                d.entries.remove(&q);
                for &g in self.placements[m].stage_gpus(s) {
                    d.on_gpu[g as usize].retain(|&x| x != q);
                }
            } else {
                for &g in self.placements[m].stage_gpus(s) {
                    self.busy[g as usize] += 1;
                }
            }
        }
    }
}
