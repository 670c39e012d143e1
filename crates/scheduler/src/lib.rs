//! The control plane of Switchyard: a pure, deterministic state machine.
//! Events in, actions out; no clock, no GPU, no I/O. The simulator (`sim`,
//! virtual clock) and the real executor (`replay`, CUDA) drive the same
//! [`Scheduler`] and only time what it decides.
//!
//! # Driving it
//!
//! ```text
//! let mut s = Scheduler::new(&workload, &schedule)?;   // resident refuses models that don't fit
//! let mut actions = Vec::new();
//! s.preload(&mut actions);        // resident only: copies to finish BEFORE time 0; no CopyDone for them
//! for each event, in time order (ties: completions before arrivals):
//!     actions.clear();
//!     s.on_event(event, &mut actions);
//!     carry out `actions` in order
//! ```
//!
//! Feed arrivals in schedule order. [`Event::Arrived`]`{ request, model }`:
//! `request` is any `u64` the executor chooses (the simulator passes the
//! request's index in the schedule); it comes back in [`Batch::requests`].
//!
//! # Actions and how to carry them out
//!
//! Each GPU has one **copy stream** (host-to-device over its own link) and one
//! **compute stream**; both run in issue order.
//!
//! - [`Action::Copy`]`(`[`CopyOp`]`)`: copy `bytes` of the shard of `layers`
//!   (stage `stage`, tensor-parallel rank `shard`) from host memory
//!   (`source`: pinned or pageable), starting `shard_offset` bytes into that
//!   shard's host image, to `pool_offset` in `gpu`'s weight pool. Enqueue on
//!   `gpu`'s copy stream; report [`Event::CopyDone`] when it completes.
//!   With [`CopyOp::via`] set (multi-path loading), copy the bytes on the
//!   helper's copy stream into `staging_offset` of the helper's pool, then
//!   peer-copy them to `pool_offset` on `gpu` once they are there; report
//!   `CopyDone` when the peer copy is done. Staging is a ring: before
//!   writing staging bytes that an earlier piece used, wait for that
//!   piece's peer copy (a hazard on the helper's memory, never a choice).
//! - [`Action::Compute`]`(task)`: read [`Scheduler::task`]`(task)` (valid
//!   until its `ComputeDone` is fed) and enqueue on the compute stream of
//!   every GPU in [`Task::gpus`] (a tensor-parallel group runs together). If
//!   [`Task::input_from`] is set, the batch's activations are first handed
//!   over from that GPU (peer link). Layers then run in order; a layer range
//!   listed in [`Task::waits`] may start only when every copy listed for it is
//!   done (one copy per tp rank) and the previous layers have run: PipeSwitch
//!   pipelining. The layers of [`Task::direct`] (`policy.direct_host`) are
//!   never copied: they read their weights from the model's pinned host
//!   image, mapped into the GPU's address space, at
//!   [`Placement::direct_bytes`]-relative offsets from its start; the
//!   other layers sit in the pool from `weights_offsets` on, the direct
//!   layers' bytes left out. Report [`Event::ComputeDone`] when the last layer is done.
//! - [`Action::Evict`]`(`[`EvictOp`]`)`: the region is free from now on (no
//!   data moves; every compute that used it has already been reported done).
//! - [`Action::Offload`]`(`[`OffloadOp`]`)` (only with `policy.offload`):
//!   copy the `bytes` of the evicted shard of `layers` at `pool_offset` on
//!   `gpu` back to the shard's host image (Computron's `.to("cpu")`), on a
//!   device-to-host lane of the GPU's link that runs beside its copy
//!   stream (PCIe is full duplex); report [`Event::CopyDone`] with its id
//!   when it completes. Every compute that used the region has been
//!   reported done. The region stays taken until then: its
//!   [`Action::Evict`] follows the `CopyDone`, and a load that needs the
//!   memory waits for it.
//! - [`Action::Finish`]`(batch)`: the batch's last stage is done; its outputs
//!   are ready now. The executor records each request of
//!   [`Scheduler::batch`]`(batch)` as finished at the time of the
//!   `ComputeDone` that produced this action. Batch data stays readable until
//!   the next `on_event` call.
//! - [`Action::Preempt`]`(gpu)` / [`Action::Resume`]`(gpu)` (only for GPUs
//!   with a workload `background` job): stop issuing the job's iterations
//!   before the computes that follow (they wait, in stream order, for the
//!   iteration in progress) / issue them again (the GPU's computes are all
//!   done). The job starts running at time 0.
//!
//! Ids ([`CopyId`], [`TaskId`], [`BatchId`]) are small integers reused after
//! their completion is fed back, so executors can index flat arrays by them.
//!
//! # Policy
//!
//! - Placement: each model takes `tp * pp` distinct GPUs ([`Placement`]).
//!   Residency and eviction are per pipeline stage (the stage's `tp` shards
//!   together). Each GPU's weight pool is `hardware.usable_bytes()`, handed out
//!   first fit by offset ([`memory::Pool`]); never oversubscribed.
//! - Batching: per model FCFS, up to `max_batch` requests. A batch is formed
//!   when every GPU of the model's first stage has no compute outstanding;
//!   among models waiting on one GPU, the oldest head request goes first.
//!   A model split into pipeline stages has its batch cut into micro-batches
//!   of `micro_batch` requests, each its own [`Batch`] through the stages,
//!   so stage `k + 1` runs one while stage `k` runs the next.
//! - Loads: when a batch is formed, every stage of its model that is not
//!   resident starts loading at once, each shard over its own GPU's link, if
//!   memory can be had by evicting idle stages (Computron's load entries).
//!   A stage that cannot get memory yet loads when the batch reaches it, as
//!   soon as earlier work on that GPU releases enough (stage k loads the
//!   next model while stage k+1 still runs the previous one). Stages with
//!   computes outstanding or copies in flight are never evicted. A load's
//!   copies are grouped for the batch whose compute runs behind them (its
//!   size: the requests waiting when it was formed, at most `max_batch`;
//!   a micro-batch for a split model); computes wait on the copies as issued.
//! - Offload (`policy.offload`): an eviction copies the victim's bytes back
//!   to host memory ([`Action::Offload`]) and frees its region only when
//!   that copy is done. A stage that needs memory on a GPU whose offloads
//!   in flight will free enough waits for them rather than evicting more.
//! - Eviction ([`switchyard_core::workload::Eviction`]): LRU (least recent
//!   batch), LFU (fewest requests served), Belady (next request furthest
//!   ahead in the schedule, counting queued requests first). Stages that a
//!   formed batch still needs are evicted only as a last resort.
//! - Systems ([`SystemTraits`], one table every per-system branch reads;
//!   executors ask [`copy_source`] and [`placements`]): `computron` (pinned, whole stage shard per copy),
//!   `pipeswitch` (pinned, layer groups: optimal DP / per layer / one group,
//!   see [`grouping`]; the DP is fed the compute times of the batch the load
//!   is for, [`Placement::groups_for`]), `stop-and-start` (pageable, whole shard),
//!   `resident` (everything loaded by [`Scheduler::preload`]; refuses
//!   workloads that don't fit), `streaming` (every batch copies its layers
//!   into a scratch region freed after the stage computes; nothing cached).

pub mod grouping;
pub mod memory;
pub mod multipath;
pub mod placement;
mod sched;
mod slab;
pub mod traits;

pub use placement::Placement;
pub use sched::Scheduler;
pub use traits::{copy_source, placements, SystemTraits};

use std::ops::Range;

/// Identifies an outstanding copy (reused after its `CopyDone`).
pub type CopyId = u32;
/// Identifies an outstanding compute task (reused after its `ComputeDone`).
pub type TaskId = u32;
/// Identifies a batch (reused after the `on_event` call following its `Finish`).
pub type BatchId = u32;

/// Copy id of preload copies: they complete before time 0 and get no `CopyDone`.
pub const PRELOAD_COPY: CopyId = CopyId::MAX;

/// What happened, as the executor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A request for `model` (index in the workload) arrived.
    Arrived {
        /// Executor-chosen request handle (the simulator: schedule index).
        request: u64,
        /// Model index.
        model: u32,
    },
    /// A copy finished.
    CopyDone {
        /// The copy.
        copy: CopyId,
    },
    /// A compute task finished on every GPU of its group.
    ComputeDone {
        /// The task.
        task: TaskId,
    },
}

/// Host memory a copy reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Page-locked host memory (fast DMA).
    Pinned,
    /// Ordinary pageable memory (staged by the driver).
    Pageable,
}

/// A host-to-device copy into a GPU's weight pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOp {
    /// Its id, reported back in `CopyDone`.
    pub id: CopyId,
    /// Model index.
    pub model: u32,
    /// Pipeline stage.
    pub stage: u32,
    /// Destination GPU (its link carries the copy).
    pub gpu: u32,
    /// Tensor-parallel rank of the shard.
    pub shard: u32,
    /// Layers whose shard bytes are copied (absolute layer indices).
    pub layers: Range<u32>,
    /// Bytes copied.
    pub bytes: u64,
    /// Offset of these bytes in the host image of this stage's shard.
    pub shard_offset: u64,
    /// Destination offset in the GPU's weight pool.
    pub pool_offset: u64,
    /// Host memory kind.
    pub source: Source,
    /// Part of a streamed (uncached) pass rather than a cached load.
    pub streamed: bool,
    /// Multi-path loading: the bytes go over this helper's link into its
    /// staging space first, then over the peer link to `gpu`
    /// ([`multipath`]); `None`: over `gpu`'s own link.
    pub via: Option<Via>,
    /// Multi-path loading: this copy is one piece of a layer group split
    /// over several links (`bytes` at `part.offset` of the group's
    /// `part.group_bytes`), for executors that copy whole layers and must
    /// place the piece inside their own layout of the group; `None`: the
    /// whole group.
    pub part: Option<Part>,
}

/// Where a piece sits in its layer group ([`CopyOp::part`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Offset of the piece's bytes in the group's bytes.
    pub offset: u64,
    /// Bytes of the whole group.
    pub group_bytes: u64,
}

/// The helper a multi-path piece goes through ([`CopyOp::via`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via {
    /// The helper GPU: its link carries the host-to-device copy.
    pub helper: u32,
    /// Where the piece is staged in the helper's pool (inside the staging
    /// space reserved at its top, never a model's region; reused as a
    /// ring, see the crate docs).
    pub staging_offset: u64,
}

/// A region of a GPU's weight pool given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictOp {
    /// Model whose shard lived there.
    pub model: u32,
    /// Its pipeline stage.
    pub stage: u32,
    /// The GPU.
    pub gpu: u32,
    /// Start of the region in the pool.
    pub pool_offset: u64,
    /// Length of the region.
    pub bytes: u64,
}

/// A device-to-host copy of an evicted stage shard back to host memory
/// (`policy.offload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadOp {
    /// Its id, reported back in `CopyDone`.
    pub id: CopyId,
    /// Model index.
    pub model: u32,
    /// Pipeline stage.
    pub stage: u32,
    /// The GPU whose link carries it.
    pub gpu: u32,
    /// Tensor-parallel rank of the shard.
    pub shard: u32,
    /// Layers whose shard bytes are copied (the stage's copied layers).
    pub layers: Range<u32>,
    /// Bytes copied.
    pub bytes: u64,
    /// Start of the region in the pool.
    pub pool_offset: u64,
    /// Host memory the shard's image lives in (written back there).
    pub source: Source,
}

/// What the executor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a copy on the GPU's copy stream.
    Copy(CopyOp),
    /// Enqueue the compute task [`Scheduler::task`] on its GPUs' compute streams.
    Compute(TaskId),
    /// Free a pool region.
    Evict(EvictOp),
    /// Copy an evicted shard back to host memory on the GPU's
    /// device-to-host lane (`policy.offload`).
    Offload(OffloadOp),
    /// The batch is done: record its requests as finished now.
    Finish(BatchId),
    /// The GPU's background job stops issuing iterations: the request work
    /// that follows on its compute stream waits for the iteration in
    /// progress (issued just before the first [`Action::Compute`] on a GPU
    /// with a job, while the job runs).
    Preempt(u32),
    /// The GPU's background job runs iterations again: every compute
    /// issued on the GPU has been reported done.
    Resume(u32),
}

/// One pipeline stage of one batch on its tensor-parallel GPU group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    /// The batch.
    pub batch: BatchId,
    /// Model index.
    pub model: u32,
    /// Pipeline stage.
    pub stage: u32,
    /// Layers run (absolute indices).
    pub layers: Range<u32>,
    /// Layers of `layers` (a prefix; empty without `policy.direct_host`)
    /// whose weights stay in mapped pinned host memory: the kernels read
    /// them there, over the GPU's link, in every pass
    /// ([`Placement::direct`]).
    pub direct: Range<u32>,
    /// The tensor-parallel group, rank order.
    pub gpus: Vec<u32>,
    /// Pool offset of this stage's weights on each GPU of `gpus`.
    pub weights_offsets: Vec<u64>,
    /// Layer ranges that must wait for copies (possibly several per range, one per rank).
    pub waits: Vec<(Range<u32>, CopyId)>,
    /// GPU of the previous stage, whose activations are handed over first.
    pub input_from: Option<u32>,
    /// Requests in the batch.
    pub batch_size: u32,
    /// Weights were streamed into a scratch region (freed when this task is done).
    pub streamed: bool,
}

/// Requests served together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Model index.
    pub model: u32,
    /// Request handles, FCFS order.
    pub requests: Vec<u64>,
    /// Whether the batch waited on a load of its model.
    pub cold: bool,
}

/// Loads of one model so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Stage loads (one per stage brought in; streaming: one per stage pass).
    pub loads: u64,
    /// Bytes copied host-to-device.
    pub bytes: u64,
}
