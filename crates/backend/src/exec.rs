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

use crate::device::{DevPtr, Device, Event, Gemm, StreamKind};
use crate::host_store::{HostBuffer, HostStore};
use crate::model::{forward, ModelLayout};
use crate::pool::Pool;
use anyhow::{anyhow, bail, Result};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Bytes of one pageable copy chunk.
pub const PAGEABLE_CHUNK: u64 = 32 << 20;
/// Computes issued to one GPU's stream and not yet seen done. More wait in
/// the executor's queue: a compute stalled on its copies holds hundreds of
/// launches, and a full launch queue would block the host (and dispatch).
/// Copies are not limited, so loads still overlap the running compute.
pub const MAX_ISSUED_COMPUTES: usize = 1;
const OUT_SLOTS: usize = 128;

/// A host-to-device copy of a model's layers into the pool.
#[derive(Debug, Clone)]
pub struct CopyOp {
    /// Caller's id of the copy.
    pub key: u64,
    /// Target GPU.
    pub gpu: usize,
    /// Model index.
    pub model: usize,
    /// Layers copied (contiguous in the model's host buffer).
    pub layers: Range<usize>,
    /// Pool offset they land at.
    pub pool_offset: u64,
    /// From pinned memory (else pageable).
    pub pinned: bool,
}

/// A batch through a range of a model's layers on one GPU.
#[derive(Debug, Clone)]
pub struct ComputeOp {
    /// Caller's id of the compute.
    pub key: u64,
    /// GPU.
    pub gpu: usize,
    /// Model index.
    pub model: usize,
    /// Layers to run.
    pub layers: Range<usize>,
    /// Request ids of the batch.
    pub requests: Vec<u64>,
    /// Layer groups whose copies (by key) must be done before the group runs.
    pub waits: Vec<(Range<usize>, u64)>,
}

/// Something that finished, with the host instant it was seen done.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// A copy's bytes are on the GPU.
    Copy {
        /// Its key.
        key: u64,
        /// When the host saw it done.
        at: Instant,
    },
    /// A compute finished (and its output, if any, is on the host).
    Compute {
        /// Its key.
        key: u64,
        /// When its first layer started on the GPU (GPU clock mapped to host time).
        start: Instant,
        /// When the host saw it done.
        at: Instant,
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
}

struct IssuedCompute {
    key: u64,
    start: Event,
    done: Event,
}

/// Carries out copies and computes on a device.
pub struct Executor {
    /// The device.
    pub dev: Box<dyn Device>,
    /// Every model's weights in host memory.
    pub host: HostStore,
    /// Every model's layout.
    pub layouts: Vec<ModelLayout>,
    /// Where layers sit in each GPU's pool.
    pub pool: Pool,
    /// Measured GEMM rate (sizes synthetic layers), FLOP/s.
    pub gemm_rate: f64,
    /// Synthetic batch slope of the hardware profile.
    pub synthetic_slope: f64,
    copyq: Vec<VecDeque<PendingCopy>>,
    computeq: Vec<VecDeque<ComputeOp>>,
    copies: HashMap<u64, CopyState>,
    issued_copies: Vec<VecDeque<(u64, Event)>>,
    issued_computes: Vec<VecDeque<IssuedCompute>>,
    out: Vec<HostBuffer>,
    out_slot_bytes: u64,
    out_busy: Vec<Vec<Option<u64>>>,
    next_slot: Vec<usize>,
    clock: Vec<(Event, Instant)>,
}

impl Executor {
    /// Allocates each GPU's arena (pool of `pool_bytes` plus the workspace
    /// the models need at `max_batch[i]`) and the output buffers, measures
    /// the GEMM rate and starts the clock.
    pub fn new(
        mut dev: Box<dyn Device>,
        host: HostStore,
        layouts: Vec<ModelLayout>,
        max_batch: &[usize],
        pool_bytes: u64,
        synthetic_slope: f64,
    ) -> Result<Executor> {
        let gpus = dev.gpus();
        let ws = layouts
            .iter()
            .zip(max_batch)
            .map(|(l, &b)| forward::workspace_bytes(l, b))
            .chain([forward::workspace_bytes(
                &ModelLayout::new(&switchyard_core::model::ModelShape::synthetic(
                    "w", 1, 2, 0.0,
                ))?,
                1,
            )])
            .max()
            .unwrap_or(0);
        let pool = Pool::new(gpus, pool_bytes, ws);
        dev.init_arena(pool.arena_bytes())?;
        let out_slot_bytes = layouts
            .iter()
            .zip(max_batch)
            .map(|(l, &b)| forward::output_bytes(l, b))
            .max()
            .unwrap_or(0)
            .max(1);
        let mut out = Vec::new();
        for g in 0..gpus {
            out.push(dev.alloc_host(out_slot_bytes * OUT_SLOTS as u64, true)?);
            forward::init_workspace(dev.as_mut(), g, pool.ws_base)?;
        }
        let mut ex = Executor {
            dev,
            host,
            layouts,
            pool,
            gemm_rate: 0.0,
            synthetic_slope,
            copyq: (0..gpus).map(|_| VecDeque::new()).collect(),
            computeq: (0..gpus).map(|_| VecDeque::new()).collect(),
            copies: HashMap::new(),
            issued_copies: (0..gpus).map(|_| VecDeque::new()).collect(),
            issued_computes: (0..gpus).map(|_| VecDeque::new()).collect(),
            out,
            out_slot_bytes,
            out_busy: vec![vec![None; OUT_SLOTS]; gpus],
            next_slot: vec![0; gpus],
            clock: Vec::new(),
        };
        ex.gemm_rate = ex.measure_gemm_rate()?;
        ex.start_clock()?;
        Ok(ex)
    }

    /// Achieved rate of the GEMM shape GEMM-equivalent layers use, FLOP/s.
    fn measure_gemm_rate(&mut self) -> Result<f64> {
        let ws = self.pool.ws_base;
        let (m, n, k) = if self.dev.kind() == "cuda" {
            (forward::GEN_CHUNK, forward::GEN_M, 1024)
        } else {
            (256, 32, 1024)
        };
        // Weights: the output chunk region filled as a random `[k, m]` matrix.
        let (inp, w, scratch) = forward::gen_regions(ws);
        self.dev.fill_random(0, w, m * k, 0xC0FFEE, 0.03)?;
        let g = Gemm::plain(false, false, m, n, k, w, m, inp, k, scratch, m);
        let reps = if self.dev.kind() == "cuda" { 20 } else { 2 };
        self.dev.gemm(0, &g)?;
        let a = self.dev.record(0, StreamKind::Compute)?;
        for _ in 0..reps {
            self.dev.gemm(0, &g)?;
        }
        let b = self.dev.record(0, StreamKind::Compute)?;
        self.dev.synchronize(b)?;
        let s = self.dev.elapsed_s(a, b)?.max(1e-9);
        self.dev.release(a);
        self.dev.release(b);
        Ok(g.flops() * reps as f64 / s)
    }

    /// Records a reference event on every GPU and ties it to the host clock.
    pub fn start_clock(&mut self) -> Result<()> {
        for (e, _) in std::mem::take(&mut self.clock) {
            self.dev.release(e);
        }
        for g in 0..self.dev.gpus() {
            let e = self.dev.record(g, StreamKind::Compute)?;
            self.dev.synchronize(e)?;
            self.clock.push((e, Instant::now()));
        }
        Ok(())
    }

    /// Queues a copy; it is issued by [`Executor::pump`].
    pub fn copy(&mut self, op: CopyOp) -> Result<()> {
        let layout = &self.layouts[op.model];
        self.pool
            .place(op.gpu, op.model, layout, op.layers.clone(), op.pool_offset)?;
        if self.host.models[op.model].source(op.pinned).is_none() {
            bail!(
                "model {} has no {} host copy",
                op.model,
                if op.pinned { "pinned" } else { "pageable" }
            );
        }
        if self.copies.insert(op.key, CopyState::Queued).is_some() {
            bail!("copy {} issued twice", op.key);
        }
        self.copyq[op.gpu].push_back(PendingCopy { op, done_bytes: 0 });
        Ok(())
    }

    /// Queues a compute; it is issued by [`Executor::pump`] once every copy it waits for is issued.
    pub fn compute(&mut self, op: ComputeOp) -> Result<()> {
        for (_, c) in &op.waits {
            if !self.copies.contains_key(c) {
                bail!(
                    "compute {} waits for copy {c}, which was never issued",
                    op.key
                );
            }
        }
        self.computeq[op.gpu].push_back(op);
        Ok(())
    }

    /// Frees a pool region (no data moves).
    pub fn evict(&mut self, gpu: usize, model: usize, offset: u64, bytes: u64) {
        self.pool.evict(gpu, model, offset, bytes);
    }

    /// Issues what can be issued: pinned copies whole, one chunk of a
    /// pageable copy per GPU, computes whose copies are issued.
    pub fn pump(&mut self) -> Result<()> {
        for g in 0..self.copyq.len() {
            while let Some(front) = self.copyq[g].front_mut() {
                let op = &front.op;
                let total = self.layouts[op.model].range_bytes(op.layers.clone());
                let src_base = self.layouts[op.model].layer_offsets[op.layers.start];
                let src = self.host.models[op.model]
                    .source(op.pinned)
                    .expect("checked at queue time");
                let n = if op.pinned {
                    total - front.done_bytes
                } else {
                    (total - front.done_bytes).min(PAGEABLE_CHUNK)
                };
                if n > 0 {
                    self.dev.copy_h2d(
                        g,
                        src,
                        src_base + front.done_bytes,
                        op.pool_offset + front.done_bytes,
                        n,
                    )?;
                }
                front.done_bytes += n;
                if front.done_bytes < total {
                    break;
                }
                let key = op.key;
                let e = self.dev.record(g, StreamKind::Copy)?;
                self.copies.insert(key, CopyState::Issued(e));
                self.issued_copies[g].push_back((key, e));
                self.copyq[g].pop_front();
            }
        }
        for g in 0..self.computeq.len() {
            while let Some(op) = self.computeq[g].front() {
                if self.issued_computes[g].len() >= MAX_ISSUED_COMPUTES {
                    break;
                }
                if op
                    .waits
                    .iter()
                    .any(|(_, c)| matches!(self.copies.get(c), Some(CopyState::Queued)))
                {
                    break;
                }
                let op = self.computeq[g].pop_front().unwrap();
                self.issue_compute(op)?;
            }
        }
        Ok(())
    }

    fn issue_compute(&mut self, op: ComputeOp) -> Result<()> {
        let g = op.gpu;
        let mut waits = Vec::new();
        for (r, c) in &op.waits {
            if let Some(CopyState::Issued(e)) = self.copies.get(c) {
                waits.push((r.clone(), *e));
            }
        }
        let slot = self.next_slot[g];
        self.next_slot[g] = (slot + 1) % OUT_SLOTS;
        if let Some(k) = self.out_busy[g][slot].take() {
            if let Some(c) = self.issued_computes[g].iter().find(|c| c.key == k) {
                self.dev.synchronize(c.done)?;
            }
        }
        self.out_busy[g][slot] = Some(op.key);
        let pool = &self.pool;
        let addr = |l: usize| pool.addr(g, op.model, l);
        let start = forward::run(
            self.dev.as_mut(),
            &forward::Run {
                gpu: g,
                layout: &self.layouts[op.model],
                layers: op.layers.clone(),
                addr: &addr,
                requests: &op.requests,
                ws: pool.ws_base,
                waits: &waits,
                out: Some((&self.out[g], slot as u64 * self.out_slot_bytes)),
                gemm_rate: self.gemm_rate,
                synthetic_slope: self.synthetic_slope,
            },
        )?;
        let done = self.dev.record(g, StreamKind::Compute)?;
        self.issued_computes[g].push_back(IssuedCompute {
            key: op.key,
            start,
            done,
        });
        Ok(())
    }

    /// Completions seen since the last call (copies and computes, each
    /// GPU's in issue order).
    pub fn poll(&mut self) -> Result<Vec<Completion>> {
        let mut out = Vec::new();
        for g in 0..self.issued_copies.len() {
            while let Some(&(key, e)) = self.issued_copies[g].front() {
                if !self.dev.query(e)? {
                    break;
                }
                out.push(Completion::Copy {
                    key,
                    at: Instant::now(),
                });
                self.copies.insert(key, CopyState::Done);
                self.dev.release(e);
                self.issued_copies[g].pop_front();
            }
            while let Some(c) = self.issued_computes[g].front() {
                if !self.dev.query(c.done)? {
                    break;
                }
                let at = Instant::now();
                let (ref_e, ref_t) = self.clock[g];
                let since = self.dev.elapsed_s(ref_e, c.start)?;
                let start = ref_t + Duration::from_secs_f64(since.max(0.0));
                out.push(Completion::Compute {
                    key: c.key,
                    start: start.min(at),
                    at,
                });
                let c = self.issued_computes[g].pop_front().unwrap();
                self.dev.release(c.start);
                self.dev.release(c.done);
            }
        }
        Ok(out)
    }

    /// Whether anything is queued or in flight.
    pub fn busy(&self) -> bool {
        self.copyq.iter().any(|q| !q.is_empty())
            || self.computeq.iter().any(|q| !q.is_empty())
            || self.issued_copies.iter().any(|q| !q.is_empty())
            || self.issued_computes.iter().any(|q| !q.is_empty())
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
