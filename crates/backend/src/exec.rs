//! The executor: carries out copies and computes on a device, in the order
//! given, and reports when they finish. It decides nothing: `replay` feeds it
//! the scheduler's actions, and the swap benchmark feeds it hand-built ones.
//!
//! Per GPU, copies run on the copy stream in issue order and computes on the
//! compute stream in issue order. A compute waits on the events of the
//! copies of its layer groups, each just before that group's first layer, so
//! early layers run while later ones are still in flight (PipeSwitch).
//! Pinned copies are issued whole (asynchronous); pageable copies block the
//! host while the driver stages them, so they are issued in chunks, one per
//! [`Executor::pump`], and the host keeps dispatching between chunks.
//! Computes are issued the same way, [`LAYERS_PER_PUMP`] layers per pump: a
//! forward pass is hundreds of launches, and issuing it whole would hold
//! the dispatcher (arrivals, copies, completions) for milliseconds. A warm
//! pass (nothing left to wait for, one GPU) is issued in one pump instead,
//! as a graph captured per placement ([`forward::Graphs`]).
//!
//! Model parallelism: a compute runs on a tensor-parallel group of GPUs in
//! lockstep (collectives inside, [`forward`]); computes are issued in one
//! global order, so every GPU's stream sees them, and their collectives, in
//! the same order. A copy moves one rank's shard over that GPU's own link.
//! Between pipeline stages a whole batch's activations are handed over
//! (`exec/handoff.rs`): the producing stage writes them to an outbox slot, the
//! next stage's ranks pull them peer to peer, or through pinned host memory
//! where the GPUs have no peer access.

use crate::device::HostBuffer;
use crate::device::{DevPtr, Device, Event, StreamKind};
use crate::forward;
use crate::host_store::HostStore;
use crate::model::shard::ShardLayout;
use crate::model::ModelLayout;
use crate::pool::Pool;
use anyhow::{anyhow, bail, Result};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Bytes of one pageable copy chunk.
pub const PAGEABLE_CHUNK: u64 = 4 << 20;
/// Computes issued to one GPU's stream and not yet seen done. More wait in
/// the executor's queue: a compute stalled on its copies holds hundreds of
/// launches, and a full launch queue would block the host (and dispatch).
/// Copies are not limited, so loads still overlap the running compute.
pub const MAX_ISSUED_COMPUTES: usize = 1;
const OUT_SLOTS: usize = 128;
/// Layers of one compute issued per [`Executor::pump`]: between them the
/// host dispatches arrivals, issues copies and sees completions, so a long
/// launch sequence never holds the dispatcher for more than a layer's
/// launches.
pub const LAYERS_PER_PUMP: usize = 1;

pub mod background;
mod build;
mod compute;
mod direct_host;
pub use build::Split;
mod handoff;
mod issue_stats;
mod multipath;
mod offload;
pub mod workload;
pub use handoff::{HandoffStats, OUTBOX_SLOTS};
pub use issue_stats::IssueStats;
pub use multipath::check_peer_access;
pub use offload::OffloadOp;

/// A host-to-device copy of (one rank's shard of) a model's layers into the pool.
#[derive(Debug, Clone, Default)]
pub struct CopyOp {
    /// Caller's id of the copy.
    pub key: u64,
    /// Target GPU.
    pub gpu: usize,
    /// Model index.
    pub model: usize,
    /// Pipeline stage of the layers.
    pub stage: usize,
    /// Tensor-parallel rank of the shard.
    pub shard: usize,
    /// Layers copied (contiguous in the model's host buffer).
    pub layers: Range<usize>,
    /// Pool offset they land at.
    pub pool_offset: u64,
    /// From pinned memory (else pageable).
    pub pinned: bool,
    /// Multi-path loading: only this piece of the group (the scheduler's
    /// [`CopyOp::bytes`] at `part.offset`), with `pool_offset` still the
    /// group's; `None`: the whole group.
    pub part: Option<switchyard_scheduler::Part>,
    /// Its byte count in the scheduler's accounting (used with `part`).
    pub bytes: u64,
    /// Multi-path loading: through this helper's staging and the peer link.
    pub via: Option<switchyard_scheduler::Via>,
}

impl CopyOp {
    /// The executor's copy `key` for the scheduler's copy `c`.
    pub fn of_action(key: u64, c: &switchyard_scheduler::CopyOp) -> CopyOp {
        CopyOp {
            key,
            gpu: c.gpu as usize,
            model: c.model as usize,
            stage: c.stage as usize,
            shard: c.shard as usize,
            layers: c.layers.start as usize..c.layers.end as usize,
            // The group's offset: a piece lands inside it.
            pool_offset: c.pool_offset - c.part.map_or(0, |p| p.offset),
            pinned: c.source == switchyard_scheduler::Source::Pinned,
            part: c.part,
            bytes: c.bytes,
            via: c.via,
        }
    }
}

/// A batch through a range of a model's layers on a tensor-parallel group.
#[derive(Debug, Clone, Default)]
pub struct ComputeOp {
    /// Caller's id of the compute.
    pub key: u64,
    /// GPUs of the group, rank order (one GPU when `tp = 1`).
    pub gpus: Vec<usize>,
    /// Model index.
    pub model: usize,
    /// Pipeline stage.
    pub stage: usize,
    /// Layers to run.
    pub layers: Range<usize>,
    /// Request ids of the batch.
    pub requests: Vec<u64>,
    /// Layer groups whose copies (by key) must be done before the group runs.
    pub waits: Vec<(Range<usize>, u64)>,
    /// The previous stage's compute (by key) whose activations this one takes.
    pub input: Option<u64>,
    /// GPUs of the next stage (empty for the last stage): where the
    /// activations go, deciding peer or host hand-over.
    pub handoff_to: Vec<usize>,
}

/// Something that finished, with the host instant it was seen done.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// A copy's bytes are on the GPU.
    Copy {
        /// Its key.
        key: u64,
        /// When its first byte started moving: the host instant it was seen
        /// done less its time on the copy stream (as for computes); for a
        /// multi-path piece, when its forward over the peer link started.
        start: Instant,
        /// When the host saw it done.
        at: Instant,
        /// A multi-path piece: seconds its host-to-helper copy took on the
        /// helper's copy stream (it ended before the forward started).
        staged_s: Option<f64>,
    },
    /// A compute finished (and its output, if any, is on the host).
    Compute {
        /// Its key.
        key: u64,
        /// When its first layer started on the GPU: the host instant it was
        /// seen done less its GPU time (start to done events of its first
        /// GPU), so the GPU clock's drift against the host's over a long run
        /// does not enter.
        start: Instant,
        /// When the host saw it done.
        at: Instant,
        /// Host seconds spent issuing it (its layer steps or graph launch),
        /// which bounds a pass whose launches outpace the GPU.
        host_s: f64,
    },
}

enum CopyState {
    Queued,
    Issued(Event),
    Done,
}

struct PendingCopy {
    op: CopyOp,
    done_bytes: u64,
    /// Event recorded on the copy stream before its first byte.
    start: Option<Event>,
}

/// A compute whose layers are being issued, [`LAYERS_PER_PUMP`] at a time.
struct Issuing {
    op: ComputeOp,
    pass: forward::Pass,
    slot: usize,
    /// Host seconds spent issuing it so far.
    host_s: f64,
}

struct IssuedCompute {
    key: u64,
    gpus: Vec<usize>,
    start: Event,
    done: Vec<Event>,
    host_s: f64,
}

/// Carries out copies and computes on a device.
pub struct Executor {
    /// The device.
    pub dev: Box<dyn Device>,
    /// Every model's weights in host memory.
    pub host: HostStore,
    /// Every model's layout.
    pub layouts: Vec<ModelLayout>,
    /// How every model is split over ranks and stages.
    pub shards: Vec<ShardLayout>,
    /// Where layers sit in each GPU's pool.
    pub pool: Pool,
    /// Measured fp16 GEMM rate (sizes synthetic fp16 and bf16 layers), FLOP/s.
    pub gemm_rate: f64,
    /// Measured GEMM rates of the other element types the models use
    /// (sizes their synthetic layers), FLOP/s.
    pub gemm_rates: Vec<(crate::device::Dtype, f64)>,
    /// Synthetic batch slope of the hardware profile.
    pub synthetic_slope: f64,
    /// Host time spent in single issuing calls.
    pub issue: IssueStats,
    /// Warm passes' graphs ([`forward::Graphs`]).
    pub graphs: forward::Graphs,
    /// The CPUs the host thread issuing its work was pinned to
    /// ([`crate::host_cpus`]), `None` when unpinned.
    pub host_cpus: Option<String>,
    /// How replay's host thread waits with nothing in flight (`--idle`).
    pub idle: crate::pace::IdleWait,
    /// The workload's background jobs ([`background`]).
    background: background::Jobs,
    copyq: Vec<VecDeque<PendingCopy>>,
    computeq: VecDeque<ComputeOp>,
    copies: HashMap<u64, CopyState>,
    issued_copies: Vec<VecDeque<(u64, Event, Event)>>,
    issuing: Vec<Issuing>,
    issued_computes: Vec<IssuedCompute>,
    inflight: Vec<usize>,
    hand: handoff::Handoff,
    out: Vec<HostBuffer>,
    out_slot_bytes: u64,
    out_busy: Vec<Vec<Option<u64>>>,
    next_slot: Vec<usize>,
    /// Per helper GPU: multi-path pieces whose staging may be reused.
    staged: Vec<multipath::Staged>,
    /// Per multi-path piece (by key): the events around its host-to-helper
    /// copy on the helper's copy stream.
    piece_legs: HashMap<u64, (Event, Event)>,
    /// Per GPU: offloads issued on its offload stream `(key, start, done)`.
    issued_offloads: Vec<VecDeque<(u64, Event, Event)>>,
}

impl Executor {
    /// Queues a copy; it is issued by [`Executor::pump`].
    pub fn copy(&mut self, op: CopyOp) -> Result<()> {
        let layout = &self.layouts[op.model];
        let shard = &self.shards[op.model];
        self.pool.place(
            op.gpu,
            op.model,
            &layout.shape.arch,
            &shard.main_offsets,
            op.layers.clone(),
            op.pool_offset,
        )?;
        let host = &self.host.models[op.model];
        if host.source(op.pinned, op.shard).is_none() {
            bail!(
                "model {} has no {} host copy of rank {}",
                op.model,
                if op.pinned { "pinned" } else { "pageable" },
                op.shard
            );
        }
        if shard.side_range(op.layers.clone()).1 > 0
            && (host.side(op.stage, op.shard).is_none()
                || self.pool.side_slot(op.gpu, op.model, op.stage).is_none())
        {
            bail!(
                "model {} stage {} rank {}: no side slot on GPU {} (not where the placement put it)",
                op.model,
                op.stage,
                op.shard,
                op.gpu
            );
        }
        if self.copies.insert(op.key, CopyState::Queued).is_some() {
            bail!("copy {} issued twice", op.key);
        }
        // A multi-path piece queues on its helper's link.
        let link = match op.via {
            Some(v) if (v.helper as usize) < self.copyq.len() => v.helper as usize,
            Some(v) => bail!("copy {} names helper GPU {}", op.key, v.helper),
            None => op.gpu,
        };
        self.copyq[link].push_back(PendingCopy {
            op,
            done_bytes: 0,
            start: None,
        });
        Ok(())
    }

    /// Queues a compute; it is issued by [`Executor::pump`] once every copy
    /// it waits for is issued and its input stage has been issued.
    pub fn compute(&mut self, op: ComputeOp) -> Result<()> {
        for (_, c) in &op.waits {
            if !self.copies.contains_key(c) {
                bail!(
                    "compute {} waits for copy {c}, which was never issued",
                    op.key
                );
            }
        }
        if op.gpus.is_empty() || op.gpus.iter().any(|&g| g >= self.inflight.len()) {
            bail!("compute {} names GPUs {:?}", op.key, op.gpus);
        }
        self.computeq.push_back(op);
        Ok(())
    }

    /// Frees a pool region (no data moves).
    pub fn evict(&mut self, gpu: usize, model: usize, offset: u64, bytes: u64) {
        self.pool.evict(gpu, model, offset, bytes);
    }

    /// Hand-overs between pipeline stages so far, by path.
    pub fn handoff_stats(&self) -> HandoffStats {
        self.hand.stats
    }

    /// Issues what can be issued: pinned copies whole, one chunk of a
    /// pageable copy per GPU, computes (in queue order; a compute that
    /// cannot go yet holds back later ones on its GPUs).
    pub fn pump(&mut self) -> Result<()> {
        for g in 0..self.copyq.len() {
            while let Some(front) = self.copyq[g].front_mut() {
                if front.op.via.is_some() {
                    let piece = self.copyq[g].pop_front().expect("front exists");
                    self.issue_piece(piece.op)?;
                    continue;
                }
                let op = &front.op;
                let shard = &self.shards[op.model];
                let (src_base, pool_base, total) = multipath::piece_span(shard, op);
                let host = &self.host.models[op.model];
                let src = host
                    .source(op.pinned, op.shard)
                    .expect("checked at queue time");
                let n = if op.pinned {
                    total - front.done_bytes
                } else {
                    (total - front.done_bytes).min(PAGEABLE_CHUNK)
                };
                if front.start.is_none() {
                    front.start = Some(self.dev.record(g, StreamKind::Copy)?);
                }
                if n > 0 {
                    let t = Instant::now();
                    self.dev.copy_h2d(
                        g,
                        src,
                        src_base + front.done_bytes,
                        pool_base + front.done_bytes,
                        n,
                    )?;
                    self.issue.copy(t.elapsed().as_secs_f64());
                }
                front.done_bytes += n;
                if front.done_bytes < total {
                    break;
                }
                let (soff, sbytes) = shard.side_range(op.layers.clone());
                // A group's side parts go with its first piece.
                if sbytes > 0 && op.part.is_none_or(|p| p.offset == 0) {
                    let img = host
                        .side(op.stage, op.shard)
                        .expect("checked at queue time");
                    let slot = self
                        .pool
                        .side_slot(g, op.model, op.stage)
                        .expect("checked at queue time");
                    self.dev.copy_h2d(g, img, soff, slot + soff, sbytes)?;
                }
                let key = op.key;
                let e = self.dev.record(g, StreamKind::Copy)?;
                self.copies.insert(key, CopyState::Issued(e));
                let start = front.start.take().expect("recorded before the first byte");
                self.issued_copies[g].push_back((key, start, e));
                self.copyq[g].pop_front();
            }
        }
        let mut held = vec![false; self.inflight.len()];
        let mut i = 0;
        while i < self.computeq.len() {
            let op = &self.computeq[i];
            let ready = op
                .gpus
                .iter()
                .all(|&g| !held[g] && self.inflight[g] < MAX_ISSUED_COMPUTES)
                && !op
                    .waits
                    .iter()
                    .any(|(_, c)| matches!(self.copies.get(c), Some(CopyState::Queued)))
                && self.hand.ready(op);
            if ready {
                let op = self.computeq.remove(i).unwrap();
                self.begin_compute(op)?;
            } else {
                for &g in &op.gpus {
                    held[g] = true;
                }
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.issuing.len() {
            if self.step_compute(i, LAYERS_PER_PUMP)? {
                let c = self.issuing.remove(i);
                self.finish_compute(c)?;
            } else {
                i += 1;
            }
        }
        self.pump_background()?;
        Ok(())
    }

    /// Completions seen since the last call (copies and computes, each
    /// GPU's in issue order).
    pub fn poll(&mut self) -> Result<Vec<Completion>> {
        let mut out = Vec::new();
        for g in 0..self.issued_copies.len() {
            while let Some(&(key, start, e)) = self.issued_copies[g].front() {
                if !self.dev.query(e)? {
                    break;
                }
                let at = Instant::now();
                let staged_s = match self.piece_legs.remove(&key) {
                    Some((a, b)) => {
                        let s = self.dev.elapsed_s(a, b)?.max(0.0);
                        self.dev.release(a);
                        self.dev.release(b);
                        Some(s)
                    }
                    None => None,
                };
                out.push(Completion::Copy {
                    key,
                    start: self.started(start, e, at)?,
                    at,
                    staged_s,
                });
                self.copies.insert(key, CopyState::Done);
                self.dev.release(start);
                self.dev.release(e);
                self.issued_copies[g].pop_front();
            }
        }
        self.poll_offloads(&mut out)?;
        let mut i = 0;
        while i < self.issued_computes.len() {
            let mut all = true;
            for &e in &self.issued_computes[i].done {
                if !self.dev.query(e)? {
                    all = false;
                    break;
                }
            }
            if !all {
                i += 1;
                continue;
            }
            let c = self.issued_computes.remove(i);
            let at = Instant::now();
            let start = self.started(c.start, c.done[0], at)?;
            out.push(Completion::Compute {
                key: c.key,
                start,
                at,
                host_s: c.host_s,
            });
            self.dev.release(c.start);
            for (&g, e) in c.gpus.iter().zip(c.done) {
                self.dev.release(e);
                self.inflight[g] -= 1;
            }
        }
        Ok(out)
    }

    /// When work between events `start` and `done` (one stream) began, in
    /// host time: `at` (when the host saw `done`) less the GPU time between
    /// the two. Short spans only, so the GPU clock's drift does not enter.
    fn started(&mut self, start: Event, done: Event, at: Instant) -> Result<Instant> {
        let ran = self.dev.elapsed_s(start, done)?.max(0.0);
        Ok(at.checked_sub(Duration::from_secs_f64(ran)).unwrap_or(at))
    }

    /// Whether anything is queued or in flight (background jobs aside).
    pub fn busy(&self) -> bool {
        self.copyq.iter().any(|q| !q.is_empty())
            || !self.computeq.is_empty()
            || !self.issuing.is_empty()
            || self.issued_copies.iter().any(|q| !q.is_empty())
            || self.issued_offloads.iter().any(|q| !q.is_empty())
            || !self.issued_computes.is_empty()
    }

    /// Pumps and polls until compute `key` is seen done (as replay's loop
    /// would see it); returns when, with everything else queued drained.
    pub fn wait_for_compute(&mut self, key: u64) -> Result<Instant> {
        loop {
            self.pump()?;
            for c in self.poll()? {
                if let Completion::Compute { key: k, at, .. } = c {
                    if k == key {
                        self.drain()?;
                        return Ok(at);
                    }
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Pumps and polls until everything queued has finished.
    pub fn drain(&mut self) -> Result<Vec<Completion>> {
        let mut all = Vec::new();
        while self.busy() {
            self.pump()?;
            all.extend(self.poll()?);
            std::hint::spin_loop();
        }
        Ok(all)
    }

    /// The output bytes of the last compute issued on `gpu` (valid once it is done).
    pub fn last_output(&self, gpu: usize, bytes: u64) -> Result<&[u8]> {
        let slot = (self.next_slot[gpu] + OUT_SLOTS - 1) % OUT_SLOTS;
        let off = slot as u64 * self.out_slot_bytes;
        if bytes > self.out_slot_bytes {
            return Err(anyhow!("output of {bytes} bytes is larger than a slot"));
        }
        Ok(&self.out[gpu].as_slice()[off as usize..(off + bytes) as usize])
    }

    /// Arena address of a resident layer (for checks).
    pub fn addr(&self, gpu: usize, model: usize, layer: usize) -> Option<DevPtr> {
        self.pool.addr(gpu, model, layer)
    }
}
