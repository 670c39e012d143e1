//! Multi-path loading's pieces on the device ([`switchyard_scheduler::Via`]):
//! the bytes go host-to-helper on the helper's copy stream into its
//! staging space, then helper-to-target on the target's peer stream, which
//! waits for them with an event; the compute that needs the group waits on
//! the peer copy's event like on any copy. Nothing is decided here: the
//! scheduler chose the helper, the bytes and the staging offset. Staging
//! bytes an earlier piece used are written only after that piece's peer
//! copy (the ring's hazard, kept per helper).

use super::{CopyOp, CopyState, Executor};
use crate::device::{Device, Event, StreamKind};
use crate::model::shard::ShardLayout;
use anyhow::{bail, Result};
use switchyard_core::{InputError, Workload};

/// Pieces staged on one helper whose staging bytes a later piece may
/// reuse: `(offset, bytes, event after their peer copy)`.
pub(super) type Staged = Vec<(u64, u64, Event)>;

/// `(offset in the shard's host image, offset in the target's pool, bytes)`
/// of copy `op` in this executor's layout: the whole group, or the piece
/// [`CopyOp::part`] names, scaled from the scheduler's byte count of the
/// group to this layout's (so pieces of one group tile it exactly).
pub(super) fn piece_span(shard: &ShardLayout, op: &CopyOp) -> (u64, u64, u64) {
    let (src, total) = shard.main_range(op.layers.clone());
    match op.part {
        None => (src, op.pool_offset, total),
        Some(p) => {
            let at = |x: u64| -> u64 {
                if x >= p.group_bytes {
                    total
                } else {
                    ((total as u128 * x as u128 / p.group_bytes.max(1) as u128) as u64) / 256 * 256
                }
            };
            let (a, b) = (at(p.offset), at(p.offset + op.bytes));
            (src + a, op.pool_offset + a, b - a)
        }
    }
}

/// Refuses multi-path loading on a device whose GPUs cannot reach each
/// other's memory directly: the pieces' forwards are peer copies.
pub fn check_peer_access(dev: &dyn Device, w: &Workload) -> Result<(), InputError> {
    if !w.loading.multipath() {
        return Ok(());
    }
    let n = (w.cluster.gpus as usize).min(dev.gpus());
    for t in 0..n {
        for h in (0..n).filter(|&h| h != t) {
            if !dev.peer_access(t, h) {
                return Err(InputError::new(
                    &w.source,
                    None,
                    "policy.loading",
                    format!(
                        "`multipath` forwards pieces from helper GPUs over the peer link, but on this {} device \
                         GPU {t} has no peer access to GPU {h}; use `loading: direct` (or `--loading direct`)",
                        dev.kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Executor {
    /// Issues piece `op` (its `via` set) now: host to the helper's staging
    /// on the helper's copy stream, then to the target's pool on the
    /// target's peer stream.
    pub(super) fn issue_piece(&mut self, op: CopyOp) -> Result<()> {
        let Some(via) = op.via else {
            bail!("copy {} is not a multi-path piece", op.key);
        };
        let (h, t) = (via.helper as usize, op.gpu);
        let shard = &self.shards[op.model];
        let (src, dst, bytes) = piece_span(shard, &op);
        let stage_at = via.staging_offset;
        if stage_at + bytes > self.pool.pool_bytes {
            bail!(
                "copy {}: staging [{stage_at}, +{bytes}) on GPU {h} overruns its pool of {} bytes",
                op.key,
                self.pool.pool_bytes
            );
        }
        // Earlier pieces whose staging bytes this one overwrites: their
        // forwards must be done first.
        let staged = &mut self.staged[h];
        let mut i = 0;
        while i < staged.len() {
            let (o, b, e) = staged[i];
            if o < stage_at + bytes && stage_at < o + b {
                self.dev.wait(h, StreamKind::Copy, e)?;
                self.dev.release(e);
                staged.swap_remove(i);
            } else {
                i += 1;
            }
        }
        let host = self.host.models[op.model]
            .source(op.pinned, op.shard)
            .expect("checked at queue time");
        let leg_start = self.dev.record(h, StreamKind::Copy)?;
        let t0 = std::time::Instant::now();
        self.dev.copy_h2d(h, host, src, stage_at, bytes)?;
        self.issue.copy(t0.elapsed().as_secs_f64());
        let landed = self.dev.record(h, StreamKind::Copy)?;
        self.dev.wait(t, StreamKind::Peer, landed)?;
        self.piece_legs.insert(op.key, (leg_start, landed));
        let start = self.dev.record(t, StreamKind::Peer)?;
        self.dev
            .copy_peer_on(StreamKind::Peer, t, dst, h, stage_at, bytes)?;
        let done = self.dev.record(t, StreamKind::Peer)?;
        let reusable = self.dev.record(t, StreamKind::Peer)?;
        self.staged[h].push((stage_at, bytes, reusable));
        self.copies.insert(op.key, CopyState::Issued(done));
        self.issued_copies[t].push_back((op.key, start, done));
        Ok(())
    }
}
