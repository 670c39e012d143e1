//! The GPU memory pool: one region per GPU, allocated once at start as part
//! of the device arena and handed out by offset. The offsets come from the
//! scheduler's actions; this only checks them and remembers where each
//! layer's weights sit, so a compute can find them. No allocation happens
//! on the switch path.
//!
//! Each arena is: the weight pool, the activation workspace, a ring of
//! *outbox* slots (activations a pipeline stage hands to the next one), and
//! the *side* area: one fixed slot per (model, stage) placed on the GPU for
//! the small tensors every tensor-parallel rank keeps whole
//! ([`crate::model::shard`]).

use crate::device::DevPtr;
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::ops::Range;

/// Alignment of the workspace after the pool.
pub const ALIGN: u64 = 256;

/// Where every resident layer's weights are, per GPU.
#[derive(Debug)]
pub struct Pool {
    /// Bytes of the weight pool per GPU (the arena starts with it).
    pub pool_bytes: u64,
    /// Arena offset of the activation workspace.
    pub ws_base: DevPtr,
    /// Bytes of the workspace.
    pub ws_bytes: u64,
    /// Arena offset of the outbox ring.
    pub outbox_base: DevPtr,
    /// Bytes of one outbox slot.
    pub outbox_slot: u64,
    /// Slots in the outbox ring.
    pub outbox_slots: usize,
    side: Vec<HashMap<(usize, usize), DevPtr>>,
    arena: u64,
    resident: Vec<HashMap<(usize, usize), DevPtr>>,
}

impl Pool {
    /// A pool of `pool_bytes` on each of `gpus` GPUs followed by a workspace of `ws_bytes`.
    pub fn new(gpus: usize, pool_bytes: u64, ws_bytes: u64) -> Pool {
        Pool::with_areas(gpus, pool_bytes, ws_bytes, 0, 0, &vec![Vec::new(); gpus])
    }

    /// Like [`Pool::new`], plus a ring of `outbox_slots` slots of
    /// `outbox_slot` bytes and, per GPU, side slots `(model, stage, bytes)`.
    pub fn with_areas(
        gpus: usize,
        pool_bytes: u64,
        ws_bytes: u64,
        outbox_slot: u64,
        outbox_slots: usize,
        side: &[Vec<(usize, usize, u64)>],
    ) -> Pool {
        let up = |x: u64| x.div_ceil(ALIGN) * ALIGN;
        let ws_base = up(pool_bytes);
        let outbox_slot = up(outbox_slot);
        let outbox_base = up(ws_base + ws_bytes);
        let side_base = outbox_base + outbox_slot * outbox_slots as u64;
        let mut arena = if outbox_slots > 0 {
            side_base
        } else {
            ws_base + ws_bytes
        };
        let mut slots = vec![HashMap::new(); gpus];
        for (g, list) in side.iter().enumerate().take(gpus) {
            let mut at = side_base;
            for &(m, st, bytes) in list {
                if bytes > 0 {
                    slots[g].insert((m, st), at);
                    at += up(bytes);
                }
            }
            if at > side_base {
                arena = arena.max(at);
            }
        }
        Pool {
            pool_bytes,
            ws_base,
            ws_bytes,
            outbox_base,
            outbox_slot,
            outbox_slots,
            side: slots,
            arena,
            resident: vec![HashMap::new(); gpus],
        }
    }

    /// Number of GPUs.
    pub fn gpus(&self) -> usize {
        self.resident.len()
    }

    /// Bytes of each GPU's arena.
    pub fn arena_bytes(&self) -> u64 {
        self.arena
    }

    /// Arena address of outbox slot `i`.
    pub fn outbox(&self, i: usize) -> DevPtr {
        self.outbox_base + i as u64 * self.outbox_slot
    }

    /// Arena address of the side slot of `model`'s `stage` on `gpu`.
    pub fn side_slot(&self, gpu: usize, model: usize, stage: usize) -> Option<DevPtr> {
        self.side.get(gpu)?.get(&(model, stage)).copied()
    }

    /// Records that the main parts of `layers` of `model` (at `offsets`, a
    /// rank image's layer offsets) are copied to `offset` on `gpu`, back to
    /// back; returns their total bytes.
    pub fn place(
        &mut self,
        gpu: usize,
        model: usize,
        arch: &str,
        offsets: &[u64],
        layers: Range<usize>,
        offset: u64,
    ) -> Result<u64> {
        let bytes = offsets[layers.end] - offsets[layers.start];
        if !offset.is_multiple_of(2) {
            bail!("pool offset {offset} is not 2-byte aligned (fp16 weights)");
        }
        if offset + bytes > self.pool_bytes {
            bail!(
                "copy of {arch} layers {layers:?} to [{offset}, +{bytes}) overruns GPU {gpu}'s pool of {} bytes",
                self.pool_bytes
            );
        }
        let Some(map) = self.resident.get_mut(gpu) else {
            bail!("GPU {gpu} does not exist");
        };
        let base = offsets[layers.start];
        for l in layers {
            map.insert((model, l), offset + offsets[l] - base);
        }
        Ok(bytes)
    }

    /// Records that the main parts of `layers` of `model` (at `offsets`, a
    /// rank image's layer offsets) are read in place from host memory
    /// mapped at `at` on `gpu` (direct host access: outside the pool, so
    /// never evicted). Returns their total bytes.
    pub fn place_mapped(
        &mut self,
        gpu: usize,
        model: usize,
        offsets: &[u64],
        layers: Range<usize>,
        at: DevPtr,
    ) -> Result<u64> {
        let Some(map) = self.resident.get_mut(gpu) else {
            bail!("GPU {gpu} does not exist");
        };
        let base = offsets[layers.start];
        for l in layers.clone() {
            map.insert((model, l), at + offsets[l] - base);
        }
        Ok(offsets[layers.end] - base)
    }

    /// Forgets `model`'s layers that sit in `[offset, offset + bytes)` on `gpu`.
    pub fn evict(&mut self, gpu: usize, model: usize, offset: u64, bytes: u64) {
        if let Some(map) = self.resident.get_mut(gpu) {
            map.retain(|(m, _), at| !(*m == model && *at >= offset && *at < offset + bytes));
        }
    }

    /// Arena address of `model`'s layer `layer` on `gpu`, if resident.
    pub fn addr(&self, gpu: usize, model: usize, layer: usize) -> Option<DevPtr> {
        self.resident.get(gpu)?.get(&(model, layer)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelLayout;
    use switchyard_core::model::ModelShape;

    #[test]
    fn side_slots_and_outbox_follow_the_workspace() {
        let side = vec![vec![(0, 1, 100), (2, 0, 0), (3, 0, 300)], vec![]];
        let p = Pool::with_areas(2, 1000, 100, 50, 4, &side);
        assert_eq!(p.outbox_base, 1024 + 256);
        assert_eq!(p.outbox(1), p.outbox_base + 256);
        let base = p.outbox_base + 4 * 256;
        assert_eq!(p.side_slot(0, 0, 1), Some(base));
        assert_eq!(p.side_slot(0, 3, 0), Some(base + 256));
        assert_eq!(p.side_slot(0, 2, 0), None);
        assert_eq!(p.side_slot(1, 0, 1), None);
        assert_eq!(p.arena_bytes(), base + 256 + 512);
    }

    #[test]
    fn place_evict_and_bounds() {
        let layout = ModelLayout::new(&ModelShape::synthetic("s", 4, 1000, 0.001)).unwrap();
        let o = &layout.layer_offsets;
        let mut p = Pool::new(1, 10_000, 100);
        assert_eq!(p.arena_bytes(), 10_240 + 100);
        assert_eq!(p.place(0, 0, "s", o, 1..3, 4000).unwrap(), 2000);
        assert_eq!(p.addr(0, 0, 2), Some(5000));
        assert_eq!(p.addr(0, 0, 0), None);
        assert!(p.place(0, 0, "s", o, 0..4, 7000).is_err());
        assert!(p.place(0, 0, "s", o, 0..1, 3).is_err());
        p.evict(0, 0, 4000, 2000);
        assert_eq!(p.addr(0, 0, 1), None);
        // Mapped layers sit outside the pool and survive every eviction.
        let at = crate::device::mapped::MAPPED_BASE;
        assert_eq!(p.place_mapped(0, 1, o, 0..2, at).unwrap(), 2000);
        assert_eq!(p.addr(0, 1, 1), Some(at + 1000));
        p.evict(0, 1, 0, 10_000);
        assert_eq!(p.addr(0, 1, 1), Some(at + 1000));
    }
}
