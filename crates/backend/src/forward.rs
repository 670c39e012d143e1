//! The forward pass, written once over [`Device`] for both devices.
//!
//! Transformers: embeddings (token + learned position (+ token type) rows,
//! BERT's embedding layer norm), blocks (fused QKV projection, per-head
//! scaled-dot-product attention as two batched GEMMs around a masked
//! softmax, output projection, MLP, layer norms pre- or post-residual) and the
//! head (LM logits of each request's last token through the tied token
//! embedding, or BERT's pooler). The output copied to the host is the last token's logits
//! (LM) or the pooled vector (BERT) of every request.
//!
//! GEMM-equivalent layers (convolutional and synthetic models): the layer's
//! weights, viewed as a `[k, n]` matrix ([`crate::model::generic_dims`]), multiply
//! an `[M, k]` activation block, repeated until the layer's work is done.
//! The work is the layer's FLOPs for the batch (convolutional) or, for
//! synthetic models, `layer_s * (1 + slope * (batch - 1))` seconds at the
//! device's measured GEMM rate, so their time tracks the workload's numbers.
//!
//! Every operation runs in the model's element type
//! ([`ModelLayout::dtype`]): weights and activations of fp16, bf16 or fp32,
//! f32 accumulation in the GEMMs and f32 arithmetic in the small kernels;
//! attention scores are f32 for every type.

mod block;
mod graph;
pub use graph::{GraphStats, Graphs, Issued, CAPTURE_AFTER, PLACEMENTS_PER_SHAPE};

use crate::device::HostBuffer;
use crate::device::{el_bytes, DevPtr, Device, Dtype, Event, Gemm, Mat, StreamKind, MAX_BATCH};
use crate::model::layout::{generic_dims, Kind, ModelLayout, TransformerCfg};
use crate::model::shard::ShardLayout;
use anyhow::{bail, Result};
use std::ops::Range;
use switchyard_core::model::Family;

const ALIGN: u64 = 256;
/// Largest activation block of a GEMM-equivalent layer (rows).
pub const GEN_M: usize = 1024;
/// Largest column chunk of a GEMM-equivalent layer.
pub const GEN_CHUNK: usize = 8192;
/// Output bytes per request of a GEMM-equivalent model.
pub const GEN_OUT_PER_REQUEST: u64 = 64;

/// Workspace addresses of a transformer batch.
#[derive(Debug, Clone, Copy)]
struct Plan {
    x: DevPtr,
    y: DevPtr,
    qkv: DevPtr,
    q: DevPtr,
    k: DevPtr,
    v: DevPtr,
    scores: DevPtr,
    probs: DevPtr,
    o: DevPtr,
    attn: DevPtr,
    mlp: DevPtr,
    out: DevPtr,
    end: DevPtr,
}

/// Workspace of a batch of `b` requests of `s` tokens at `base`, activations
/// of `el` bytes an element.
fn plan(cfg: &TransformerCfg, b: usize, s: usize, base: DevPtr, el: usize) -> Plan {
    let d = cfg.dims;
    let (h, f, heads, t) = (d.hidden, d.ffn, d.heads, (b * s) as u64);
    let el = el as u64;
    let mut at = base;
    let mut take = |bytes: u64| {
        let p = at;
        at += bytes.div_ceil(ALIGN) * ALIGN;
        p
    };
    let out_bytes = if cfg.lm_head {
        b as u64 * d.vocab * el
    } else {
        b as u64 * h * el
    };
    let p = Plan {
        x: take(t * h * el),
        y: take(t * h * el),
        qkv: take(3 * t * h * el),
        q: take(t * h * el),
        k: take(t * h * el),
        v: take(t * h * el),
        scores: take(b as u64 * heads * (s * s) as u64 * 4),
        probs: take(b as u64 * heads * (s * s) as u64 * el),
        o: take(t * h * el),
        attn: take(t * h * el),
        mlp: take(t * f * el),
        out: take(out_bytes),
        end: 0,
    };
    Plan { end: at, ..p }
}

/// Workspace bytes a model needs for a batch of `batch` requests.
pub fn workspace_bytes(layout: &ModelLayout, batch: usize) -> u64 {
    match layout.kind {
        Kind::Transformer(cfg) => {
            plan(
                &cfg,
                batch,
                layout.shape.items_per_request as usize,
                0,
                layout.el(),
            )
            .end
        }
        Kind::Generic => generic_ws(0, layout.el()).2 + GEN_OUT_PER_REQUEST * MAX_BATCH as u64,
    }
}

/// (input block, output chunk, end) of the GEMM-equivalent workspace of
/// elements of `el` bytes; a scratch region of one output chunk follows
/// (see [`gen_regions`]).
fn generic_ws(base: DevPtr, el: usize) -> (DevPtr, DevPtr, u64) {
    let inp = base;
    let out = inp + (GEN_M * 1024 * el) as u64;
    (inp, out, out + 2 * (GEN_CHUNK * GEN_M * el) as u64)
}

/// Input block, output chunk and scratch chunk (`GEN_CHUNK * GEN_M`
/// elements of `dtype` each) of the GEMM-equivalent workspace at `ws`.
pub fn gen_regions(ws: DevPtr, dtype: Dtype) -> (DevPtr, DevPtr, DevPtr) {
    let el = el_bytes(dtype);
    let (inp, out, _) = generic_ws(ws, el);
    (inp, out, out + (GEN_CHUNK * GEN_M * el) as u64)
}

/// Fills the GEMM-equivalent input block with seeded values (once, at
/// start), as fp16 values over the bytes of the widest element type in
/// `dtypes`. The block is filler whose values are never checked; the fp16
/// values of `[-1, 1]` it holds read as finite numbers in every type
/// (their high bytes never make a bf16 or fp32 infinity or NaN).
pub fn init_workspace(
    dev: &mut dyn Device,
    gpu: usize,
    ws: DevPtr,
    dtypes: &[Dtype],
) -> Result<()> {
    let el = dtypes
        .iter()
        .map(|&d| el_bytes(d))
        .max()
        .unwrap_or(2)
        .max(2);
    let n = GEN_M * 1024 * el / 2;
    Ok(dev.fill_random(gpu, generic_ws(ws, el).0, n, 0x5EED, 1.0, Dtype::Fp16)?)
}

/// Bytes of output a batch of `batch` requests copies to the host.
pub fn output_bytes(layout: &ModelLayout, batch: usize) -> u64 {
    let el = layout.el() as u64;
    match layout.kind {
        Kind::Transformer(cfg) if cfg.lm_head => batch as u64 * cfg.dims.vocab * el,
        Kind::Transformer(cfg) => batch as u64 * cfg.dims.hidden * el,
        Kind::Generic => batch as u64 * GEN_OUT_PER_REQUEST,
    }
}

/// One compute: a batch through a range of layers on a tensor-parallel
/// group of GPUs (one GPU when `tp = 1`), in lockstep layer by layer.
pub struct Run<'a> {
    /// GPUs of the group, rank order; their compute streams run it.
    pub gpus: &'a [usize],
    /// The model.
    pub layout: &'a ModelLayout,
    /// How it is split over ranks and stages.
    pub shard: &'a ShardLayout,
    /// Layers to run, in order.
    pub layers: Range<usize>,
    /// Arena address of layer `l`'s main part on rank `r`: `addr(r, l)`
    /// (`None`: not resident).
    pub addr: &'a dyn Fn(usize, usize) -> Option<DevPtr>,
    /// Arena address of layer `l`'s side part on rank `r`: `side(r, l)`.
    pub side: &'a dyn Fn(usize, usize) -> Option<DevPtr>,
    /// Request ids of the batch.
    pub requests: &'a [u64],
    /// Workspace base (the same on every GPU).
    pub ws: DevPtr,
    /// Copies to wait for (every rank waits): before the first layer of each range runs.
    pub waits: &'a [(Range<usize>, Event)],
    /// Where rank 0's output goes when the range ends the model.
    pub out: Option<(&'a HostBuffer, u64)>,
    /// Measured GEMM rate of the device for the model's element type,
    /// FLOP/s (sizes synthetic work).
    pub gemm_rate: f64,
    /// Synthetic models: batch `n` takes `1 + slope * (n - 1)` times batch 1.
    pub synthetic_slope: f64,
}

/// `addr` of a whole model at arena offset `base` on one GPU (tp = 1, one
/// stage): layer `l` at `base + layer_offsets[l]`.
pub fn whole_at(layout: &ModelLayout, base: DevPtr) -> impl Fn(usize, usize) -> Option<DevPtr> {
    let offsets = layout.layer_offsets.clone();
    move |_, l| Some(base + offsets[l])
}

/// `side` of a model with no side parts (tp = 1, one stage).
pub fn no_side(_rank: usize, _layer: usize) -> Option<DevPtr> {
    None
}

/// Issues the compute on the group's compute streams; returns the event
/// marking its start on rank 0 (after the waits of its first layer).
pub fn run(dev: &mut dyn Device, r: &Run) -> Result<Event> {
    let mut pass = Pass::new(r)?;
    pass.step(dev, r, usize::MAX)?;
    pass.finish(dev, r)
}

/// A compute issued a few layers at a time, so the host can do other work
/// (dispatch arrivals, issue copies, see completions) between layers.
///
/// Each call may pass a [`Run`] with different `waits`: a copy the host has
/// already seen done may be left out (its bytes are on the GPU), but every
/// copy not yet seen done must be there. Waits apply just before the first
/// layer of their range (waits of ranges before the first layer, before it;
/// of ranges after the last layer, at [`Pass::finish`]).
#[derive(Debug, Default)]
pub struct Pass {
    next: usize,
    start: Option<Event>,
}

impl Pass {
    /// Checks the batch and the group; nothing is issued yet.
    pub fn new(r: &Run) -> Result<Pass> {
        let b = r.requests.len();
        if b == 0 || b > MAX_BATCH {
            bail!("a batch holds 1 to {MAX_BATCH} requests, not {b}");
        }
        if r.gpus.len() != r.shard.tp {
            bail!(
                "{}: a group of {} GPUs runs a model split {} ways",
                r.layout.shape.arch,
                r.gpus.len(),
                r.shard.tp
            );
        }
        Ok(Pass {
            next: r.layers.start,
            start: None,
        })
    }

    /// The next layer to issue.
    pub fn next_layer(&self) -> usize {
        self.next
    }

    /// Whether every layer has been issued (then [`Pass::finish`]).
    pub fn issued_all(&self, r: &Run) -> bool {
        self.next >= r.layers.end
    }

    /// Issues up to `max_layers` more layers.
    pub fn step(&mut self, dev: &mut dyn Device, r: &Run, max_layers: usize) -> Result<()> {
        let end = r.layers.end.min(self.next.saturating_add(max_layers));
        while self.next < end {
            let l = self.next;
            let first = l == r.layers.start;
            for w in r.waits {
                if w.0.start == l || (first && w.0.start < l) {
                    for &g in r.gpus {
                        dev.wait(g, StreamKind::Compute, w.1)?;
                    }
                }
            }
            if self.start.is_none() {
                self.start = Some(dev.record(r.gpus[0], StreamKind::Compute)?);
            }
            for (rank, &g) in r.gpus.iter().enumerate() {
                if (r.addr)(rank, l).is_none() {
                    bail!(
                        "{}: layer {l} is not resident on GPU {g} when its compute is issued",
                        r.layout.shape.arch
                    );
                }
            }
            match r.layout.kind {
                Kind::Transformer(cfg) => block::layer(dev, r, &cfg, l)?,
                Kind::Generic => generic_layer(dev, r, l)?,
            }
            self.next += 1;
        }
        Ok(())
    }

    /// After the last layer: waits of later ranges, the output copied to
    /// the host when the range ends the model. Returns the event marking
    /// the start on rank 0.
    pub fn finish(self, dev: &mut dyn Device, r: &Run) -> Result<Event> {
        if !self.issued_all(r) {
            bail!(
                "{}: pass finished at layer {} of {:?}",
                r.layout.shape.arch,
                self.next,
                r.layers
            );
        }
        for w in r.waits {
            if w.0.start >= r.layers.end || r.layers.is_empty() {
                for &g in r.gpus {
                    dev.wait(g, StreamKind::Compute, w.1)?;
                }
            }
        }
        if r.layers.end == r.layout.layers() {
            if let Some((buf, off)) = r.out {
                copy_output(dev, r, buf, off)?;
            }
        }
        match self.start {
            Some(s) => Ok(s),
            None => Ok(dev.record(r.gpus[0], StreamKind::Compute)?),
        }
    }
}

/// Arena address of the tensor of layer `l` named `suffix` on rank `rank`.
fn tensor(r: &Run, rank: usize, l: usize, suffix: &str) -> Result<DevPtr> {
    let Some(p) = r.shard.find(r.layout, l, suffix) else {
        bail!(
            "{}: layer {l} has no tensor `{suffix}`",
            r.layout.shape.arch
        );
    };
    let base = if p.side {
        (r.side)(rank, l)
    } else {
        (r.addr)(rank, l)
    };
    match base {
        Some(b) => Ok(b + p.offset),
        None => bail!(
            "{}: tensor `{suffix}` of layer {l} is not on GPU {}",
            r.layout.shape.arch,
            r.gpus[rank]
        ),
    }
}

/// Where a batch's activations sit after a stage (the hand-over to the
/// next stage): `(address, bytes)` in the workspace at `ws`.
pub fn hidden(layout: &ModelLayout, batch: usize, ws: DevPtr) -> (DevPtr, u64) {
    match layout.kind {
        Kind::Transformer(cfg) => {
            let s = layout.shape.items_per_request as usize;
            let el = layout.el();
            let p = plan(&cfg, batch, s, ws, el);
            (p.x, (batch * s * el) as u64 * cfg.dims.hidden)
        }
        Kind::Generic => (generic_ws(ws, layout.el()).1, output_bytes(layout, batch)),
    }
}

/// FLOPs of GEMM-equivalent layer `l` for a batch of `b` (the whole layer,
/// all ranks together).
fn generic_flops(r: &Run, l: usize, b: usize) -> f64 {
    let shape = &r.layout.shape;
    match shape.family {
        Family::Synthetic { layer_s } => {
            layer_s * (1.0 + r.synthetic_slope * (b as f64 - 1.0)) * r.gemm_rate
        }
        _ => shape.layers[l].flops_per_item * (shape.items_per_request * b as u64) as f64,
    }
}

/// A GEMM-equivalent layer: each rank multiplies by its byte slice of the
/// weights (`1 / tp` of the work); with `tp > 1` the ranks' last output
/// chunks are all-reduced, as a row-parallel layer would be.
fn generic_layer(dev: &mut dyn Device, r: &Run, l: usize) -> Result<()> {
    let tp = r.gpus.len();
    let (dt, el) = (r.layout.dtype, r.layout.el());
    let (k, n) = generic_dims(r.shard.main_range(l..l + 1).1, dt);
    if n == 0 {
        return Ok(());
    }
    let (inp, out, _) = generic_ws(r.ws, el);
    let flops = generic_flops(r, l, r.requests.len()) / tp as f64;
    let per_row = 2.0 * (k * n) as f64;
    let m = (flops / per_row).round().clamp(1.0, GEN_M as f64) as usize;
    let passes = (flops / (per_row * m as f64)).round().max(1.0) as usize;
    let mut last = 0;
    for (rank, &g) in r.gpus.iter().enumerate() {
        let w = (r.addr)(rank, l).expect("checked by run");
        for _ in 0..passes {
            let mut c0 = 0;
            while c0 < n {
                let cw = (n - c0).min(GEN_CHUNK);
                dev.gemm(
                    g,
                    &Gemm::plain(
                        cw,
                        m,
                        k,
                        Mat::n(w + (c0 * el) as u64, n),
                        Mat::n(inp, k),
                        Mat::n(out, cw),
                    )
                    .typed(dt),
                )?;
                last = cw;
                c0 += cw;
            }
        }
    }
    if tp > 1 {
        dev.all_reduce(r.gpus, &vec![out; tp], m * last, dt)?;
    }
    Ok(())
}

fn copy_output(dev: &mut dyn Device, r: &Run, buf: &HostBuffer, off: u64) -> Result<()> {
    let b = r.requests.len();
    let g = r.gpus[0];
    match r.layout.kind {
        Kind::Transformer(cfg) => {
            let s = r.layout.shape.items_per_request as usize;
            let p = plan(&cfg, b, s, r.ws, r.layout.el());
            Ok(dev.copy_d2h(g, p.out, buf, off, output_bytes(r.layout, b))?)
        }
        Kind::Generic => {
            let (_, out, _) = generic_ws(r.ws, r.layout.el());
            Ok(dev.copy_d2h(g, out, buf, off, output_bytes(r.layout, b))?)
        }
    }
}
