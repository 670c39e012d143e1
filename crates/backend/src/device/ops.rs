//! The operations of the forward pass as values: matrix products in
//! cuBLAS's column-major convention, the small kernels' parameters, and the
//! definitions (activations, synthetic tokens) every device computes alike.

/// A byte offset into one GPU's arena (pool first, then workspace).
pub type DevPtr = u64;

pub use switchyard_core::model::Dtype;

/// Bytes of one element of `dtype` (weights and activations of a model of
/// that type).
pub fn el_bytes(dtype: Dtype) -> usize {
    dtype.bytes() as usize
}

/// Little-endian elements of `dtype` read as f32.
pub fn decode(dtype: Dtype, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        Dtype::Fp16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::Bf16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::Fp32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

/// Writes `v` as little-endian elements of `dtype` into `out` (rounded to
/// nearest even, as the CUDA kernels' conversions do); `out` holds
/// `v.len()` elements.
pub fn encode(dtype: Dtype, v: &[f32], out: &mut [u8]) {
    let el = el_bytes(dtype);
    for (c, x) in out.chunks_exact_mut(el).zip(v) {
        match dtype {
            Dtype::Fp16 => c.copy_from_slice(&half::f16::from_f32(*x).to_le_bytes()),
            Dtype::Bf16 => c.copy_from_slice(&half::bf16::from_f32(*x).to_le_bytes()),
            Dtype::Fp32 => c.copy_from_slice(&x.to_le_bytes()),
        }
    }
}

/// Elementwise activation fused after a bias add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Identity.
    None,
    /// max(x, 0) (OPT).
    Relu,
    /// GELU, tanh approximation (BERT, GPT-2).
    Gelu,
    /// tanh (BERT's pooler).
    Tanh,
}

impl Act {
    /// The activation applied to `x` (the same formula on every device).
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Gelu => 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh()),
            Act::Tanh => x.tanh(),
        }
    }

    /// Code used by the CUDA kernel.
    pub fn code(self) -> i32 {
        match self {
            Act::None => 0,
            Act::Relu => 1,
            Act::Gelu => 2,
            Act::Tanh => 3,
        }
    }
}

/// A column-major matrix operand of a [`Gemm`]: its address, leading
/// dimension, and whether the product reads it transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mat {
    /// Address.
    pub at: DevPtr,
    /// Leading dimension (elements between columns).
    pub ld: usize,
    /// Read transposed.
    pub t: bool,
}

impl Mat {
    /// The matrix at `at` with leading dimension `ld`, read as it is.
    pub fn n(at: DevPtr, ld: usize) -> Mat {
        Mat { at, ld, t: false }
    }

    /// The matrix at `at` with leading dimension `ld`, read transposed.
    pub fn t(at: DevPtr, ld: usize) -> Mat {
        Mat { at, ld, t: true }
    }
}

/// A (strided, batched) matrix product in cuBLAS's column-major convention:
/// `C[i + j*ldc] = alpha * sum_p op(A)[i,p] * op(B)[p,j] + beta * C`, with
/// `op(A)[i,p] = A[i + p*lda]` (or `A[p + i*lda]` when `ta`), for `batch`
/// products whose matrices start `stride_*` elements apart. A and B are of
/// `dtype`; C is of `dtype`, or f32 when `c_f32`; accumulation is f32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    /// Transpose A.
    pub ta: bool,
    /// Transpose B.
    pub tb: bool,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// A's address.
    pub a: DevPtr,
    /// A's leading dimension.
    pub lda: usize,
    /// B's address.
    pub b: DevPtr,
    /// B's leading dimension.
    pub ldb: usize,
    /// C's address.
    pub c: DevPtr,
    /// C's leading dimension.
    pub ldc: usize,
    /// Number of products.
    pub batch: usize,
    /// Elements between consecutive A matrices.
    pub stride_a: usize,
    /// Elements between consecutive B matrices.
    pub stride_b: usize,
    /// Elements between consecutive C matrices.
    pub stride_c: usize,
    /// C is f32 rather than fp16.
    pub c_f32: bool,
    /// Scale of the product.
    pub alpha: f32,
    /// Element type of A, B and (unless `c_f32`) C.
    pub dtype: Dtype,
}

impl Gemm {
    /// A plain (unbatched) product `C = op(A) op(B)` of `m x k` by `k x n`,
    /// with fp16 operands and output and alpha 1 (see [`Gemm::typed`]).
    pub fn plain(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: Mat) -> Gemm {
        Gemm {
            ta: a.t,
            tb: b.t,
            m,
            n,
            k,
            a: a.at,
            lda: a.ld,
            b: b.at,
            ldb: b.ld,
            c: c.at,
            ldc: c.ld,
            batch: 1,
            stride_a: 0,
            stride_b: 0,
            stride_c: 0,
            c_f32: false,
            alpha: 1.0,
            dtype: Dtype::Fp16,
        }
    }

    /// The same product over elements of `dtype`.
    pub fn typed(self, dtype: Dtype) -> Gemm {
        Gemm { dtype, ..self }
    }

    /// Bytes of one element of A and B.
    pub fn el(&self) -> usize {
        el_bytes(self.dtype)
    }

    /// Bytes of one element of C.
    pub fn c_el(&self) -> usize {
        if self.c_f32 {
            4
        } else {
            self.el()
        }
    }

    /// FLOPs of the product (all batches).
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.batch) as f64
    }
}

/// Up to this many requests per batch (the embedding kernel takes their ids
/// by value).
pub const MAX_BATCH: usize = 64;

/// The token ids of one batch: request `ids[b]`'s token at position `s` is
/// [`token_id`]`(ids[b], s, vocab)`, computed on the device.
#[derive(Debug, Clone, Copy)]
pub struct Embed {
    /// Output `[batch*seq, hidden]`.
    pub out: DevPtr,
    /// Token embedding `[vocab, hidden]`.
    pub tok: DevPtr,
    /// Position embedding `[positions, hidden]`.
    pub pos: DevPtr,
    /// Token type embedding row 0 `[hidden]`, when the model has one.
    pub typ: Option<DevPtr>,
    /// Request ids, `batch` of them.
    pub ids: [u32; MAX_BATCH],
    /// Requests in the batch.
    pub batch: usize,
    /// Tokens per request.
    pub seq: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Offset added to positions (OPT's learned positions start at 2).
    pub pos_offset: usize,
    /// Element type of the tables and the output.
    pub dtype: Dtype,
}

/// The synthetic token at position `s` of request `req` (the same on every device).
pub fn token_id(req: u32, s: u32, vocab: u32) -> u32 {
    let mut x =
        req.wrapping_mul(0x9E37_79B1) ^ s.wrapping_mul(0x85EB_CA77).wrapping_add(0x0001_2345);
    x ^= x >> 15;
    x = x.wrapping_mul(0x2C1B_3C6D);
    x ^= x >> 12;
    x % vocab
}

/// Row-wise layer norm of `rows x cols` values of `dtype`:
/// `y = (x - mean) / sqrt(var + eps) * gain + bias`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNorm {
    /// Input.
    pub x: DevPtr,
    /// Output (may be `x`).
    pub y: DevPtr,
    /// Gain, `cols` values.
    pub gain: DevPtr,
    /// Bias, `cols` values.
    pub bias: DevPtr,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Added to the variance.
    pub eps: f32,
    /// Element type of input, output, gain and bias.
    pub dtype: Dtype,
}

/// The shape of multi-head attention's per-head tensors: `batch` requests
/// of `seq` tokens, `heads` heads of `head_dim` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    /// Requests.
    pub batch: usize,
    /// Tokens per request.
    pub seq: usize,
    /// Heads.
    pub heads: usize,
    /// Values per head.
    pub head_dim: usize,
}

impl Heads {
    /// Elements of one `[batch * heads, seq, head_dim]` tensor.
    pub fn numel(&self) -> usize {
        self.batch * self.seq * self.heads * self.head_dim
    }
}

/// Splits `qkv [B*S, 3*H*dh]` into `q, k, v`, each `[B*H, S, dh]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitHeads {
    /// Input.
    pub qkv: DevPtr,
    /// Queries out.
    pub q: DevPtr,
    /// Keys out.
    pub k: DevPtr,
    /// Values out.
    pub v: DevPtr,
    /// The shape.
    pub shape: Heads,
    /// Element type.
    pub dtype: Dtype,
}

/// Row softmax of f32 scores `[rows, cols]` into probabilities of `dtype`, with
/// `scale` applied first and, when `causal`, the keys after each query
/// masked (row `r` is query `r % cols`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Softmax {
    /// f32 scores.
    pub scores: DevPtr,
    /// Probabilities out.
    pub probs: DevPtr,
    /// Rows (`B*H*S`).
    pub rows: usize,
    /// Columns (keys, `S`).
    pub cols: usize,
    /// Mask keys after the query.
    pub causal: bool,
    /// Scale applied to the scores first.
    pub scale: f32,
    /// Element type of the probabilities.
    pub dtype: Dtype,
}
