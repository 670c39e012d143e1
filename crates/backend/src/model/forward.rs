//! The forward pass, written once over [`Device`] for both devices.
//!
//! Transformers: embeddings (token + learned position (+ token type) rows,
//! BERT's embedding layer norm), blocks (fused QKV projection, per-head
//! scaled-dot-product attention as two batched GEMMs around a masked
//! softmax, output projection, MLP, layer norms pre- or post-residual) and the
//! head (LM logits over every token through the tied token embedding, or
//! BERT's pooler). The output copied to the host is the last token's logits
//! (LM) or the pooled vector (BERT) of every request.
//!
//! GEMM-equivalent layers (convolutional and synthetic models): the layer's
//! weights, viewed as a `[k, n]` matrix ([`super::generic_dims`]), multiply
//! an `[M, k]` activation block, repeated until the layer's work is done.
//! The work is the layer's FLOPs for the batch (convolutional) or, for
//! synthetic models, `layer_s * (1 + slope * (batch - 1))` seconds at the
//! device's measured GEMM rate, so their time tracks the workload's numbers.

use super::{generic_dims, Kind, ModelLayout, TransformerCfg};
use crate::device::{Act, DevPtr, Device, Embed, Event, Gemm, StreamKind, MAX_BATCH};
use crate::host_store::HostBuffer;
use anyhow::{bail, Result};
use std::ops::Range;
use switchyard_core::model::{Family, LayerKind};

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

fn plan(cfg: &TransformerCfg, b: usize, s: usize, base: DevPtr) -> Plan {
    let d = cfg.dims;
    let (h, f, heads, t) = (d.hidden, d.ffn, d.heads, (b * s) as u64);
    let mut at = base;
    let mut take = |bytes: u64| {
        let p = at;
        at += bytes.div_ceil(ALIGN) * ALIGN;
        p
    };
    let out_bytes = if cfg.lm_head {
        t * d.vocab * 2
    } else {
        b as u64 * h * 2
    };
    let p = Plan {
        x: take(t * h * 2),
        y: take(t * h * 2),
        qkv: take(3 * t * h * 2),
        q: take(t * h * 2),
        k: take(t * h * 2),
        v: take(t * h * 2),
        scores: take(b as u64 * heads * (s * s) as u64 * 4),
        probs: take(b as u64 * heads * (s * s) as u64 * 2),
        o: take(t * h * 2),
        attn: take(t * h * 2),
        mlp: take(t * f * 2),
        out: take(out_bytes),
        end: 0,
    };
    Plan { end: at, ..p }
}

/// Workspace bytes a model needs for a batch of `batch` requests.
pub fn workspace_bytes(layout: &ModelLayout, batch: usize) -> u64 {
    match layout.kind {
        Kind::Transformer(cfg) => plan(&cfg, batch, layout.shape.items_per_request as usize, 0).end,
        Kind::Generic => generic_ws(0).2 + GEN_OUT_PER_REQUEST * MAX_BATCH as u64,
    }
}

/// (input block, output chunk, end) of the GEMM-equivalent workspace; a
/// scratch region of one output chunk follows (see [`scratch`]).
fn generic_ws(base: DevPtr) -> (DevPtr, DevPtr, u64) {
    let inp = base;
    let out = inp + (GEN_M * 1024 * 2) as u64;
    (inp, out, out + 2 * (GEN_CHUNK * GEN_M * 2) as u64)
}

/// Input block, output chunk and scratch chunk (`GEN_CHUNK * GEN_M` fp16
/// each) of the GEMM-equivalent workspace at `ws`.
pub fn gen_regions(ws: DevPtr) -> (DevPtr, DevPtr, DevPtr) {
    let (inp, out, _) = generic_ws(ws);
    (inp, out, out + (GEN_CHUNK * GEN_M * 2) as u64)
}

/// Fills the GEMM-equivalent input block with seeded values (once, at start).
pub fn init_workspace(dev: &mut dyn Device, gpu: usize, ws: DevPtr) -> Result<()> {
    dev.fill_random(gpu, generic_ws(ws).0, GEN_M * 1024, 0x5EED, 1.0)
}

/// Bytes of output a batch of `batch` requests copies to the host.
pub fn output_bytes(layout: &ModelLayout, batch: usize) -> u64 {
    match layout.kind {
        Kind::Transformer(cfg) if cfg.lm_head => batch as u64 * cfg.dims.vocab * 2,
        Kind::Transformer(cfg) => batch as u64 * cfg.dims.hidden * 2,
        Kind::Generic => batch as u64 * GEN_OUT_PER_REQUEST,
    }
}

/// One compute: a batch through a range of layers on one GPU.
pub struct Run<'a> {
    /// GPU whose compute stream runs it.
    pub gpu: usize,
    /// The model.
    pub layout: &'a ModelLayout,
    /// Layers to run, in order.
    pub layers: Range<usize>,
    /// Arena address of each layer's weights on this GPU (`None`: not resident).
    pub addr: &'a dyn Fn(usize) -> Option<DevPtr>,
    /// Request ids of the batch.
    pub requests: &'a [u64],
    /// Workspace base on this GPU.
    pub ws: DevPtr,
    /// Copies to wait for: before the first layer of each range runs.
    pub waits: &'a [(Range<usize>, Event)],
    /// Where the output goes when the range ends the model.
    pub out: Option<(&'a HostBuffer, u64)>,
    /// Measured GEMM rate of the device, FLOP/s (sizes synthetic work).
    pub gemm_rate: f64,
    /// Synthetic models: batch `n` takes `1 + slope * (n - 1)` times batch 1.
    pub synthetic_slope: f64,
}

/// Issues the compute on the GPU's compute stream; returns the event marking
/// its start (after the waits of its first layer).
pub fn run(dev: &mut dyn Device, r: &Run) -> Result<Event> {
    let b = r.requests.len();
    if b == 0 || b > MAX_BATCH {
        bail!("a batch holds 1 to {MAX_BATCH} requests, not {b}");
    }
    let mut waits: Vec<&(Range<usize>, Event)> = r.waits.iter().collect();
    waits.sort_by_key(|w| w.0.start);
    let mut next_wait = 0;
    let mut start = None;
    for l in r.layers.clone() {
        while next_wait < waits.len() && waits[next_wait].0.start <= l {
            dev.wait(r.gpu, StreamKind::Compute, waits[next_wait].1)?;
            next_wait += 1;
        }
        if start.is_none() {
            start = Some(dev.record(r.gpu, StreamKind::Compute)?);
        }
        let w = (r.addr)(l).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: layer {l} is not resident on GPU {} when its compute is issued",
                r.layout.shape.arch,
                r.gpu
            )
        })?;
        match r.layout.kind {
            Kind::Transformer(cfg) => transformer_layer(dev, r, &cfg, l, w)?,
            Kind::Generic => generic_layer(dev, r, l, w)?,
        }
    }
    for w in &waits[next_wait..] {
        dev.wait(r.gpu, StreamKind::Compute, w.1)?;
    }
    if r.layers.end == r.layout.layers() {
        if let Some((buf, off)) = r.out {
            copy_output(dev, r, buf, off)?;
        }
    }
    match start {
        Some(s) => Ok(s),
        None => dev.record(r.gpu, StreamKind::Compute),
    }
}

fn tensor(r: &Run, l: usize, w: DevPtr, suffix: &str) -> Result<DevPtr> {
    match r.layout.tensor(l, suffix) {
        Some(t) => Ok(w + t.offset),
        None => bail!(
            "{}: layer {l} has no tensor `{suffix}`",
            r.layout.shape.arch
        ),
    }
}

fn transformer_layer(
    dev: &mut dyn Device,
    r: &Run,
    cfg: &TransformerCfg,
    l: usize,
    w: DevPtr,
) -> Result<()> {
    let d = cfg.dims;
    let (b, s) = (r.requests.len(), r.layout.shape.items_per_request as usize);
    let (h, f, t) = (d.hidden as usize, d.ffn as usize, b * s);
    let p = plan(cfg, b, s, r.ws);
    let g = r.gpu;
    let ts = |suffix: &str| tensor(r, l, w, suffix);
    match r.layout.shape.layers[l].kind {
        LayerKind::Embedding => {
            if s + cfg.pos_offset > d.max_positions as usize {
                bail!(
                    "{}: {s} tokens exceed {} positions",
                    r.layout.shape.arch,
                    d.max_positions
                );
            }
            let mut ids = [0u32; MAX_BATCH];
            for (i, id) in r.requests.iter().enumerate() {
                ids[i] = *id as u32;
            }
            let typ = if d.token_types > 0 {
                Some(ts(".type")?)
            } else {
                None
            };
            dev.embed(
                g,
                &Embed {
                    out: p.x,
                    tok: ts(".tok")?,
                    pos: ts(".pos")?,
                    typ,
                    ids,
                    batch: b,
                    seq: s,
                    hidden: h,
                    vocab: d.vocab as usize,
                    pos_offset: cfg.pos_offset,
                },
            )?;
            if d.token_types > 0 {
                dev.layer_norm(g, p.x, p.x, ts(".ln.weight")?, ts(".ln.bias")?, t, h, 1e-12)?;
            }
        }
        LayerKind::TransformerBlock => {
            let eps = if cfg.post_ln { 1e-12 } else { 1e-5 };
            let lin = |dev: &mut dyn Device,
                       x: DevPtr,
                       wt: DevPtr,
                       bias: DevPtr,
                       y: DevPtr,
                       k: usize,
                       n: usize,
                       act: Act|
             -> Result<()> {
                dev.gemm(g, &Gemm::plain(false, false, n, t, k, wt, n, x, k, y, n))?;
                dev.bias_act(g, y, bias, t, n, act)
            };
            let input = if cfg.post_ln {
                p.x
            } else {
                dev.layer_norm(g, p.x, p.y, ts(".ln1.weight")?, ts(".ln1.bias")?, t, h, eps)?;
                p.y
            };
            lin(
                dev,
                input,
                ts(".qkv.weight")?,
                ts(".qkv.bias")?,
                p.qkv,
                h,
                3 * h,
                Act::None,
            )?;
            attention(dev, g, cfg, &p, b, s)?;
            lin(
                dev,
                p.attn,
                ts(".out.weight")?,
                ts(".out.bias")?,
                p.y,
                h,
                h,
                Act::None,
            )?;
            if cfg.post_ln {
                dev.add(g, p.y, p.x, t * h)?;
                dev.layer_norm(g, p.y, p.x, ts(".ln1.weight")?, ts(".ln1.bias")?, t, h, eps)?;
                lin(
                    dev,
                    p.x,
                    ts(".fc1.weight")?,
                    ts(".fc1.bias")?,
                    p.mlp,
                    h,
                    f,
                    cfg.act,
                )?;
                lin(
                    dev,
                    p.mlp,
                    ts(".fc2.weight")?,
                    ts(".fc2.bias")?,
                    p.y,
                    f,
                    h,
                    Act::None,
                )?;
                dev.add(g, p.y, p.x, t * h)?;
                dev.layer_norm(g, p.y, p.x, ts(".ln2.weight")?, ts(".ln2.bias")?, t, h, eps)?;
            } else {
                dev.add(g, p.x, p.y, t * h)?;
                dev.layer_norm(g, p.x, p.y, ts(".ln2.weight")?, ts(".ln2.bias")?, t, h, eps)?;
                lin(
                    dev,
                    p.y,
                    ts(".fc1.weight")?,
                    ts(".fc1.bias")?,
                    p.mlp,
                    h,
                    f,
                    cfg.act,
                )?;
                lin(
                    dev,
                    p.mlp,
                    ts(".fc2.weight")?,
                    ts(".fc2.bias")?,
                    p.y,
                    f,
                    h,
                    Act::None,
                )?;
                dev.add(g, p.x, p.y, t * h)?;
            }
        }
        LayerKind::Head if cfg.lm_head => {
            dev.layer_norm(g, p.x, p.y, ts(".ln.weight")?, ts(".ln.bias")?, t, h, 1e-5)?;
            let emb = (r.addr)(0).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: the LM head is tied to the embeddings, which are not on GPU {g}",
                    r.layout.shape.arch
                )
            })?;
            let tok = emb + r.layout.tensor(0, ".tok").map(|t| t.offset).unwrap_or(0);
            let v = d.vocab as usize;
            dev.gemm(
                g,
                &Gemm::plain(true, false, v, t, h, tok, h, p.y, h, p.out, v),
            )?;
        }
        LayerKind::Head => {
            dev.gemm(
                g,
                &Gemm::plain(
                    false,
                    false,
                    h,
                    b,
                    h,
                    ts(".pooler.weight")?,
                    h,
                    p.x,
                    s * h,
                    p.out,
                    h,
                ),
            )?;
            dev.bias_act(g, p.out, ts(".pooler.bias")?, b, h, Act::Tanh)?;
        }
        other => bail!(
            "{}: a transformer has no {other:?} layer",
            r.layout.shape.arch
        ),
    }
    Ok(())
}

fn attention(
    dev: &mut dyn Device,
    g: usize,
    cfg: &TransformerCfg,
    p: &Plan,
    b: usize,
    s: usize,
) -> Result<()> {
    let (heads, h) = (cfg.dims.heads as usize, cfg.dims.hidden as usize);
    let dh = h / heads;
    dev.split_heads(g, p.qkv, p.q, p.k, p.v, b, s, heads, dh)?;
    let mut sc = Gemm::plain(true, false, s, s, dh, p.k, dh, p.q, dh, p.scores, s);
    sc.batch = b * heads;
    (sc.stride_a, sc.stride_b, sc.stride_c, sc.c_f32) = (s * dh, s * dh, s * s, true);
    dev.gemm(g, &sc)?;
    dev.softmax(
        g,
        p.scores,
        p.probs,
        b * heads * s,
        s,
        cfg.causal,
        1.0 / (dh as f32).sqrt(),
    )?;
    let mut pv = Gemm::plain(false, false, dh, s, s, p.v, dh, p.probs, s, p.o, dh);
    pv.batch = b * heads;
    (pv.stride_a, pv.stride_b, pv.stride_c) = (s * dh, s * s, s * dh);
    dev.gemm(g, &pv)?;
    dev.merge_heads(g, p.o, p.attn, b, s, heads, dh)
}

/// FLOPs of GEMM-equivalent layer `l` for a batch of `b`.
fn generic_flops(r: &Run, l: usize, b: usize) -> f64 {
    let shape = &r.layout.shape;
    match shape.family {
        Family::Synthetic { layer_s } => {
            layer_s * (1.0 + r.synthetic_slope * (b as f64 - 1.0)) * r.gemm_rate
        }
        _ => shape.layers[l].flops_per_item * (shape.items_per_request * b as u64) as f64,
    }
}

fn generic_layer(dev: &mut dyn Device, r: &Run, l: usize, w: DevPtr) -> Result<()> {
    let (k, n) = generic_dims(r.layout.shape.layers[l].param_bytes);
    if n == 0 {
        return Ok(());
    }
    let (inp, out, _) = generic_ws(r.ws);
    let flops = generic_flops(r, l, r.requests.len());
    let per_row = 2.0 * (k * n) as f64;
    let m = (flops / per_row).round().clamp(1.0, GEN_M as f64) as usize;
    let passes = (flops / (per_row * m as f64)).round().max(1.0) as usize;
    for _ in 0..passes {
        let mut c0 = 0;
        while c0 < n {
            let cw = (n - c0).min(GEN_CHUNK);
            dev.gemm(
                r.gpu,
                &Gemm::plain(
                    false,
                    false,
                    cw,
                    m,
                    k,
                    w + (c0 * 2) as u64,
                    n,
                    inp,
                    k,
                    out,
                    cw,
                ),
            )?;
            c0 += cw;
        }
    }
    Ok(())
}

fn copy_output(dev: &mut dyn Device, r: &Run, buf: &HostBuffer, off: u64) -> Result<()> {
    let b = r.requests.len();
    match r.layout.kind {
        Kind::Transformer(cfg) => {
            let p = plan(&cfg, b, r.layout.shape.items_per_request as usize, r.ws);
            if cfg.lm_head {
                let (v, s) = (cfg.dims.vocab, r.layout.shape.items_per_request);
                for i in 0..b as u64 {
                    let row = p.out + ((i * s + s - 1) * v * 2);
                    dev.copy_d2h(r.gpu, row, buf, off + i * v * 2, v * 2)?;
                }
                Ok(())
            } else {
                dev.copy_d2h(r.gpu, p.out, buf, off, output_bytes(r.layout, b))
            }
        }
        Kind::Generic => {
            let (_, out, _) = generic_ws(r.ws);
            dev.copy_d2h(r.gpu, out, buf, off, output_bytes(r.layout, b))
        }
    }
}
