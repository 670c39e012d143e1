//! A plain f32 host implementation of the transformer forward pass, written
//! independently of [`crate::forward`] (row-major loops, no GEMM view), used
//! as the oracle that the CUDA and CPU devices are checked against.

use super::layout::{Kind, ModelLayout};
use crate::device::{decode, token_id};
use anyhow::{bail, Result};

struct W<'a> {
    layout: &'a ModelLayout,
    buf: &'a [u8],
}

impl W<'_> {
    fn get(&self, layer: usize, suffix: &str) -> Vec<f32> {
        let t = self.layout.tensor(layer, suffix).expect("tensor");
        let off = (self.layout.layer_offsets[layer] + t.offset) as usize;
        decode(
            self.layout.dtype,
            &self.buf[off..off + t.numel() * self.layout.el()],
        )
    }
}

/// `x [rows, k] · w [k, n] + b`, row-major.
fn linear(x: &[f32], w: &[f32], b: &[f32], k: usize, n: usize) -> Vec<f32> {
    let rows = x.len() / k;
    let mut y = vec![0f32; rows * n];
    for r in 0..rows {
        for i in 0..k {
            let xi = x[r * k + i];
            for o in 0..n {
                y[r * n + o] += xi * w[i * n + o];
            }
        }
        for o in 0..n {
            y[r * n + o] += b[o];
        }
    }
    y
}

fn layer_norm(x: &[f32], g: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let n = g.len();
    let mut y = vec![0f32; x.len()];
    for (row, out) in x.chunks(n).zip(y.chunks_mut(n)) {
        let mean = row.iter().sum::<f32>() / n as f32;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32;
        for c in 0..n {
            out[c] = (row[c] - mean) / (var + eps).sqrt() * g[c] + b[c];
        }
    }
    y
}

fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x.powi(3))).tanh())
}

/// The outputs (last-token logits, or the pooled vector) of each request of
/// `requests` through the whole model whose weights (of the layout's
/// element type) are `buf`; every activation is kept in f32.
pub fn forward(layout: &ModelLayout, buf: &[u8], requests: &[u64]) -> Result<Vec<Vec<f32>>> {
    let Kind::Transformer(cfg) = layout.kind else {
        bail!("the reference covers transformers only");
    };
    let d = cfg.dims;
    let (h, f, heads, vocab) = (
        d.hidden as usize,
        d.ffn as usize,
        d.heads as usize,
        d.vocab as usize,
    );
    let dh = h / heads;
    let s = layout.shape.items_per_request as usize;
    let w = W { layout, buf };
    let eps = if cfg.post_ln { 1e-12 } else { 1e-5 };
    let act = |x: f32| {
        if cfg.act == crate::device::Act::Relu {
            x.max(0.0)
        } else {
            gelu(x)
        }
    };
    let mut outs = Vec::new();
    for &req in requests {
        // Embeddings.
        let (tok, pos) = (w.get(0, ".tok"), w.get(0, ".pos"));
        let mut x = vec![0f32; s * h];
        for p in 0..s {
            let id = token_id(req as u32, p as u32, vocab as u32) as usize;
            for c in 0..h {
                x[p * h + c] = tok[id * h + c] + pos[(p + cfg.pos_offset) * h + c];
            }
        }
        if d.token_types > 0 {
            let typ = w.get(0, ".type");
            for p in 0..s {
                for c in 0..h {
                    x[p * h + c] += typ[c];
                }
            }
            x = layer_norm(&x, &w.get(0, ".ln.weight"), &w.get(0, ".ln.bias"), 1e-12);
        }
        for l in 1..=d.blocks as usize {
            let g = |n: &str| w.get(l, n);
            let a_in = if cfg.post_ln {
                x.clone()
            } else {
                layer_norm(&x, &g(".ln1.weight"), &g(".ln1.bias"), eps)
            };
            let qkv = linear(&a_in, &g(".qkv.weight"), &g(".qkv.bias"), h, 3 * h);
            let mut att = vec![0f32; s * h];
            for hd in 0..heads {
                for i in 0..s {
                    let q = &qkv[i * 3 * h + hd * dh..][..dh];
                    let lim = if cfg.causal { i + 1 } else { s };
                    let sc: Vec<f32> = (0..lim)
                        .map(|j| {
                            let k = &qkv[j * 3 * h + h + hd * dh..][..dh];
                            q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (dh as f32).sqrt()
                        })
                        .collect();
                    let m = sc.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let z: f32 = sc.iter().map(|v| (v - m).exp()).sum();
                    for (j, v) in sc.iter().enumerate() {
                        let pj = (v - m).exp() / z;
                        for c in 0..dh {
                            att[i * h + hd * dh + c] += pj * qkv[j * 3 * h + 2 * h + hd * dh + c];
                        }
                    }
                }
            }
            let proj = linear(&att, &g(".out.weight"), &g(".out.bias"), h, h);
            if cfg.post_ln {
                let r: Vec<f32> = x.iter().zip(&proj).map(|(a, b)| a + b).collect();
                x = layer_norm(&r, &g(".ln1.weight"), &g(".ln1.bias"), eps);
                let m: Vec<f32> = linear(&x, &g(".fc1.weight"), &g(".fc1.bias"), h, f)
                    .into_iter()
                    .map(act)
                    .collect();
                let y = linear(&m, &g(".fc2.weight"), &g(".fc2.bias"), f, h);
                let r: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
                x = layer_norm(&r, &g(".ln2.weight"), &g(".ln2.bias"), eps);
            } else {
                for (a, b) in x.iter_mut().zip(&proj) {
                    *a += b;
                }
                let n = layer_norm(&x, &g(".ln2.weight"), &g(".ln2.bias"), eps);
                let m: Vec<f32> = linear(&n, &g(".fc1.weight"), &g(".fc1.bias"), h, f)
                    .into_iter()
                    .map(act)
                    .collect();
                let y = linear(&m, &g(".fc2.weight"), &g(".fc2.bias"), f, h);
                for (a, b) in x.iter_mut().zip(&y) {
                    *a += b;
                }
            }
        }
        let head = layout.layers() - 1;
        if cfg.lm_head {
            let n = layer_norm(
                &x[(s - 1) * h..],
                &w.get(head, ".ln.weight"),
                &w.get(head, ".ln.bias"),
                1e-5,
            );
            outs.push(
                (0..vocab)
                    .map(|v| (0..h).map(|c| n[c] * tok[v * h + c]).sum())
                    .collect(),
            );
        } else {
            let pooled = linear(
                &x[..h],
                &w.get(head, ".pooler.weight"),
                &w.get(head, ".pooler.bias"),
                h,
                h,
            );
            outs.push(pooled.into_iter().map(f32::tanh).collect());
        }
    }
    Ok(outs)
}
