//! The GPU memory pool: one region per GPU, allocated once at start as part
//! of the device arena and handed out by offset. The offsets come from the
//! scheduler's actions; this only checks them and remembers where each
//! layer's weights sit, so a compute can find them. No allocation happens
//! on the switch path.

use crate::device::DevPtr;
use crate::model::ModelLayout;
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
    resident: Vec<HashMap<(usize, usize), DevPtr>>,
}

impl Pool {
    /// A pool of `pool_bytes` on each of `gpus` GPUs followed by a workspace of `ws_bytes`.
    pub fn new(gpus: usize, pool_bytes: u64, ws_bytes: u64) -> Pool {
        let ws_base = pool_bytes.div_ceil(ALIGN) * ALIGN;
        Pool {
            pool_bytes,
            ws_base,
            ws_bytes,
            resident: vec![HashMap::new(); gpus],
        }
    }

    /// Bytes of each GPU's arena.
    pub fn arena_bytes(&self) -> u64 {
        self.ws_base + self.ws_bytes
    }

    /// Records that `layers` of `model` are copied to `offset` on `gpu`
    /// (back to back, in layer order); returns their total bytes.
    pub fn place(
        &mut self,
        gpu: usize,
        model: usize,
        layout: &ModelLayout,
        layers: Range<usize>,
        offset: u64,
    ) -> Result<u64> {
        let bytes = layout.range_bytes(layers.clone());
        if !offset.is_multiple_of(2) {
            bail!("pool offset {offset} is not 2-byte aligned (fp16 weights)");
        }
        if offset + bytes > self.pool_bytes {
            bail!(
                "copy of {} layers {:?} to [{offset}, +{bytes}) overruns GPU {gpu}'s pool of {} bytes",
                layout.shape.arch,
                layers,
                self.pool_bytes
            );
        }
        let Some(map) = self.resident.get_mut(gpu) else {
            bail!("GPU {gpu} does not exist");
        };
        let base = layout.layer_offsets[layers.start];
        for l in layers {
            map.insert((model, l), offset + layout.layer_offsets[l] - base);
        }
        Ok(bytes)
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
    use switchyard_core::model::ModelShape;

    #[test]
    fn place_evict_and_bounds() {
        let layout = ModelLayout::new(&ModelShape::synthetic("s", 4, 1000, 0.001)).unwrap();
        let mut p = Pool::new(1, 10_000, 100);
        assert_eq!(p.arena_bytes(), 10_240 + 100);
        assert_eq!(p.place(0, 0, &layout, 1..3, 4000).unwrap(), 2000);
        assert_eq!(p.addr(0, 0, 2), Some(5000));
        assert_eq!(p.addr(0, 0, 0), None);
        assert!(p.place(0, 0, &layout, 0..4, 7000).is_err());
        assert!(p.place(0, 0, &layout, 0..1, 3).is_err());
        p.evict(0, 0, 4000, 2000);
        assert_eq!(p.addr(0, 0, 1), None);
    }
}
