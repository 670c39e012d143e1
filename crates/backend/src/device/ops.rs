//! The operations of the forward pass as values: matrix products in
//! cuBLAS's column-major convention, the small kernels' parameters, and the
//! definitions (activations, synthetic tokens) every device computes alike.

/// A byte offset into one GPU's arena (pool first, then workspace).
pub type DevPtr = u64;

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
/// products whose matrices start `stride_*` elements apart. A and B are fp16;
/// C is fp16, or f32 when `c_f32`; accumulation is f32.
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
}

impl Gemm {
    /// A plain (unbatched) product `C = op(A) op(B)` of `m x k` by `k x n`,
    /// with fp16 output and alpha 1.
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

/// Row-wise layer norm of `rows x cols` fp16 values:
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
}

/// Row softmax of f32 scores `[rows, cols]` into fp16 probabilities, with
/// `scale` applied first and, when `causal`, the keys after each query
/// masked (row `r` is query `r % cols`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Softmax {
    /// f32 scores.
    pub scores: DevPtr,
    /// fp16 probabilities out.
    pub probs: DevPtr,
    /// Rows (`B*H*S`).
    pub rows: usize,
    /// Columns (keys, `S`).
    pub cols: usize,
    /// Mask keys after the query.
    pub causal: bool,
    /// Scale applied to the scores first.
    pub scale: f32,
}
