//! Direct host access on the device (`policy.direct_host`): the layers the
//! scheduler's placement leaves in host memory ([`Placement::direct`]) are
//! mapped from each model's pinned host image into its GPU's address space
//! once, at start, and every compute reads them there (CUDA: mapped
//! pinned memory; the CPU device reads the host bytes in place).

use super::Executor;
use anyhow::{bail, Context, Result};
use switchyard_scheduler::placement::Placement;

impl Executor {
    /// Maps the host-resident layers of every model placed with some
    /// ([`Placement::direct`]) for every GPU and records them in the pool;
    /// returns the bytes mapped (counted once per model). Fails when a model with such layers has
    /// no pinned host image (the scheduler leaves layers in host memory
    /// only for one-GPU models copied from pinned memory).
    pub fn map_direct_layers(&mut self, placed: &[Placement]) -> Result<u64> {
        let mut mapped = 0;
        for (m, p) in placed.iter().enumerate() {
            for (s, d) in p.direct.iter().enumerate() {
                if d.is_empty() {
                    continue;
                }
                if p.tp != 1 || p.pp != 1 {
                    bail!("model {m}: layers left in host memory need a one-GPU placement");
                }
                let Some(host) = self.host.models.get(m).and_then(|h| h.pinned.as_ref()) else {
                    bail!("model {m}: layers left in host memory need its pinned host image");
                };
                let layers = d.start as usize..d.end as usize;
                let (off, bytes) = self.shards[m].main_range(layers.clone());
                // Mapped for every GPU: `replay`'s warm-up runs a one-GPU
                // model on each (the placed GPU is the one that serves it).
                for gpu in 0..self.pool.gpus() {
                    // SAFETY: `host` is owned by `self.host`, which lives as
                    // long as the executor and is never written after start;
                    // kernels read the mapping only through this executor's
                    // computes.
                    let at =
                        unsafe { self.dev.map_host(gpu, host, off, bytes) }.with_context(|| {
                            format!("mapping model {m}'s layers {layers:?} for GPU {gpu}")
                        })?;
                    let b = self.pool.place_mapped(
                        gpu,
                        m,
                        &self.shards[m].main_offsets,
                        layers.clone(),
                        at,
                    )?;
                    if gpu == p.stage_gpus(s as u32)[0] as usize {
                        mapped += b;
                    }
                }
            }
        }
        Ok(mapped)
    }
}
