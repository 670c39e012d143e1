//! Transformer layers on a tensor-parallel group, Megatron style: each rank
//! runs its heads' attention and its slice of the MLP; the row-parallel
//! projections' partial sums are joined by an all-reduce, after which every
//! rank adds the (replicated) bias and the residual. With one rank no
//! collective runs and the operations are exactly the one-GPU pass.

use super::{plan, tensor, Plan, Run};
use crate::device::{
    Act, DevPtr, Device, Dtype, Embed, Gemm, Heads, LayerNorm, Mat, Softmax, SplitHeads, MAX_BATCH,
};
use crate::model::TransformerCfg;
use anyhow::{bail, Result};
use switchyard_core::model::LayerKind;

/// Layer norm of `rows x cols` values from `x` into `y` (in place when
/// equal), with `gain` and `bias`, on GPU `g` in type `dt`.
fn norm(
    dev: &mut dyn Device,
    (g, dt): (usize, Dtype),
    (x, y): (DevPtr, DevPtr),
    (gain, bias): (DevPtr, DevPtr),
    (rows, cols): (usize, usize),
    eps: f32,
) -> Result<()> {
    let op = LayerNorm {
        x,
        y,
        gain,
        bias,
        rows,
        cols,
        eps,
        dtype: dt,
    };
    Ok(dev.layer_norm(g, &op)?)
}

/// `y = x W` (+ nothing: bias added by the caller) for `t` rows: `W` is
/// row-major `[k, n]`, `x` (rows `x.ld` apart) is `[t, k]`, all of `dt`.
fn matmul(
    dev: &mut dyn Device,
    (g, dt): (usize, Dtype),
    x: Mat,
    w: DevPtr,
    y: DevPtr,
    (t, k, n): (usize, usize, usize),
) -> Result<()> {
    Ok(dev.gemm(
        g,
        &Gemm::plain(n, t, k, Mat::n(w, n), x, Mat::n(y, n)).typed(dt),
    )?)
}

/// Sums `p.y` (`t * h` elements) over the group (nothing with one rank).
fn reduce(dev: &mut dyn Device, r: &Run, at: DevPtr, n: usize) -> Result<()> {
    if r.gpus.len() > 1 {
        dev.all_reduce(r.gpus, &vec![at; r.gpus.len()], n, r.layout.dtype)?;
    }
    Ok(())
}

/// Runs layer `l` of a transformer on the group.
pub(super) fn layer(dev: &mut dyn Device, r: &Run, cfg: &TransformerCfg, l: usize) -> Result<()> {
    let d = cfg.dims;
    let (b, s) = (r.requests.len(), r.layout.shape.items_per_request as usize);
    let (h, t) = (d.hidden as usize, b * s);
    let tp = r.gpus.len();
    let hp = h / tp;
    let (dt, el) = (r.layout.dtype, r.layout.el());
    let p = plan(cfg, b, s, r.ws, el);
    let ts = |rank: usize, suffix: &str| tensor(r, rank, l, suffix);
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
            // Each rank looks up its hidden columns; an all-gather joins them.
            let out = if tp == 1 { p.x } else { p.o };
            for (rank, &g) in r.gpus.iter().enumerate() {
                let typ = if d.token_types > 0 {
                    Some(ts(rank, ".type")?)
                } else {
                    None
                };
                dev.embed(
                    g,
                    &Embed {
                        out,
                        tok: ts(rank, ".tok")?,
                        pos: ts(rank, ".pos")?,
                        typ,
                        ids,
                        batch: b,
                        seq: s,
                        hidden: hp,
                        vocab: d.vocab as usize,
                        pos_offset: cfg.pos_offset,
                        dtype: dt,
                    },
                )?;
            }
            if tp > 1 {
                dev.all_gather(r.gpus, &vec![p.o; tp], &vec![p.q; tp], t * hp, dt)?;
                for &g in r.gpus {
                    // [tp, t, hp] -> [t, tp * hp]: the heads merge does it.
                    let shape = Heads {
                        batch: 1,
                        seq: t,
                        heads: tp,
                        head_dim: hp,
                    };
                    dev.merge_heads(g, p.q, p.x, shape, dt)?;
                }
            }
            if d.token_types > 0 {
                for (rank, &g) in r.gpus.iter().enumerate() {
                    let gb = (ts(rank, ".ln.weight")?, ts(rank, ".ln.bias")?);
                    norm(dev, (g, dt), (p.x, p.x), gb, (t, h), 1e-12)?;
                }
            }
        }
        LayerKind::TransformerBlock => block(dev, r, cfg, l, &p)?,
        LayerKind::Head if cfg.lm_head => {
            let v = d.vocab as usize;
            for (rank, &g) in r.gpus.iter().enumerate() {
                let gb = (ts(rank, ".ln.weight")?, ts(rank, ".ln.bias")?);
                norm(dev, (g, dt), (p.x, p.y), gb, (t, h), 1e-5)?;
                // The tied embedding: a copy beside this stage, or layer 0's.
                let tok = match r.shard.find(r.layout, l, ".tok") {
                    Some(_) => ts(rank, ".tok")?,
                    None => tensor(r, rank, 0, ".tok").map_err(|_| {
                        anyhow::anyhow!(
                            "{}: the LM head is tied to the embeddings, which are not on GPU {g}",
                            r.layout.shape.arch
                        )
                    })?,
                };
                // Logits of each request's last token only (the output):
                // its rows of `p.y` lie `s * h` elements apart.
                let y = p.y + (((s - 1) * h + rank * hp) * el) as u64;
                dev.gemm(
                    g,
                    &Gemm::plain(
                        v,
                        b,
                        hp,
                        Mat::t(tok, hp),
                        Mat::n(y, s * h),
                        Mat::n(p.out, v),
                    )
                    .typed(dt),
                )?;
            }
            // Partial logits over each rank's hidden columns: sum them.
            reduce(dev, r, p.out, b * v)?;
        }
        LayerKind::Head => {
            for (rank, &g) in r.gpus.iter().enumerate() {
                let w = ts(rank, ".pooler.weight")?;
                dev.gemm(
                    g,
                    &Gemm::plain(h, b, h, Mat::n(w, h), Mat::n(p.x, s * h), Mat::n(p.out, h))
                        .typed(dt),
                )?;
                dev.bias_act(g, p.out, ts(rank, ".pooler.bias")?, b, h, Act::Tanh, dt)?;
            }
        }
        other => bail!(
            "{}: a transformer has no {other:?} layer",
            r.layout.shape.arch
        ),
    }
    Ok(())
}

fn block(dev: &mut dyn Device, r: &Run, cfg: &TransformerCfg, l: usize, p: &Plan) -> Result<()> {
    let d = cfg.dims;
    let (b, s) = (r.requests.len(), r.layout.shape.items_per_request as usize);
    let (h, f, t) = (d.hidden as usize, d.ffn as usize, b * s);
    let tp = r.gpus.len();
    let (hp, fp, heads) = (h / tp, f / tp, d.heads as usize / tp);
    let eps = if cfg.post_ln { 1e-12 } else { 1e-5 };
    let dt = r.layout.dtype;
    let ts = |rank: usize, suffix: &str| tensor(r, rank, l, suffix);
    // Attention: column-parallel QKV (this rank's heads), row-parallel output.
    for (rank, &g) in r.gpus.iter().enumerate() {
        let input = if cfg.post_ln {
            p.x
        } else {
            let gb = (ts(rank, ".ln1.weight")?, ts(rank, ".ln1.bias")?);
            norm(dev, (g, dt), (p.x, p.y), gb, (t, h), eps)?;
            p.y
        };
        let w = ts(rank, ".qkv.weight")?;
        matmul(dev, (g, dt), Mat::n(input, h), w, p.qkv, (t, h, 3 * hp))?;
        dev.bias_act(g, p.qkv, ts(rank, ".qkv.bias")?, t, 3 * hp, Act::None, dt)?;
        attention(dev, (g, dt), cfg, p, (b, s, heads))?;
        let w = ts(rank, ".out.weight")?;
        matmul(dev, (g, dt), Mat::n(p.attn, hp), w, p.y, (t, hp, h))?;
    }
    reduce(dev, r, p.y, t * h)?;
    // MLP: column-parallel fc1, row-parallel fc2.
    for (rank, &g) in r.gpus.iter().enumerate() {
        dev.bias_act(g, p.y, ts(rank, ".out.bias")?, t, h, Act::None, dt)?;
        let input = if cfg.post_ln {
            dev.add(g, p.y, p.x, t * h, dt)?;
            let gb = (ts(rank, ".ln1.weight")?, ts(rank, ".ln1.bias")?);
            norm(dev, (g, dt), (p.y, p.x), gb, (t, h), eps)?;
            p.x
        } else {
            dev.add(g, p.x, p.y, t * h, dt)?;
            let gb = (ts(rank, ".ln2.weight")?, ts(rank, ".ln2.bias")?);
            norm(dev, (g, dt), (p.x, p.y), gb, (t, h), eps)?;
            p.y
        };
        let w = ts(rank, ".fc1.weight")?;
        matmul(dev, (g, dt), Mat::n(input, h), w, p.mlp, (t, h, fp))?;
        dev.bias_act(g, p.mlp, ts(rank, ".fc1.bias")?, t, fp, cfg.act, dt)?;
        let w = ts(rank, ".fc2.weight")?;
        matmul(dev, (g, dt), Mat::n(p.mlp, fp), w, p.y, (t, fp, h))?;
    }
    reduce(dev, r, p.y, t * h)?;
    for (rank, &g) in r.gpus.iter().enumerate() {
        dev.bias_act(g, p.y, ts(rank, ".fc2.bias")?, t, h, Act::None, dt)?;
        if cfg.post_ln {
            dev.add(g, p.y, p.x, t * h, dt)?;
            let gb = (ts(rank, ".ln2.weight")?, ts(rank, ".ln2.bias")?);
            norm(dev, (g, dt), (p.y, p.x), gb, (t, h), eps)?;
        } else {
            dev.add(g, p.x, p.y, t * h, dt)?;
        }
    }
    Ok(())
}

/// Scaled-dot-product attention of `heads` heads from `p.qkv` into `p.attn`.
fn attention(
    dev: &mut dyn Device,
    (g, dt): (usize, Dtype),
    cfg: &TransformerCfg,
    p: &Plan,
    (b, s, heads): (usize, usize, usize),
) -> Result<()> {
    let dh = cfg.dims.hidden as usize / cfg.dims.heads as usize;
    let shape = Heads {
        batch: b,
        seq: s,
        heads,
        head_dim: dh,
    };
    dev.split_heads(
        g,
        &SplitHeads {
            qkv: p.qkv,
            q: p.q,
            k: p.k,
            v: p.v,
            shape,
            dtype: dt,
        },
    )?;
    let mut sc = Gemm::plain(
        s,
        s,
        dh,
        Mat::t(p.k, dh),
        Mat::n(p.q, dh),
        Mat::n(p.scores, s),
    )
    .typed(dt);
    sc.batch = b * heads;
    (sc.stride_a, sc.stride_b, sc.stride_c, sc.c_f32) = (s * dh, s * dh, s * s, true);
    dev.gemm(g, &sc)?;
    dev.softmax(
        g,
        &Softmax {
            scores: p.scores,
            probs: p.probs,
            rows: b * heads * s,
            cols: s,
            causal: cfg.causal,
            scale: 1.0 / (dh as f32).sqrt(),
            dtype: dt,
        },
    )?;
    let mut pv = Gemm::plain(
        dh,
        s,
        s,
        Mat::n(p.v, dh),
        Mat::n(p.probs, s),
        Mat::n(p.o, dh),
    )
    .typed(dt);
    pv.batch = b * heads;
    (pv.stride_a, pv.stride_b, pv.stride_c) = (s * dh, s * s, s * dh);
    dev.gemm(g, &pv)?;
    Ok(dev.merge_heads(g, p.o, p.attn, shape, dt)?)
}
