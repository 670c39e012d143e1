//! Host memory: the store that holds every model's weights for the whole
//! run, in [`HostBuffer`]s (pinned through `cuMemHostAlloc`, or pageable).
//!
//! All models' weights are allocated once at start, before anything is
//! filled, so a machine short of host memory fails at once with a message
//! naming the model and the bytes, never half-way through a run.
//!
//! A tensor-parallel model (`tp > 1`) is held as one pinned image per rank
//! (that rank's slices, [`crate::model::shard`]), so each GPU's copy reads
//! one contiguous range; side images (the tensors every rank keeps whole)
//! are pinned per stage and rank.

use crate::device::{Device, HostBuffer};
use crate::model::shard::ShardLayout;
use crate::model::ModelLayout;
use anyhow::{Context, Result};
use switchyard_core::hardware::GIB;

/// One model's weights in host memory.
#[derive(Debug)]
pub struct ModelHost {
    /// Page-locked copy (all systems but stop-and-start; `tp = 1` only).
    pub pinned: Option<HostBuffer>,
    /// Pageable copy (stop-and-start; `tp = 1` only).
    pub pageable: Option<HostBuffer>,
    /// `tp > 1`: each rank's image, pinned.
    pub ranks: Vec<HostBuffer>,
    /// Side images by stage and rank, pinned (`None` where a stage has none).
    pub sides: Vec<Vec<Option<HostBuffer>>>,
}

impl ModelHost {
    /// The image a copy for tensor-parallel rank `rank` reads from.
    pub fn source(&self, pinned: bool, rank: usize) -> Option<&HostBuffer> {
        if !self.ranks.is_empty() {
            return if pinned { self.ranks.get(rank) } else { None };
        }
        if pinned {
            self.pinned.as_ref()
        } else {
            self.pageable.as_ref()
        }
    }

    /// The side image of `stage` for `rank`, if the stage has one.
    pub fn side(&self, stage: usize, rank: usize) -> Option<&HostBuffer> {
        self.sides.get(stage)?.get(rank)?.as_ref()
    }
}

/// Every model's weights, in host memory for the whole run.
#[derive(Debug, Default)]
pub struct HostStore {
    /// By model index.
    pub models: Vec<ModelHost>,
}

/// How weights are filled.
#[derive(Debug, Clone)]
pub enum WeightSource {
    /// Seeded random: model `i` uses seed `seed + i`.
    Random {
        /// Base seed.
        seed: u64,
    },
    /// A folder of `<model name>.safetensors` (or `<arch>.safetensors`)
    /// files; models without a file are seeded random.
    Safetensors {
        /// The folder.
        dir: std::path::PathBuf,
        /// Seed for models without a file.
        seed: u64,
    },
}

impl HostStore {
    /// Allocates every model's weights (pinned and/or pageable, or per-rank
    /// images for `shards[i].tp > 1`, and side images), then fills them.
    /// `names[i]` is model `i`'s name (for files and errors).
    pub fn build(
        dev: &mut dyn Device,
        layouts: &[ModelLayout],
        shards: &[ShardLayout],
        names: &[String],
        pinned: bool,
        pageable: bool,
        source: &WeightSource,
    ) -> Result<HostStore> {
        let total: u64 = layouts.iter().map(|l| l.total_bytes()).sum();
        let gib = |b: u64| b as f64 / GIB;
        let mut models = Vec::with_capacity(layouts.len());
        for (i, (layout, shard)) in layouts.iter().zip(shards).enumerate() {
            let alloc = |dev: &mut dyn Device, bytes: u64, pin: bool, what: &str| {
                dev.alloc_host(bytes, pin).with_context(|| {
                    format!(
                        "host memory is short: model `{}` needs {:.2} GiB {} for its {what} (all {} models: {:.2} GiB each copy kind)",
                        names[i],
                        gib(bytes),
                        if pin { "pinned" } else { "pageable" },
                        layouts.len(),
                        gib(total)
                    )
                })
            };
            let tp = shard.tp;
            let whole = tp == 1;
            let p = if pinned && whole {
                Some(alloc(dev, layout.total_bytes(), true, "weights")?)
            } else {
                None
            };
            let q = if pageable && whole {
                Some(alloc(dev, layout.total_bytes(), false, "weights")?)
            } else {
                None
            };
            let mut ranks = Vec::new();
            if !whole {
                if !pinned {
                    anyhow::bail!(
                        "model `{}`: tensor-parallel shards are held pinned; pageable copies need tp = 1",
                        names[i]
                    );
                }
                for r in 0..tp {
                    ranks.push(alloc(
                        dev,
                        shard.image_bytes(),
                        true,
                        &format!("rank {r} shard"),
                    )?);
                }
            }
            let mut sides = Vec::new();
            for s in 0..shard.stages.len() {
                let bytes = shard.stage_side_bytes(s);
                let mut row = Vec::new();
                for r in 0..tp {
                    row.push(if bytes > 0 {
                        Some(alloc(
                            dev,
                            bytes,
                            pinned,
                            &format!("stage {s} rank {r} side tensors"),
                        )?)
                    } else {
                        None
                    });
                }
                sides.push(row);
            }
            models.push(ModelHost {
                pinned: p,
                pageable: q,
                ranks,
                sides,
            });
        }
        for (i, ((layout, shard), host)) in layouts
            .iter()
            .zip(shards)
            .zip(models.iter_mut())
            .enumerate()
        {
            let (seed, file) = match source {
                WeightSource::Random { seed } => (seed.wrapping_add(i as u64), None),
                WeightSource::Safetensors { dir, seed } => {
                    let by_name = dir.join(format!("{}.safetensors", names[i]));
                    let by_arch = dir.join(format!("{}.safetensors", layout.shape.arch));
                    let f = [by_name, by_arch].into_iter().find(|p| p.exists());
                    (seed.wrapping_add(i as u64), f)
                }
            };
            let fill = |buf: &mut [u8]| -> Result<()> {
                match &file {
                    Some(f) => crate::model::weights::load_safetensors(layout, f, buf),
                    None => {
                        crate::model::weights::fill_random(layout, seed, buf);
                        Ok(())
                    }
                }
            };
            let mut temp = None;
            if let Some(buf) = host.pinned.as_mut().or(host.pageable.as_mut()) {
                fill(buf.as_mut_slice())?;
            } else {
                let mut t = HostBuffer::heap(layout.total_bytes(), false)?;
                fill(t.as_mut_slice())?;
                temp = Some(t);
            }
            if let (Some(a), Some(b)) = (host.pinned.as_ref(), host.pageable.as_mut()) {
                b.as_mut_slice().copy_from_slice(a.as_slice());
            }
            let full: &[u8] = match (&temp, &host.pinned, &host.pageable) {
                (Some(t), _, _) => t.as_slice(),
                (None, Some(p), _) => p.as_slice(),
                (None, None, Some(q)) => q.as_slice(),
                (None, None, None) => &[],
            };
            for (r, img) in host.ranks.iter_mut().enumerate() {
                shard.fill_image(layout, full, r, img.as_mut_slice());
            }
            for (s, row) in host.sides.iter_mut().enumerate() {
                for (r, side) in row.iter_mut().enumerate() {
                    if let Some(side) = side {
                        shard.fill_side(layout, full, s, r, side.as_mut_slice());
                    }
                }
            }
            drop(temp);
        }
        Ok(HostStore { models })
    }
}
