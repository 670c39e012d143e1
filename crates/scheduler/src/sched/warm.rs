//! A warm start: the workload's `policy.preload` models hold their regions
//! before the clock starts, as after a warm-up (their copies are emitted by
//! [`Scheduler::preload`]).

use super::Scheduler;
use switchyard_core::hardware::GIB;
use switchyard_core::{InputError, Workload};

impl Scheduler {
    /// Reserves every stage of each `policy.preload` model, in order. Fails
    /// (naming `policy.preload`) when the system caches nothing, or when a
    /// model does not fit beside the earlier ones (memory, `max_loaded`).
    pub(super) fn warm_start(&mut self, workload: &Workload) -> Result<(), InputError> {
        if workload.preload.is_empty() {
            return Ok(());
        }
        if !self.traits.caches {
            return Err(InputError::new(
                &workload.source,
                workload.preload_line,
                "policy.preload",
                format!(
                    "`{}` keeps no model in GPU memory, so none can start there",
                    self.system.name()
                ),
            ));
        }
        let mut sink = Vec::new();
        for &m in &workload.preload {
            for s in 0..self.placements[m as usize].pp {
                // Never by evicting a model listed before: no eviction here.
                let gpus = self.placements[m as usize].stage_gpus(s);
                let full = self
                    .max_loaded
                    .is_some_and(|n| gpus.iter().any(|&g| self.loaded[g as usize] >= n));
                if full || !self.reserve(m, s, None, &mut sink) {
                    let p = &self.placements[m as usize];
                    let g = p.stage_gpus(s)[0] as usize;
                    return Err(InputError::new(
                        &workload.source,
                        workload.preload_line,
                        "policy.preload",
                        format!(
                            "model `{}` (stage {s}, {:.2} GiB per GPU) does not fit on GPU {g} beside \
                             the models listed before it ({:.2} of {:.2} GiB taken{})",
                            workload.models[m as usize].name,
                            p.shard_bytes[s as usize] as f64 / GIB,
                            self.pools[g].used() as f64 / GIB,
                            self.pools[g].capacity() as f64 / GIB,
                            match self.max_loaded {
                                Some(n) => format!(", at most {n} models per GPU"),
                                None => String::new(),
                            }
                        ),
                    ));
                }
                let st = &mut self.models[m as usize].stages[s as usize];
                st.regions.clear();
                st.regions.extend_from_slice(&self.scratch);
                st.resident = true;
                for &g in self.placements[m as usize].stage_gpus(s) {
                    self.loaded[g as usize] += 1;
                }
                self.reindex_stage(m, s);
            }
        }
        Ok(())
    }
}
