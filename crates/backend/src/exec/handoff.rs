//! Activations between pipeline stages, one scheduler batch at a time (a
//! micro-batch is its own batch: the scheduler cuts them), so different
//! batches overlap across stages.
//!
//! The producing stage's rank 0, at the end of its compute, writes the
//! batch's hidden states into the next free slot of its GPU's outbox ring:
//! a device slot (for consumers with peer access to it) and/or a pinned host
//! slot (for consumers without). Each rank of the next stage, when its
//! compute is issued, waits for the producer's event and pulls the slot
//! into its workspace (a peer copy, or a host-to-device copy on its compute
//! stream), then records an event; the producer's GPU waits for those
//! events before writing the slot again. A producer whose next slot is still
//! claimed by a consumer not yet issued is held back (the ring decouples
//! stages by up to [`OUTBOX_SLOTS`] batches).

use super::ComputeOp;
use crate::device::HostBuffer;
use crate::device::{DevPtr, Device, Event, StreamKind};
use crate::pool::Pool;
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::collections::HashMap;

/// Outbox slots per GPU.
pub const OUTBOX_SLOTS: usize = 4;

/// Hand-overs between stages, by path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HandoffStats {
    /// Pulls over peer access (NVLink / PCIe peer-to-peer).
    pub peer: u64,
    /// Pulls through pinned host memory.
    pub host: u64,
    /// Bytes pulled, all paths.
    pub bytes: u64,
}

enum Slot {
    /// Free once these events (the last consumers' pulls) are done.
    Free(Vec<Event>),
    /// Written by a producer whose consumer is not issued yet.
    Claimed,
}

struct Produced {
    gpu: usize,
    slot: usize,
    done: Event,
    on_device: bool,
}

/// The outbox rings of every GPU and the hand-overs in flight.
pub(super) struct Handoff {
    slots: Vec<Vec<Slot>>,
    next: Vec<usize>,
    host: Vec<HostBuffer>,
    slot_bytes: u64,
    produced: HashMap<u64, Produced>,
    /// Counts by path.
    pub stats: HandoffStats,
}

/// A batch's activations leaving a pipeline stage.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The producing compute.
    pub key: u64,
    /// The GPU it ran on.
    pub gpu: usize,
    /// The consumers' GPUs.
    pub to: &'a [usize],
    /// Where the activations are on `gpu`.
    pub x: DevPtr,
    /// Their size.
    pub bytes: u64,
}

impl Handoff {
    /// Rings for every GPU of `dev` (`staged`: some model has several
    /// stages; else nothing is allocated); pinned host slots where some
    /// pair of GPUs lacks peer access.
    pub fn new(dev: &mut dyn Device, staged: bool, slot_bytes: u64) -> Result<Handoff> {
        let gpus = dev.gpus();
        let slots_per = if staged { OUTBOX_SLOTS } else { 0 };
        let all_peer = (0..gpus).all(|a| (0..gpus).all(|b| dev.peer_access(a, b)));
        let mut host = Vec::new();
        if staged && !all_peer {
            for _ in 0..gpus {
                host.push(dev.alloc_host(slot_bytes * slots_per as u64, true)?);
            }
        }
        Ok(Handoff {
            slots: (0..gpus)
                .map(|_| (0..slots_per).map(|_| Slot::Free(Vec::new())).collect())
                .collect(),
            next: vec![0; gpus],
            host,
            slot_bytes,
            produced: HashMap::new(),
            stats: HandoffStats::default(),
        })
    }

    /// Whether `op` can be issued as far as hand-overs go: its input stage
    /// is issued, and (if it hands over) its GPU's next slot is not claimed.
    pub fn ready(&self, op: &ComputeOp) -> bool {
        if let Some(k) = op.input {
            if !self.produced.contains_key(&k) {
                return false;
            }
        }
        if !op.handoff_to.is_empty() {
            let g = op.gpus[0];
            return matches!(self.slots[g].get(self.next[g]), Some(Slot::Free(_)));
        }
        true
    }

    /// After a producer's last layer: writes its activations into the next
    /// outbox slot of its GPU for the consumers ([`Outgoing`]).
    pub fn push(&mut self, dev: &mut dyn Device, pool: &Pool, out: Outgoing) -> Result<()> {
        let Outgoing {
            key,
            gpu,
            to,
            x,
            bytes,
        } = out;
        let i = self.next[gpu];
        if bytes > self.slot_bytes {
            return Err(anyhow!(
                "activations of {bytes} bytes exceed the outbox slot of {}",
                self.slot_bytes
            ));
        }
        let slot = self.slots[gpu]
            .get_mut(i)
            .ok_or_else(|| anyhow!("GPU {gpu} has no outbox (no staged model was declared)"))?;
        if let Slot::Free(evs) = std::mem::replace(slot, Slot::Claimed) {
            for e in evs {
                dev.wait(gpu, StreamKind::Compute, e)?;
                dev.release(e);
            }
        } else {
            return Err(anyhow!("outbox slot {i} of GPU {gpu} is still claimed"));
        }
        let on_device = to.iter().any(|&c| dev.peer_access(c, gpu));
        let via_host = to.iter().any(|&c| !dev.peer_access(c, gpu));
        if on_device {
            dev.copy_peer(gpu, pool.outbox(i), gpu, x, bytes)?;
        }
        if via_host {
            let buf = self
                .host
                .get(gpu)
                .ok_or_else(|| anyhow!("no pinned outbox on GPU {gpu}"))?;
            dev.copy_d2h(gpu, x, buf, i as u64 * self.slot_bytes, bytes)?;
        }
        let done = dev.record(gpu, StreamKind::Compute)?;
        self.produced.insert(
            key,
            Produced {
                gpu,
                slot: i,
                done,
                on_device,
            },
        );
        self.next[gpu] = (i + 1) % self.slots[gpu].len();
        Ok(())
    }

    /// Before a consumer's first layer: every rank on `gpus` pulls producer
    /// `key`'s activations into `x`.
    pub fn pull(
        &mut self,
        dev: &mut dyn Device,
        pool: &Pool,
        key: u64,
        gpus: &[usize],
        x: DevPtr,
        bytes: u64,
    ) -> Result<()> {
        let p = self
            .produced
            .remove(&key)
            .ok_or_else(|| anyhow!("input stage {key} was never issued"))?;
        let mut evs = Vec::with_capacity(gpus.len());
        for &g in gpus {
            dev.wait(g, StreamKind::Compute, p.done)?;
            if p.on_device && dev.peer_access(g, p.gpu) {
                dev.copy_peer(g, x, p.gpu, pool.outbox(p.slot), bytes)?;
                self.stats.peer += 1;
            } else {
                let buf = &self.host[p.gpu];
                let off = p.slot as u64 * self.slot_bytes;
                dev.copy_h2d_on(g, StreamKind::Compute, buf, off, x, bytes)?;
                self.stats.host += 1;
            }
            self.stats.bytes += bytes;
            evs.push(dev.record(g, StreamKind::Compute)?);
        }
        dev.release(p.done);
        self.slots[p.gpu][p.slot] = Slot::Free(evs);
        Ok(())
    }
}
