//! Building an executor: sizing each GPU's arena (pool, workspace, side
//! slots of replicated tensors, pipeline outboxes), the output buffers, and
//! the GEMM rate that sizes GEMM-equivalent layers. Start-up only.

use super::{handoff, Executor, OUTBOX_SLOTS, OUT_SLOTS};
use crate::device::{gemm_rate_of, Device, Dtype, Gemm, Mat};
use crate::forward;
use crate::host_store::HostStore;
use crate::model::shard::ShardLayout;
use crate::model::ModelLayout;
use crate::pool::Pool;
use anyhow::{bail, Result};
use std::collections::{HashMap, VecDeque};

/// How an executor's models are split over GPUs.
#[derive(Debug, Clone)]
pub struct Split {
    /// Model `m`'s shard layout.
    pub shards: Vec<ShardLayout>,
    /// Model `m`'s GPUs (`[stage * tp + rank]`, the scheduler's placement),
    /// which get side slots for its replicated tensors.
    pub homes: Vec<Vec<usize>>,
}

impl Executor {
    /// Allocates each GPU's arena (pool of `pool_bytes` plus the workspace
    /// the models need at `max_batch[i]`) and the output buffers, measures
    /// the GEMM rate and starts the clock. Every model runs whole (tp = 1,
    /// one stage).
    pub fn new(
        dev: Box<dyn Device>,
        host: HostStore,
        layouts: Vec<ModelLayout>,
        max_batch: &[usize],
        pool_bytes: u64,
        synthetic_slope: f64,
    ) -> Result<Executor> {
        let split = Split {
            shards: layouts.iter().map(ShardLayout::single).collect(),
            homes: vec![Vec::new(); layouts.len()],
        };
        Executor::with_shards(
            dev,
            host,
            layouts,
            split,
            max_batch,
            pool_bytes,
            synthetic_slope,
        )
    }

    /// Like [`Executor::new`] for models split as `split` says.
    pub fn with_shards(
        mut dev: Box<dyn Device>,
        host: HostStore,
        layouts: Vec<ModelLayout>,
        split: Split,
        max_batch: &[usize],
        pool_bytes: u64,
        synthetic_slope: f64,
    ) -> Result<Executor> {
        let Split { shards, homes } = split;
        let gpus = dev.gpus();
        let dtypes = model_dtypes(&layouts);
        // The GEMM-rate probe's regions, of every element type in use.
        let mut probes = Vec::new();
        for &d in &dtypes {
            let shape = switchyard_core::model::ModelShape::synthetic("w", 1, 2, 0.0);
            probes.push(forward::workspace_bytes(
                &ModelLayout::typed(&shape.with_dtype(d), d)?,
                1,
            ));
        }
        let ws = layouts
            .iter()
            .zip(max_batch)
            .map(|(l, &b)| forward::workspace_bytes(l, b))
            .chain(probes)
            .max()
            .unwrap_or(0);
        let mut side = vec![Vec::new(); gpus];
        let mut staged = false;
        for (m, (shard, home)) in shards.iter().zip(homes).enumerate() {
            staged |= shard.stages.len() > 1;
            for s in 0..shard.stages.len() {
                for r in 0..shard.tp {
                    if let Some(&g) = home.get(s * shard.tp + r) {
                        if g >= gpus {
                            bail!("model {m} is placed on GPU {g}, but the device has {gpus}");
                        }
                        side[g].push((m, s, shard.stage_side_bytes(s)));
                    }
                }
            }
        }
        let outbox_slot = if staged {
            layouts
                .iter()
                .zip(max_batch)
                .map(|(l, &b)| forward::hidden(l, b, 0).1)
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        let slots = if staged { OUTBOX_SLOTS } else { 0 };
        let pool = Pool::with_areas(gpus, pool_bytes, ws, outbox_slot, slots, &side);
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
            forward::init_workspace(dev.as_mut(), g, pool.ws_base, &dtypes)?;
        }
        let hand = handoff::Handoff::new(dev.as_mut(), staged, pool.outbox_slot)?;
        let mut ex = Executor {
            dev,
            host,
            layouts,
            shards,
            pool,
            gemm_rate: 0.0,
            gemm_rates: Vec::new(),
            synthetic_slope,
            issue: super::IssueStats::default(),
            host_cpus: None,
            idle: Default::default(),
            graphs: Default::default(),
            background: Default::default(),
            copyq: (0..gpus).map(|_| VecDeque::new()).collect(),
            computeq: VecDeque::new(),
            copies: HashMap::new(),
            issued_copies: (0..gpus).map(|_| VecDeque::new()).collect(),
            issuing: Vec::new(),
            issued_computes: Vec::new(),
            inflight: vec![0; gpus],
            hand,
            out,
            out_slot_bytes,
            out_busy: vec![vec![None; OUT_SLOTS]; gpus],
            next_slot: vec![0; gpus],
            staged: vec![Vec::new(); gpus],
            piece_legs: HashMap::new(),
            issued_offloads: (0..gpus).map(|_| VecDeque::new()).collect(),
        };
        ex.gemm_rate = ex.measure_gemm_rate(Dtype::Fp16)?;
        for d in dtypes.into_iter().filter(|&d| d != Dtype::Fp16) {
            let rate = ex.measure_gemm_rate(d)?;
            ex.gemm_rates.push((d, rate));
        }
        Ok(ex)
    }

    /// The measured GEMM rate of elements of `dtype`, FLOP/s (the fp16
    /// rate for a type not measured).
    pub fn gemm_rate_for(&self, dtype: Dtype) -> f64 {
        self.gemm_rates
            .iter()
            .find(|(d, _)| *d == dtype)
            .map_or(self.gemm_rate, |(_, r)| *r)
    }

    /// Achieved rate of the GEMM shape GEMM-equivalent layers use, over
    /// elements of `dtype`, FLOP/s.
    fn measure_gemm_rate(&mut self, dtype: Dtype) -> Result<f64> {
        let ws = self.pool.ws_base;
        let (m, n, k) = if self.dev.kind() == "cuda" {
            (forward::GEN_CHUNK, forward::GEN_M, 1024)
        } else {
            (256, 32, 1024)
        };
        // Weights: the output chunk region filled as a random `[k, m]` matrix.
        let (inp, w, scratch) = forward::gen_regions(ws, dtype);
        self.dev.fill_random(0, w, m * k, 0xC0FFEE, 0.03, dtype)?;
        let g = Gemm::plain(m, n, k, Mat::n(w, m), Mat::n(inp, k), Mat::n(scratch, m)).typed(dtype);
        let reps = if self.dev.kind() == "cuda" { 20 } else { 2 };
        Ok(gemm_rate_of(self.dev.as_mut(), 0, &g, reps)?)
    }
}

/// The element types of `layouts`, fp16 first and always present.
fn model_dtypes(layouts: &[ModelLayout]) -> Vec<Dtype> {
    Dtype::ALL
        .into_iter()
        .filter(|&d| d == Dtype::Fp16 || layouts.iter().any(|l| l.dtype == d))
        .collect()
}
