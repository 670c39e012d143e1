//! Offloads (`policy.offload`): an evicted shard copied back to its host
//! image on the GPU's offload stream ([`StreamKind::Offload`]), beside
//! the loads on its copy stream, as Computron's `model.to("cpu")` does.
//! The bytes written are the ones the host image already holds (weights
//! never change on the GPU); the copy is what is timed.

use super::{Completion, Executor};
use crate::device::StreamKind;
use anyhow::{bail, Result};
use std::ops::Range;
use std::time::Instant;

/// A device-to-host copy of one rank's shard of a stage's layers back to
/// the host memory it was loaded from.
#[derive(Debug, Clone, Default)]
pub struct OffloadOp {
    /// Caller's id of the copy.
    pub key: u64,
    /// The GPU whose region is copied.
    pub gpu: usize,
    /// Model index.
    pub model: usize,
    /// Tensor-parallel rank of the shard.
    pub shard: usize,
    /// Layers copied (contiguous in the pool from `pool_offset`).
    pub layers: Range<usize>,
    /// Pool offset of the region.
    pub pool_offset: u64,
    /// Back to pinned memory (else pageable).
    pub pinned: bool,
}

impl OffloadOp {
    /// The executor's offload `key` for the scheduler's offload `o`.
    pub fn of_action(key: u64, o: &switchyard_scheduler::OffloadOp) -> OffloadOp {
        OffloadOp {
            key,
            gpu: o.gpu as usize,
            model: o.model as usize,
            shard: o.shard as usize,
            layers: o.layers.start as usize..o.layers.end as usize,
            pool_offset: o.pool_offset,
            pinned: o.source == switchyard_scheduler::Source::Pinned,
        }
    }
}

impl Executor {
    /// Issues an offload on its GPU's offload stream now (every compute
    /// that read the region is done: the scheduler evicts only idle
    /// stages). Its completion is a [`Completion::Copy`] with its key.
    pub fn offload(&mut self, op: OffloadOp) -> Result<()> {
        let Some(shard) = self.shards.get(op.model) else {
            bail!("offload {} names model {}", op.key, op.model);
        };
        if op.gpu >= self.issued_offloads.len() || op.layers.end > shard.main_offsets.len() - 1 {
            bail!(
                "offload {} names GPU {} / layers {:?}",
                op.key,
                op.gpu,
                op.layers
            );
        }
        let (host_off, bytes) = shard.main_range(op.layers.clone());
        let Some(dst) = self.host.models[op.model].source(op.pinned, op.shard) else {
            bail!(
                "model {} has no {} host copy of rank {} to offload into",
                op.model,
                if op.pinned { "pinned" } else { "pageable" },
                op.shard
            );
        };
        let g = op.gpu;
        let start = self.dev.record(g, StreamKind::Offload)?;
        let t = Instant::now();
        self.dev
            .copy_d2h_on(g, StreamKind::Offload, op.pool_offset, dst, host_off, bytes)?;
        self.issue.copy(t.elapsed().as_secs_f64());
        let done = self.dev.record(g, StreamKind::Offload)?;
        self.issued_offloads[g].push_back((op.key, start, done));
        Ok(())
    }

    /// Offloads seen done since the last call, each GPU's in issue order.
    pub(super) fn poll_offloads(&mut self, out: &mut Vec<Completion>) -> Result<()> {
        for g in 0..self.issued_offloads.len() {
            while let Some(&(key, start, e)) = self.issued_offloads[g].front() {
                if !self.dev.query(e)? {
                    break;
                }
                let at = Instant::now();
                out.push(Completion::Copy {
                    key,
                    start: self.started(start, e, at)?,
                    at,
                    staged_s: None,
                });
                self.dev.release(start);
                self.dev.release(e);
                self.issued_offloads[g].pop_front();
            }
        }
        Ok(())
    }
}
