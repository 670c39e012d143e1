//! Building a scheduler: placements, per-model state, the pools and the
//! indexes, and for `resident` every model's memory reserved up front.

use super::*;

impl Scheduler {
    /// A scheduler for `workload` with its own policy; `schedule` gives Belady
    /// its knowledge of the future (online policies never read it).
    pub fn new(workload: &Workload, schedule: &Schedule) -> Result<Scheduler, InputError> {
        Scheduler::with_policy(workload, schedule, workload.policy)
    }

    /// True when `policy` reads the whole schedule ahead (Belady's
    /// eviction: the next use of every model): its caller must hold the
    /// schedule; any other policy is given an empty one and never reads it.
    pub fn needs_future(policy: PolicySpec) -> bool {
        policy.eviction == Eviction::Belady
    }

    /// Like [`Scheduler::new`] with `policy` in place of the workload's.
    ///
    /// Fails (naming `policy.system` in the workload file) when `resident`
    /// is asked for models that do not all fit in GPU memory together.
    pub fn with_policy(
        workload: &Workload,
        schedule: &Schedule,
        policy: PolicySpec,
    ) -> Result<Scheduler, InputError> {
        let hw = &workload.cluster.hardware;
        let n_gpus = workload.cluster.gpus.max(1);
        let placements = crate::traits::placements(workload, policy);
        let multipath = Multipath::new(&workload.loading, n_gpus, hw.usable_bytes());
        // Multi-path staging space is carved off the top of every pool.
        let capacity = multipath
            .as_ref()
            .map_or(hw.usable_bytes(), Multipath::weight_capacity);
        let mut models = Vec::with_capacity(placements.len());
        for (m, p) in placements.iter().enumerate() {
            for s in 0..p.pp {
                if p.shard_bytes[s as usize] > capacity {
                    return Err(InputError::new(
                        &workload.source,
                        None,
                        "models",
                        format!(
                            "model `{}`: {} needs {:.2} GiB on one GPU, but a GPU has {:.2} GiB usable{}",
                            workload.models[m].name,
                            if p.tp * p.pp == 1 { "the whole model".to_string() } else { format!("stage {s}") },
                            p.shard_bytes[s as usize] as f64 / GIB,
                            capacity as f64 / GIB,
                            if p.tp * p.pp == 1 && workload.models[m].tp * workload.models[m].pp > 1 {
                                format!(" (`{}` runs each model on one GPU, ignoring `parallel`)", policy.system.name())
                            } else {
                                String::new()
                            }
                        ),
                    ));
                }
                for &g in p.stage_gpus(s) {
                    background::check_fit(workload, m, p.shard_bytes[s as usize], g, capacity)?;
                }
            }
            models.push(ModelState {
                stages: (0..p.pp)
                    .map(|s| {
                        let (layers, direct) = (&p.stages[s as usize], &p.direct[s as usize]);
                        StageState {
                            gpu: p.stage_gpus(s)[0],
                            solo: p.tp == 1,
                            bytes: p.shard_bytes[s as usize],
                            layers: layers.clone(),
                            direct_end: direct.end,
                            ranges_here: direct.start == layers.start,
                            slot: linked::NIL,
                            ..StageState::default()
                        }
                    })
                    .collect(),
                pp: p.pp,
                max_batch: p.max_batch,
                ..ModelState::default()
            });
        }
        let mut wide_base = Vec::with_capacity(placements.len());
        let mut wide = 0u32;
        for p in &placements {
            wide_base.push(wide);
            wide += (p.tp - 1) * p.pp;
        }
        let mut future = Vec::new();
        if Scheduler::needs_future(policy) {
            future = vec![Vec::new(); placements.len()];
            for (i, r) in schedule.requests.iter().enumerate() {
                if let Some(f) = future.get_mut(r.model as usize) {
                    f.push(i as u32);
                }
            }
        }
        let mut s = Scheduler {
            system: policy.system,
            traits: SystemTraits::of(policy.system),
            eviction: policy.eviction,
            micro_batch: workload
                .models
                .iter()
                .map(|m| m.micro_batch.max(1))
                .collect(),
            models,
            queues: queue::Queues::default(),
            pools: (0..n_gpus)
                .map(|g| Pool::new(background::pool_bytes(workload, g, capacity)))
                .collect(),
            busy: vec![0; n_gpus as usize],
            gpus: (0..n_gpus)
                .map(|_| GpuIndex::new(policy.eviction))
                .collect(),
            generations: Generations::new(&placements, policy.eviction),
            queued: 0,
            tasks: Slab::default(),
            batches: Slab::default(),
            copies: Slab::default(),
            deferred: Deferred::new(n_gpus as usize),
            retired: Vec::new(),
            temp_bytes: vec![0; n_gpus as usize],
            tick: 0,
            arrivals: 0,
            future,
            stats: vec![LoadStats::default(); placements.len()],
            scratch: Vec::new(),
            preloaded: false,
            max_loaded: policy.max_loaded,
            loaded: vec![0; n_gpus as usize],
            preemption: background::Preemption::new(workload, n_gpus),
            offload: policy.offload
                && switchyard_core::workload::offload_refusal(policy.system).is_none(),
            offloading: vec![0; n_gpus as usize],
            placements,
            multipath,
            direct_host: workload.loading.direct_host
                && switchyard_core::workload::direct_host_refusal(policy.system).is_none(),
            pieces: Vec::new(),
            wide_slots: vec![linked::NIL; wide as usize],
            wide_base,
        };
        if s.traits.preloads {
            s.reserve_all(workload)?;
        } else {
            s.warm_start(workload)?;
        }
        Ok(s)
    }

    fn reserve_all(&mut self, workload: &Workload) -> Result<(), InputError> {
        let mut sink = Vec::new();
        for m in 0..self.models.len() {
            for st in 0..self.placements[m].pp {
                if !self.allocate(m as u32, st, false, &mut sink) {
                    let p = &self.placements[m];
                    let gib = |b: u64| b as f64 / GIB;
                    let g = p.stage_gpus(st)[0] as usize;
                    return Err(InputError::new(
                        &workload.source,
                        None,
                        "policy.system",
                        format!(
                            "`resident` keeps every model in GPU memory, but model `{}` (stage {st}, {:.2} GiB \
                             per GPU) does not fit on GPU {g}: {:.2} of its {:.2} GiB are already taken by \
                             earlier models{}; use a swapping system (computron, pipeswitch, ...) or more GPUs",
                            workload.models[m].name,
                            gib(p.shard_bytes[st as usize]),
                            gib(self.pools[g].used()),
                            gib(self.pools[g].capacity()),
                            match self.max_loaded {
                                Some(n) => format!(", or GPU {g} already holds policy.max_loaded = {n} models"),
                                None => String::new(),
                            },
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
