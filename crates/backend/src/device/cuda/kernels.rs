//! The forward pass's operations on CUDA: GEMMs through cuBLAS
//! (`cublasGemmStridedBatchedEx`: fp16 or bf16 in with f32 accumulation,
//! or fp32 in with fp32 compute) and the NVRTC kernels of
//! [`super::source`] for each element type, each bounds-checked against the
//! arena.

use super::{grid_for, CudaDevice};
use crate::device::{
    el_bytes, Act, Context, DevPtr, DeviceResult, Dtype, Embed, Gemm, Heads, Kernels, LayerNorm,
    Softmax, SplitHeads,
};
use cudarc::cublas::sys as cb;
use std::ffi::c_void;

impl Kernels for CudaDevice {
    fn gemm(&mut self, gpu: usize, m: &Gemm) -> DeviceResult<()> {
        let g = self.on(gpu)?;
        let (el, c_el) = (m.el() as u64, m.c_el() as u64);
        let span = |rows: usize, cols: usize, ld: usize, stride: usize, el: u64| -> u64 {
            let one = if rows == 0 || cols == 0 {
                0
            } else {
                (cols - 1) * ld + rows
            };
            ((m.batch - 1) * stride + one) as u64 * el
        };
        let (ra, ca) = if m.ta { (m.k, m.m) } else { (m.m, m.k) };
        let (rb, cb_) = if m.tb { (m.n, m.k) } else { (m.k, m.n) };
        let a = Self::ptr(g, m.a, span(ra, ca, m.lda, m.stride_a, el))?;
        let b = Self::ptr(g, m.b, span(rb, cb_, m.ldb, m.stride_b, el))?;
        let c = Self::ptr(g, m.c, span(m.m, m.n, m.ldc, m.stride_c, c_el))?;
        let op = |t: bool| {
            if t {
                cb::cublasOperation_t::CUBLAS_OP_T
            } else {
                cb::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let (alpha, beta) = (m.alpha, 0.0f32);
        let h = cuda_type(m.dtype);
        let ct = if m.c_f32 {
            cb::cudaDataType::CUDA_R_32F
        } else {
            h
        };
        // SAFETY: the handle is live and bound to this GPU's compute stream;
        // A, B and C span (batch, leading dimensions and strides included)
        // lie inside the arena (checked above), of the types passed; alpha
        // and beta are live f32s as CUBLAS_COMPUTE_32F expects (for every
        // input type: fp16/bf16 accumulate in f32, fp32 computes in fp32).
        let st = unsafe {
            cb::cublasGemmStridedBatchedEx(
                g.blas.0,
                op(m.ta),
                op(m.tb),
                m.m as i32,
                m.n as i32,
                m.k as i32,
                &alpha as *const f32 as *const c_void,
                a as *const c_void,
                h,
                m.lda as i32,
                m.stride_a as i64,
                b as *const c_void,
                h,
                m.ldb as i32,
                m.stride_b as i64,
                &beta as *const f32 as *const c_void,
                c as *mut c_void,
                ct,
                m.ldc as i32,
                m.stride_c as i64,
                m.batch as i32,
                cb::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cb::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        };
        st.result().context("cublasGemmStridedBatchedEx")
    }

    fn embed(&mut self, gpu: usize, e: &Embed) -> DeviceResult<()> {
        let g = self.on(gpu)?;
        let el = el_bytes(e.dtype) as u64;
        let t = (e.batch * e.seq) as u64;
        let out = Self::ptr(g, e.out, t * e.hidden as u64 * el)?;
        let tok = Self::ptr(g, e.tok, (e.vocab * e.hidden) as u64 * el)?;
        let pos = Self::ptr(g, e.pos, ((e.seq + e.pos_offset) * e.hidden) as u64 * el)?;
        let typ: u64 = match e.typ {
            Some(p) => Self::ptr(g, p, e.hidden as u64 * el)?,
            None => 0,
        };
        let (seq, hid, voc, po) = (
            e.seq as i32,
            e.hidden as i32,
            e.vocab as i32,
            e.pos_offset as i32,
        );
        let ids = e.ids;
        self.launch(
            gpu,
            ("embed", e.dtype),
            t as u32,
            super::source::BLOCK,
            &mut args![out, tok, pos, typ, ids, seq, hid, voc, po],
        )
    }

    fn layer_norm(&mut self, gpu: usize, op: &LayerNorm) -> DeviceResult<()> {
        let LayerNorm {
            x,
            y,
            gain: gm,
            bias: b,
            rows,
            cols,
            eps,
            dtype,
        } = *op;
        let g = self.on(gpu)?;
        let el = el_bytes(dtype) as u64;
        let n = (rows * cols) as u64 * el;
        let (x, y) = (Self::ptr(g, x, n)?, Self::ptr(g, y, n)?);
        let (gm, b) = (
            Self::ptr(g, gm, cols as u64 * el)?,
            Self::ptr(g, b, cols as u64 * el)?,
        );
        let c = cols as i32;
        self.launch(
            gpu,
            ("layer_norm", dtype),
            rows as u32,
            super::source::BLOCK,
            &mut args![x, y, gm, b, c, eps],
        )
    }

    fn bias_act(
        &mut self,
        gpu: usize,
        y: DevPtr,
        bias: DevPtr,
        rows: usize,
        cols: usize,
        act: Act,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        let g = self.on(gpu)?;
        let el = el_bytes(dtype) as u64;
        let y = Self::ptr(g, y, (rows * cols) as u64 * el)?;
        let bias = Self::ptr(g, bias, cols as u64 * el)?;
        let (r, c, a) = (rows as u64, cols as i32, act.code());
        self.launch(
            gpu,
            ("bias_act", dtype),
            grid_for(r * c as u64),
            super::source::BLOCK,
            &mut args![y, bias, r, c, a],
        )
    }

    fn add(
        &mut self,
        gpu: usize,
        x: DevPtr,
        y: DevPtr,
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        let g = self.on(gpu)?;
        let el = el_bytes(dtype) as u64;
        let (x, y) = (
            Self::ptr(g, x, n as u64 * el)?,
            Self::ptr(g, y, n as u64 * el)?,
        );
        let n = n as u64;
        self.launch(
            gpu,
            ("add", dtype),
            grid_for(n),
            super::source::BLOCK,
            &mut args![x, y, n],
        )
    }

    fn split_heads(&mut self, gpu: usize, op: &SplitHeads) -> DeviceResult<()> {
        let SplitHeads {
            qkv,
            q,
            k,
            v,
            shape,
            dtype,
        } = *op;
        let (b, s, h, dh) = (shape.batch, shape.seq, shape.heads, shape.head_dim);
        let g = self.on(gpu)?;
        let el = el_bytes(dtype) as u64;
        let n = (b * s * h * dh) as u64;
        let qkv = Self::ptr(g, qkv, 3 * n * el)?;
        let (q, k, v) = (
            Self::ptr(g, q, n * el)?,
            Self::ptr(g, k, n * el)?,
            Self::ptr(g, v, n * el)?,
        );
        let (b, s, h, dh) = (b as i32, s as i32, h as i32, dh as i32);
        self.launch(
            gpu,
            ("split_heads", dtype),
            grid_for(n),
            super::source::BLOCK,
            &mut args![qkv, q, k, v, b, s, h, dh],
        )
    }

    fn softmax(&mut self, gpu: usize, op: &Softmax) -> DeviceResult<()> {
        let Softmax {
            scores,
            probs,
            rows,
            cols: s,
            causal,
            scale,
            dtype,
        } = *op;
        let g = self.on(gpu)?;
        let sc = Self::ptr(g, scores, (rows * s * 4) as u64)?;
        let p = Self::ptr(g, probs, (rows * s * el_bytes(dtype)) as u64)?;
        let (s, c) = (s as i32, causal as i32);
        self.launch(
            gpu,
            ("softmax", dtype),
            rows as u32,
            128,
            &mut args![sc, p, s, c, scale],
        )
    }

    fn merge_heads(
        &mut self,
        gpu: usize,
        o: DevPtr,
        out: DevPtr,
        shape: Heads,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        let (b, s, h, dh) = (shape.batch, shape.seq, shape.heads, shape.head_dim);
        let g = self.on(gpu)?;
        let bytes = (b * s * h * dh * el_bytes(dtype)) as u64;
        let (o, out) = (Self::ptr(g, o, bytes)?, Self::ptr(g, out, bytes)?);
        let n = (b * s * h * dh) as u64;
        let (b, s, h, dh) = (b as i32, s as i32, h as i32, dh as i32);
        self.launch(
            gpu,
            ("merge_heads", dtype),
            grid_for(n),
            super::source::BLOCK,
            &mut args![o, out, b, s, h, dh],
        )
    }

    fn fill_random(
        &mut self,
        gpu: usize,
        dst: DevPtr,
        n: usize,
        seed: u64,
        scale: f32,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        let g = self.on(gpu)?;
        let d = Self::ptr(g, dst, (n * el_bytes(dtype)) as u64)?;
        let n = n as u64;
        self.launch(
            gpu,
            ("fill_random", dtype),
            grid_for(n),
            super::source::BLOCK,
            &mut args![d, n, seed, scale],
        )
        .context("fill_random")
    }
}

/// cuBLAS's name of elements of `dtype`.
fn cuda_type(dtype: Dtype) -> cb::cudaDataType {
    match dtype {
        Dtype::Fp16 => cb::cudaDataType::CUDA_R_16F,
        Dtype::Fp32 => cb::cudaDataType::CUDA_R_32F,
        Dtype::Bf16 => cb::cudaDataType::CUDA_R_16BF,
    }
}
