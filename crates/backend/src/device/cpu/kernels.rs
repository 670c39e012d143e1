//! The forward pass's operations on the host: GEMMs in f32 over fp16, bf16
//! or fp32 inputs, and the small kernels, on the emulated GPUs' arenas.

use super::graph::Op;
use super::*;
use crate::device::{el_bytes, Heads, LayerNorm, Softmax, SplitHeads};

/// The forward pass's operations on the host: f32 arithmetic on data of
/// each operation's element type, the same formulas as the CUDA kernels.
impl Kernels for CpuDevice {
    fn gemm(&mut self, gpu: usize, g: &Gemm) -> DeviceResult<()> {
        if self.captured(gpu, || Op::Gemm(*g)) {
            return Ok(());
        }
        let (ra, ca) = if g.ta { (g.k, g.m) } else { (g.m, g.k) };
        let (rb, cb) = if g.tb { (g.n, g.k) } else { (g.k, g.n) };
        for bi in 0..g.batch {
            let a = self.read(
                gpu,
                g.a + (bi * g.stride_a * g.el()) as u64,
                extent(ra, ca, g.lda),
                g.dtype,
            )?;
            let b = self.read(
                gpu,
                g.b + (bi * g.stride_b * g.el()) as u64,
                extent(rb, cb, g.ldb),
                g.dtype,
            )?;
            // Row i of op(A) and column j of op(B), contiguous over p.
            let mut at = vec![0f32; g.m * g.k];
            for i in 0..g.m {
                for p in 0..g.k {
                    at[i * g.k + p] = if g.ta {
                        a[p + i * g.lda]
                    } else {
                        a[i + p * g.lda]
                    };
                }
            }
            let mut bt = vec![0f32; g.n * g.k];
            for j in 0..g.n {
                for p in 0..g.k {
                    bt[j * g.k + p] = if g.tb {
                        b[j + p * g.ldb]
                    } else {
                        b[p + j * g.ldb]
                    };
                }
            }
            let c_at = g.c + (bi * g.stride_c * g.c_el()) as u64;
            let n_c = extent(g.m, g.n, g.ldc);
            let c_type = if g.c_f32 { Dtype::Fp32 } else { g.dtype };
            let mut c = self.read(gpu, c_at, n_c, c_type)?;
            for j in 0..g.n {
                let bj = &bt[j * g.k..(j + 1) * g.k];
                for i in 0..g.m {
                    let ai = &at[i * g.k..(i + 1) * g.k];
                    let s: f32 = ai.iter().zip(bj).map(|(x, y)| x * y).sum();
                    c[i + j * g.ldc] = g.alpha * s;
                }
            }
            self.write(gpu, c_at, &c, c_type)?;
        }
        Ok(())
    }

    fn embed(&mut self, gpu: usize, e: &Embed) -> DeviceResult<()> {
        if self.captured(gpu, || Op::Embed(Box::new(*e))) {
            return Ok(());
        }
        let (h, dt) = (e.hidden, e.dtype);
        let el = el_bytes(dt) as u64;
        let typ = match e.typ {
            Some(t) => self.read(gpu, t, h, dt)?,
            None => vec![0.0; h],
        };
        let mut out = vec![0f32; e.batch * e.seq * h];
        for b in 0..e.batch {
            for s in 0..e.seq {
                let id = crate::device::token_id(e.ids[b], s as u32, e.vocab as u32) as u64;
                let tok = self.read(gpu, e.tok + id * h as u64 * el, h, dt)?;
                let pos = self.read(
                    gpu,
                    e.pos + (s + e.pos_offset) as u64 * h as u64 * el,
                    h,
                    dt,
                )?;
                let row = &mut out[(b * e.seq + s) * h..][..h];
                for c in 0..h {
                    row[c] = tok[c] + pos[c] + typ[c];
                }
            }
        }
        self.write(gpu, e.out, &out, dt)
    }

    fn layer_norm(&mut self, gpu: usize, op: &LayerNorm) -> DeviceResult<()> {
        if self.captured(gpu, || Op::LayerNorm(*op)) {
            return Ok(());
        }
        let LayerNorm {
            x,
            y,
            gain: g,
            bias: b,
            rows,
            cols,
            eps,
            dtype: dt,
        } = *op;
        let xv = self.read(gpu, x, rows * cols, dt)?;
        let (gv, bv) = (self.read(gpu, g, cols, dt)?, self.read(gpu, b, cols, dt)?);
        let mut out = vec![0f32; rows * cols];
        for r in 0..rows {
            let row = &xv[r * cols..(r + 1) * cols];
            let mean = row.iter().sum::<f32>() / cols as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / cols as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for c in 0..cols {
                out[r * cols + c] = (row[c] - mean) * inv * gv[c] + bv[c];
            }
        }
        self.write(gpu, y, &out, dt)
    }

    fn bias_act(
        &mut self,
        gpu: usize,
        y: DevPtr,
        bias: DevPtr,
        rows: usize,
        cols: usize,
        act: Act,
        dt: Dtype,
    ) -> DeviceResult<()> {
        if self.captured(gpu, || Op::BiasAct(y, bias, rows, cols, act, dt)) {
            return Ok(());
        }
        let mut v = self.read(gpu, y, rows * cols, dt)?;
        let bv = self.read(gpu, bias, cols, dt)?;
        for (i, x) in v.iter_mut().enumerate() {
            *x = act.apply(*x + bv[i % cols]);
        }
        self.write(gpu, y, &v, dt)
    }

    fn add(&mut self, gpu: usize, x: DevPtr, y: DevPtr, n: usize, dt: Dtype) -> DeviceResult<()> {
        if self.captured(gpu, || Op::Add(x, y, n, dt)) {
            return Ok(());
        }
        let mut xv = self.read(gpu, x, n, dt)?;
        let yv = self.read(gpu, y, n, dt)?;
        for (a, b) in xv.iter_mut().zip(yv) {
            *a += b;
        }
        self.write(gpu, x, &xv, dt)
    }

    fn split_heads(&mut self, gpu: usize, op: &SplitHeads) -> DeviceResult<()> {
        if self.captured(gpu, || Op::SplitHeads(*op)) {
            return Ok(());
        }
        let SplitHeads {
            qkv,
            q,
            k,
            v,
            shape,
            dtype: dt,
        } = *op;
        let (b, s, h, dh) = (shape.batch, shape.seq, shape.heads, shape.head_dim);
        let hid = h * dh;
        let src = self.read(gpu, qkv, b * s * 3 * hid, dt)?;
        let mut outs = [
            vec![0f32; b * s * hid],
            vec![0f32; b * s * hid],
            vec![0f32; b * s * hid],
        ];
        for t in 0..b * s {
            let (bb, ss) = (t / s, t % s);
            for j in 0..h {
                for d in 0..dh {
                    let dst = ((bb * h + j) * s + ss) * dh + d;
                    for (w, o) in outs.iter_mut().enumerate() {
                        o[dst] = src[t * 3 * hid + w * hid + j * dh + d];
                    }
                }
            }
        }
        self.write(gpu, q, &outs[0], dt)?;
        self.write(gpu, k, &outs[1], dt)?;
        self.write(gpu, v, &outs[2], dt)
    }

    fn softmax(&mut self, gpu: usize, op: &Softmax) -> DeviceResult<()> {
        if self.captured(gpu, || Op::Softmax(*op)) {
            return Ok(());
        }
        let Softmax {
            scores,
            probs,
            rows,
            cols: s,
            causal,
            scale,
            dtype: dt,
        } = *op;
        let sc = self.read(gpu, scores, rows * s, Dtype::Fp32)?;
        let mut p = vec![0f32; rows * s];
        for r in 0..rows {
            let i = r % s;
            let lim = if causal { i + 1 } else { s };
            let row = &sc[r * s..r * s + lim];
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b * scale));
            let sum: f32 = row.iter().map(|x| (x * scale - m).exp()).sum();
            for j in 0..lim {
                p[r * s + j] = (row[j] * scale - m).exp() / sum;
            }
        }
        self.write(gpu, probs, &p, dt)
    }

    fn merge_heads(
        &mut self,
        gpu: usize,
        o: DevPtr,
        out: DevPtr,
        shape: Heads,
        dt: Dtype,
    ) -> DeviceResult<()> {
        if self.captured(gpu, || Op::MergeHeads(o, out, shape, dt)) {
            return Ok(());
        }
        let (b, s, h, dh) = (shape.batch, shape.seq, shape.heads, shape.head_dim);
        let src = self.read(gpu, o, b * s * h * dh, dt)?;
        let mut dst = vec![0f32; src.len()];
        for bb in 0..b {
            for j in 0..h {
                for ss in 0..s {
                    for d in 0..dh {
                        dst[(bb * s + ss) * h * dh + j * dh + d] =
                            src[((bb * h + j) * s + ss) * dh + d];
                    }
                }
            }
        }
        self.write(gpu, out, &dst, dt)
    }

    fn fill_random(
        &mut self,
        gpu: usize,
        dst: DevPtr,
        n: usize,
        seed: u64,
        scale: f32,
        dt: Dtype,
    ) -> DeviceResult<()> {
        if self.captured(gpu, || Op::FillRandom(dst, n, seed, scale, dt)) {
            return Ok(());
        }
        let v: Vec<f32> = (0..n as u64)
            .map(|i| crate::device::seeded::uniform(seed, i) * scale)
            .collect();
        self.write(gpu, dst, &v, dt)
    }
}
