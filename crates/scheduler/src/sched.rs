//! The scheduler state machine (see the crate docs for the contract).

use crate::memory::Pool;
use crate::multipath::{Multipath, Piece};
use crate::placement::Placement;
use crate::slab::Slab;
use crate::traits::SystemTraits;
use crate::{
    Action, Batch, BatchId, CopyId, CopyOp, Event, EvictOp, LoadStats, Task, TaskId, PRELOAD_COPY,
};
use deferred::Deferred;
use index::{Generations, GpuIndex};
use smallvec::SmallVec;
use std::ops::Range;
use switchyard_core::hardware::GIB;
use switchyard_core::workload::{Eviction, PolicySpec, System};
use switchyard_core::{InputError, Schedule, Workload};

#[derive(Debug, Default)]
struct StageState {
    /// Holds a region on each of its GPUs (data present or arriving).
    resident: bool,
    /// Pool offset on each tp rank's GPU (inline, as the fields below: a
    /// model's state is one stretch of memory, not a walk through the heap).
    regions: SmallVec<[u64; 2]>,
    /// Copies in flight into the region: each group's layers as its copy
    /// carries them (the grouping of `load_batch`), which computes wait on.
    loading: SmallVec<[(Range<u32>, CopyId); 2]>,
    /// Batch size whose grouping ([`Placement::groups_for`]) the last load
    /// into the region was issued with.
    load_batch: u32,
    /// Helper links the last load into the region was planned with
    /// ([`Placement::groups_via`]; 0: one link).
    load_helpers: u32,
    /// Computes issued and not yet done.
    in_use: u32,
    /// Formed batches that will still run this stage.
    pending: u32,
    /// Victim key under which the stage sits in its GPUs' eviction sets,
    /// while `is_indexed` (else not there); see `index.rs`. Two fields, not
    /// an `Option`, so that the stage's state keeps to two cache lines.
    indexed_key: VictimKey,
    /// Whether the stage sits in its GPUs' eviction sets (under `indexed_key`).
    is_indexed: bool,
    /// Where its entry sits in rank 0's GPU eviction set, while indexed (a
    /// list's slot; unused by heaps); the other ranks' slots are in
    /// [`Scheduler::wide_slots`] (`index.rs`).
    slot: u32,
    /// The placement's first GPU of the stage (`gpus[stage * tp]`), and
    /// below its shard bytes and whether it runs on that GPU alone (tp 1):
    /// copies of the placement's fields, so that the per-event path reads
    /// a one-GPU stage's GPUs and bytes from the model's state, not from
    /// its placement's cache lines as well (see `hot.rs`).
    gpu: u32,
    /// The stage runs on one GPU, `gpu` (tensor-parallel degree 1).
    solo: bool,
    /// The placement's `shard_bytes` of the stage.
    bytes: u64,
    /// The placement's layers of the stage, and below the end of its
    /// direct-host layers, which start where the stage does, when
    /// `ranges_here` (else read from the placement: see `hot.rs`).
    layers: Range<u32>,
    /// End of the placement's `direct` range of the stage (see `layers`).
    direct_end: u32,
    /// `layers` and `direct_end` give the placement's ranges of the stage.
    ranges_here: bool,
}

impl StageState {
    /// Victim key under which the stage sits in its GPUs' eviction sets
    /// (`None`: not there).
    fn indexed(&self) -> Option<VictimKey> {
        self.is_indexed.then_some(self.indexed_key)
    }

    /// Records the key `reindex_stage` filed the stage under (`None`: none).
    fn set_indexed(&mut self, key: Option<VictimKey>) {
        self.is_indexed = key.is_some();
        self.indexed_key = key.unwrap_or_default();
    }
}

/// Aligned to a cache line: 192 bytes (tested), so a model's state is
/// exactly three lines, not four straddled ones.
#[derive(Debug, Default)]
#[repr(align(64))]
struct ModelState {
    /// `(arrival sequence number, request handle)`, FCFS (nodes in
    /// [`Scheduler::queues`]).
    queue: queue::Queue,
    stages: SmallVec<[StageState; 1]>,
    last_use: u64,
    served: u64,
    arrived: u64,
    /// The placement's pipeline stages and largest batch, copied here (as
    /// the stages' GPUs are) for the per-event path.
    pp: u32,
    /// The placement's `max_batch`.
    max_batch: u32,
}

/// Eviction order: (needed by a formed batch, policy key, tie-break),
/// smallest first, packed into two words: the first holds the tier (top
/// bit: needed by a formed batch) and the policy key, the second the
/// tie-break (or Belady's key).
type VictimKey = (u64, u64);

#[derive(Debug, Default, Clone, Copy)]
struct CopyMeta {
    model: u32,
    stage: u32,
    streamed: bool,
    /// An offload ([`crate::Action::Offload`]) of the region at
    /// `pool_offset` on `gpu` of `bytes`, freed when it is done.
    offload: Option<offload::Held>,
}

/// The control plane: feed it [`Event`]s, carry out the [`Action`]s it returns.
#[derive(Debug)]
pub struct Scheduler {
    system: System,
    /// What `system` means ([`SystemTraits::of`]): every per-system branch reads this.
    traits: SystemTraits,
    eviction: Eviction,
    placements: Vec<Placement>,
    /// Requests per micro-batch of each model (used when it has stages).
    micro_batch: Vec<u32>,
    models: Vec<ModelState>,
    /// The nodes of every model's queue.
    queues: queue::Queues,
    pools: Vec<Pool>,
    /// Per GPU: computes issued and not done, plus stage tasks waiting for memory.
    busy: Vec<u32>,
    /// Per GPU: models ready to batch and stages that may be evicted, in order.
    gpus: Vec<GpuIndex>,
    /// What tells live entries of the lazy eviction heaps from stale ones.
    generations: Generations,
    /// Requests queued, all models.
    queued: u64,
    tasks: Slab<Task>,
    batches: Slab<Batch>,
    copies: Slab<CopyMeta>,
    /// Batches waiting for memory at a stage.
    deferred: Deferred,
    retired: Vec<BatchId>,
    temp_bytes: Vec<u64>,
    tick: u64,
    arrivals: u64,
    /// Belady only: per model, schedule positions of its requests.
    future: Vec<Vec<u32>>,
    stats: Vec<LoadStats>,
    scratch: Vec<u64>,
    preloaded: bool,
    /// Multi-path loading's planner (`policy.loading: multipath`), if on.
    multipath: Option<Multipath>,
    /// Direct host access is on for this system (`policy.direct_host`).
    direct_host: bool,
    /// Pieces of the group being split (reused).
    pieces: Vec<Piece>,
    /// Most stages a GPU may hold at once (`policy.max_loaded`), besides memory.
    max_loaded: Option<u32>,
    /// Per GPU: stages holding a region there (cached, not streamed).
    loaded: Vec<u32>,
    /// When the background jobs yield to requests.
    preemption: background::Preemption,
    /// Evictions copy weights back to host memory (`policy.offload`).
    offload: bool,
    /// Per GPU: bytes of regions held by offloads in flight.
    offloading: Vec<u64>,
    /// Eviction-list slots of tensor-parallel ranks 1 and up (rank 0's is
    /// the stage's `slot`): model `m`'s stage `s` rank `r` at
    /// `wide_base[m] + s * (tp - 1) + r - 1`; nothing for one-GPU stages.
    wide_slots: Vec<u32>,
    /// Per model: its first entry in `wide_slots` (see there).
    wide_base: Vec<u32>,
}

/// One load of a stage, as [`Scheduler::issue_copies`] issues it.
struct StageLoad<'a> {
    /// The model.
    model: u32,
    /// Its stage.
    stage: u32,
    /// The batch size whose grouping is copied.
    batch: u32,
    /// Per tensor-parallel rank, the pool offset copied into.
    regions: &'a [u64],
    /// Into a scratch region of one batch (streaming), not the stage's
    /// cached region.
    streamed: bool,
}

impl Scheduler {
    /// The copies that bring in, before the run starts, every model of the
    /// resident system and the workload's `policy.preload` models of the
    /// others (id [`PRELOAD_COPY`]; they get no `CopyDone`). Emits nothing
    /// when no model starts in memory, or when called twice.
    pub fn preload(&mut self, actions: &mut Vec<Action>) {
        if self.preloaded {
            return;
        }
        self.preloaded = true;
        for (m, p) in self.placements.iter().enumerate() {
            for s in 0..p.pp as usize {
                if !self.models[m].stages[s].resident {
                    continue;
                }
                // Batch 1: preload copies finish before time 0 and no compute
                // runs behind them, so no batch's compute times matter; batch
                // 1 is the grouping of a load for a lone request. (`resident`
                // copies one group per stage at any batch size anyway.)
                let st = &mut self.models[m].stages[s];
                st.load_batch = 1;
                st.load_helpers = 0;
                let gs = p.groups_for(s as u32, 1);
                for (range, &(goff, bytes)) in gs.ranges.iter().zip(&gs.bytes) {
                    for r in 0..p.tp as usize {
                        actions.push(Action::Copy(CopyOp {
                            id: PRELOAD_COPY,
                            model: m as u32,
                            stage: s as u32,
                            gpu: p.gpus[s * p.tp as usize + r],
                            shard: r as u32,
                            layers: range.clone(),
                            bytes,
                            shard_offset: p.direct_bytes[s] + goff,
                            pool_offset: st.regions[r] + goff,
                            source: self.traits.source,
                            streamed: false,
                            via: None,
                            part: None,
                        }));
                    }
                }
            }
        }
    }

    /// Handles one event, appending the resulting actions to `actions`.
    pub fn on_event(&mut self, event: Event, actions: &mut Vec<Action>) {
        for b in self.retired.drain(..) {
            self.batches.release(b);
        }
        match event {
            Event::Arrived { request, model } => {
                let seq = self.arrivals;
                self.arrivals += 1;
                let ms = &mut self.models[model as usize];
                self.queues.push_back(&mut ms.queue, seq, request);
                ms.arrived += 1;
                self.queued += 1;
                if ms.queue.len() == 1 {
                    self.mark_ready(model, seq);
                }
                if self.eviction == Eviction::Belady {
                    self.reindex_model(model);
                }
                let g = self.models[model as usize].stages[0].gpu;
                self.try_dispatch(g, actions);
            }
            Event::CopyDone { copy } => {
                let meta = *self.copies.get(copy);
                self.copies.release(copy);
                if let Some(held) = meta.offload {
                    self.offload_done(meta.model, meta.stage, held, actions);
                    return;
                }
                if let Some(mp) = &mut self.multipath {
                    mp.done(copy);
                }
                if !meta.streamed {
                    let st = &mut self.models[meta.model as usize].stages[meta.stage as usize];
                    st.loading.retain(|(_, c)| *c != copy);
                    let done = st.loading.is_empty();
                    self.reindex_stage(meta.model, meta.stage);
                    if done && !self.deferred.is_empty() {
                        self.retry_deferred(actions);
                    }
                }
            }
            Event::ComputeDone { task } => self.compute_done(task, actions),
        }
    }

    fn compute_done(&mut self, task: TaskId, actions: &mut Vec<Action>) {
        let t = self.tasks.get(task);
        let (b, m, s, streamed) = (t.batch, t.model as usize, t.stage, t.streamed);
        let tp = self.tp_of(m as u32, s);
        let bytes = self.bytes_of(m as u32, s);
        self.preemption
            .done(hot::stage_gpus(&self.models[m], &self.placements[m], s));
        for r in 0..tp {
            let g = self.gpu_of(m as u32, s, r);
            self.busy[g as usize] -= 1;
            if streamed {
                let off = self.tasks.get(task).weights_offsets[r];
                self.pool_free(g, off, bytes);
                self.temp_bytes[g as usize] -= bytes;
                actions.push(Action::Evict(EvictOp {
                    model: m as u32,
                    stage: s,
                    gpu: g,
                    pool_offset: off,
                    bytes,
                }));
            }
        }
        if !streamed {
            self.models[m].stages[s as usize].in_use -= 1;
            self.reindex_stage(m as u32, s);
        }
        self.tasks.release(task);
        self.retry_deferred(actions);
        if s + 1 < self.pp_of(m as u32) {
            self.reach_or_defer(b, s + 1, actions);
        } else {
            actions.push(Action::Finish(b));
            self.retired.push(b);
        }
        for r in 0..tp {
            let g = self.gpu_of(m as u32, s, r);
            self.try_dispatch(g, actions);
        }
        self.preemption.settle(
            hot::stage_gpus(&self.models[m], &self.placements[m], s),
            actions,
        );
    }

    /// Forms a batch on GPU `g` if it is idle: the model (first stage on `g`,
    /// all first-stage GPUs idle) whose head request arrived first.
    fn try_dispatch(&mut self, g: u32, actions: &mut Vec<Action>) {
        if self.busy[g as usize] != 0 {
            return;
        }
        if let Some(m) = self.ready_model(g) {
            self.dispatch(m, actions);
        }
    }

    /// Takes up to `max_batch` queued requests of model `m` and sends them
    /// to its first stage: one batch, or, for a model split into pipeline
    /// stages, micro-batches of `micro_batch` requests that follow each
    /// other through the stages.
    fn dispatch(&mut self, m: u32, actions: &mut Vec<Action>) {
        let mi = m as usize;
        let n = self.models[mi]
            .queue
            .len()
            .min(self.models[mi].max_batch as usize);
        let per = if self.models[mi].pp > 1 {
            (self.micro_batch[mi] as usize).clamp(1, n.max(1))
        } else {
            n
        };
        self.tick += 1;
        let ms = &mut self.models[mi];
        ms.last_use = self.tick;
        ms.served += n as u64;
        self.queued -= n as u64;
        if let Some(head) = ms.queue.front_seq() {
            self.unmark_ready(m, head);
        }
        let mut left = n;
        while left > 0 {
            let take = left.min(per);
            left -= take;
            let b = self.batches.alloc();
            let ms = &mut self.models[mi];
            let batch = self.batches.get_mut(b);
            batch.model = m;
            batch.requests.clear();
            let queues = &mut self.queues;
            batch.requests.extend((0..take).map(|_| {
                queues
                    .pop_front(&mut ms.queue)
                    .expect("`take` requests are queued")
                    .1
            }));
            let mut cold = !self.traits.caches;
            if self.traits.caches {
                for st in ms.stages.iter_mut() {
                    st.pending += 1;
                    cold |= !st.resident || !st.loading.is_empty();
                }
            }
            batch.cold = cold;
            self.reach_or_defer(b, 0, actions);
        }
        if let Some(head) = self.models[mi].queue.front_seq() {
            self.mark_ready(m, head);
        }
        self.reindex_model(m);
        if self.traits.loads_on_demand() {
            // These loads are for the batch just formed: the first compute
            // behind their copies is its first micro-batch, `per` requests.
            let first = per.max(1) as u32;
            for s in 1..self.models[mi].pp {
                if !self.models[mi].stages[s as usize].resident
                    && self.allocate(m, s, false, actions)
                {
                    self.issue_load(m, s, first, actions);
                }
            }
        }
    }

    fn reach_or_defer(&mut self, b: BatchId, s: u32, actions: &mut Vec<Action>) {
        if !self.reach(b, s, actions) {
            let m = self.batches.get(b).model as usize;
            for r in 0..self.tp_of(m as u32, s) {
                let g = self.gpu_of(m as u32, s, r);
                self.busy[g as usize] += 1;
            }
            self.defer(b, s);
        }
    }

    /// The batch reaches stage `s`: issue its compute (and the loads it
    /// needs). False when memory for the stage cannot be had yet.
    fn reach(&mut self, b: BatchId, s: u32, actions: &mut Vec<Action>) -> bool {
        let m = self.batches.get(b).model;
        let (mi, si) = (m as usize, s as usize);
        // A load issued here is for this batch: its compute runs right
        // behind the copies. Batches take at most `max_batch` of the
        // requests waiting when they are formed (FCFS), so with one stage
        // this is the number waiting then, clamped to `1..=max_batch`.
        let batch_size = self.batches.get(b).requests.len() as u32;
        let task_id = if !self.traits.caches {
            if !self.reserve(m, s, None, actions) {
                return false;
            }
            let bytes = self.bytes_of(m, s);
            let t = self.tasks.alloc();
            let task = self.tasks.get_mut(t);
            task.weights_offsets.clear();
            task.weights_offsets.extend_from_slice(&self.scratch);
            task.streamed = true;
            let mut waits = std::mem::take(&mut task.waits);
            waits.clear();
            let scratch = std::mem::take(&mut self.scratch);
            let load = StageLoad {
                model: m,
                stage: s,
                batch: batch_size,
                regions: &scratch,
                streamed: true,
            };
            self.issue_copies(load, &mut waits, actions);
            self.scratch = scratch;
            self.tasks.get_mut(t).waits = waits;
            for r in 0..self.tp_of(m, s) {
                let g = self.gpu_of(m, s, r);
                self.temp_bytes[g as usize] += bytes;
            }
            t
        } else {
            if !self.models[mi].stages[si].resident {
                if !self.allocate(m, s, true, actions) {
                    return false;
                }
                self.issue_load(m, s, batch_size, actions);
                self.batches.get_mut(b).cold = true;
            }
            let st = &mut self.models[mi].stages[si];
            st.pending -= 1;
            st.in_use += 1;
            let t = self.tasks.alloc();
            let task = self.tasks.get_mut(t);
            task.waits.clear();
            task.waits.extend(st.loading.iter().cloned());
            task.weights_offsets.clear();
            task.weights_offsets.extend_from_slice(&st.regions);
            task.streamed = false;
            self.reindex_stage(m, s);
            t
        };
        let (p, ms) = (&self.placements[mi], &self.models[mi]);
        let gpus = hot::stage_gpus(ms, p, s);
        let task = self.tasks.get_mut(task_id);
        task.batch = b;
        task.model = m;
        task.stage = s;
        (task.layers, task.direct) = hot::stage_ranges(ms, p, s);
        task.gpus.clear();
        task.gpus.extend_from_slice(gpus);
        task.input_from = if s > 0 {
            Some(ms.stages[si - 1].gpu)
        } else {
            None
        };
        task.batch_size = batch_size;
        for &g in gpus {
            self.busy[g as usize] += 1;
        }
        self.preemption.issue(gpus, actions);
        actions.push(Action::Compute(task_id));
        true
    }
}

mod access;
mod background;
mod build;
mod deferred;
mod evict;
mod hot;
mod index;
mod lazy;
mod linked;
mod load;
mod offload;
mod queue;
mod warm;

#[cfg(test)]
mod layout {
    /// A model's scheduler state keeps to three cache lines and a stage's
    /// to two (what `hot.rs` counts on); the field order within them is
    /// the compiler's.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn model_state_is_three_cache_lines() {
        assert!(std::mem::size_of::<super::StageState>() <= 128);
        assert_eq!(std::mem::size_of::<super::ModelState>(), 192);
    }
}
