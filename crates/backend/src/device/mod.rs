//! Devices behind one trait, as candle does it: [`cuda::CudaDevice`] through
//! cudarc (the CUDA libraries are loaded at run time, so building needs no
//! CUDA) and [`cpu::CpuDevice`] (real memcpy and real matrix products on the
//! host), so the replay machinery runs in CI and on laptops.
//!
//! A device holds, per GPU, one *arena* of device memory allocated once at
//! start: the weight pool (handed out by offset by the scheduler) followed by
//! the activation workspace. Addresses are byte offsets into that arena
//! ([`DevPtr`]). Each GPU has two streams: `Copy` (host-to-device weight
//! copies, in issue order) and `Compute` (everything else, in issue order).
//! Events order the two, as CUDA events do. All operations are asynchronous
//! on CUDA and immediate on the CPU.
//!
//! Matrix products follow cuBLAS's column-major convention ([`Gemm`]), so the
//! forward pass is written once for both devices.

pub mod cpu;
pub mod cuda;
pub mod host_buffer;
pub mod seeded;

pub use host_buffer::HostBuffer;

/// A byte offset into one GPU's arena (pool first, then workspace).
pub type DevPtr = u64;

/// Which stream of a GPU an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Kernels, matrix products, device-to-host outputs, peer copies.
    Compute,
    /// Host-to-device weight copies.
    Copy,
}

/// A recorded event; release it with [`Device::release`] once consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Event(pub u64);

/// A captured, instantiated graph of one GPU's compute-stream work
/// ([`Device::begin_capture`]); drop it with [`Device::drop_graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Graph(pub u64);

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
    /// A plain (unbatched) product with fp16 output and alpha 1.
    #[allow(clippy::too_many_arguments)]
    pub fn plain(
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        a: DevPtr,
        lda: usize,
        b: DevPtr,
        ldb: usize,
        c: DevPtr,
        ldc: usize,
    ) -> Gemm {
        Gemm {
            ta,
            tb,
            m,
            n,
            k,
            a,
            lda,
            b,
            ldb,
            c,
            ldc,
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

/// Achieved rate of `gemm` on `gpu`, FLOP/s: one untimed run, then `reps`
/// back to back between two events on the compute stream.
pub fn gemm_rate_of(
    dev: &mut dyn Device,
    gpu: usize,
    gemm: &Gemm,
    reps: usize,
) -> anyhow::Result<f64> {
    let reps = reps.max(1);
    dev.gemm(gpu, gemm)?;
    let a = dev.record(gpu, StreamKind::Compute)?;
    for _ in 0..reps {
        dev.gemm(gpu, gemm)?;
    }
    let b = dev.record(gpu, StreamKind::Compute)?;
    dev.synchronize(b)?;
    let s = dev.elapsed_s(a, b)?;
    dev.release(a);
    dev.release(b);
    Ok(gemm.flops() * reps as f64 / s.max(1e-12))
}

/// A device: GPUs with arenas, streams and events, and the copies the
/// swapper needs; the forward pass's operations are its [`Kernels`].
pub trait Device: Kernels {
    /// Short name: `cuda` or `cpu`.
    fn kind(&self) -> &'static str;
    /// What it runs on, e.g. `1 x NVIDIA H200 (139.8 GiB)`.
    fn describe(&self) -> String;
    /// Number of GPUs.
    fn gpus(&self) -> usize;
    /// Total device memory of `gpu`, bytes (`None` for emulated GPUs).
    fn total_memory(&self, gpu: usize) -> Option<u64>;
    /// Device memory free on `gpu` before the arena, bytes.
    fn free_memory(&self, gpu: usize) -> anyhow::Result<u64>;
    /// Allocates each GPU's arena once: `arena_bytes` of device memory.
    fn init_arena(&mut self, arena_bytes: u64) -> anyhow::Result<()>;
    /// Allocates host memory: pinned (page-locked, registered with the
    /// driver) or pageable. Fails with a clear message if memory is short.
    fn alloc_host(&mut self, bytes: u64, pinned: bool) -> anyhow::Result<HostBuffer>;

    /// Copies `bytes` from `src[src_off..]` to `dst` on `gpu`'s copy stream.
    /// `src` must stay alive until the copy is done.
    fn copy_h2d(
        &mut self,
        gpu: usize,
        src: &HostBuffer,
        src_off: u64,
        dst: DevPtr,
        bytes: u64,
    ) -> anyhow::Result<()> {
        self.copy_h2d_on(gpu, StreamKind::Copy, src, src_off, dst, bytes)
    }
    /// Copies `bytes` from `src` on `gpu` to `dst[dst_off..]` on its compute stream.
    fn copy_d2h(
        &mut self,
        gpu: usize,
        src: DevPtr,
        dst: &HostBuffer,
        dst_off: u64,
        bytes: u64,
    ) -> anyhow::Result<()>;
    /// Copies `bytes` from `src` on `src_gpu` to `dst` on `dst_gpu` (peer
    /// link), on `dst_gpu`'s compute stream.
    fn copy_peer(
        &mut self,
        dst_gpu: usize,
        dst: DevPtr,
        src_gpu: usize,
        src: DevPtr,
        bytes: u64,
    ) -> anyhow::Result<()>;

    /// Copies `bytes` from `src[src_off..]` to `dst` on `gpu`'s `stream`
    /// (activations handed between pipeline stages through the host use the
    /// compute stream, so they never queue behind weight loads).
    fn copy_h2d_on(
        &mut self,
        gpu: usize,
        stream: StreamKind,
        src: &HostBuffer,
        src_off: u64,
        dst: DevPtr,
        bytes: u64,
    ) -> anyhow::Result<()>;
    /// Whether `dst_gpu` can read `src_gpu`'s memory directly (peer access:
    /// NVLink or PCIe peer-to-peer); if not, activations go through the host.
    fn peer_access(&self, dst_gpu: usize, src_gpu: usize) -> bool;
    /// Sums `n` fp16 elements at `bufs[r]` on `gpus[r]` over the group and
    /// leaves the sum in every rank's buffer, on the compute streams (NCCL
    /// on CUDA, one communicator per ordered group).
    fn all_reduce(&mut self, gpus: &[usize], bufs: &[DevPtr], n: usize) -> anyhow::Result<()>;
    /// Gathers `n` fp16 elements at `send[r]` of every rank into
    /// `recv[q]` (`tp * n` elements, rank order) on every rank `q`.
    fn all_gather(
        &mut self,
        gpus: &[usize],
        send: &[DevPtr],
        recv: &[DevPtr],
        n: usize,
    ) -> anyhow::Result<()>;

    /// Records an event on a stream.
    fn record(&mut self, gpu: usize, stream: StreamKind) -> anyhow::Result<Event>;
    /// Makes a stream wait for an event (of any GPU) before its later work.
    fn wait(&mut self, gpu: usize, stream: StreamKind, event: Event) -> anyhow::Result<()>;
    /// Whether the event has completed.
    fn query(&mut self, event: Event) -> anyhow::Result<bool>;
    /// Blocks until the event has completed.
    fn synchronize(&mut self, event: Event) -> anyhow::Result<()>;
    /// Seconds between two completed events.
    fn elapsed_s(&mut self, start: Event, end: Event) -> anyhow::Result<f64>;
    /// Returns an event to the device once nothing refers to it.
    fn release(&mut self, event: Event);
    /// Waits for all work on every stream of every GPU.
    fn synchronize_all(&mut self) -> anyhow::Result<()>;

    /// Whether [`Device::begin_capture`] works on this device.
    fn graphs_supported(&self) -> bool {
        false
    }
    /// Starts capturing `gpu`'s compute stream: the [`Kernels`] issued to
    /// it are recorded into a graph, not run, until [`Device::end_capture`].
    /// Only kernels and matrix products may be issued to it meanwhile.
    fn begin_capture(&mut self, gpu: usize) -> anyhow::Result<()> {
        anyhow::bail!("{} device: GPU {gpu} cannot capture graphs", self.kind())
    }
    /// Ends `gpu`'s capture and makes the graph launchable. With `reuse`
    /// (a graph of the same GPU), its executable is updated in place when
    /// the topology matches (cheaper than a new one) and `reuse` returned;
    /// otherwise `reuse` is dropped and a new graph returned. With `ok`
    /// false (issuing failed midway) the capture is discarded and `None`
    /// returned.
    fn end_capture(
        &mut self,
        gpu: usize,
        reuse: Option<Graph>,
        ok: bool,
    ) -> anyhow::Result<Option<Graph>> {
        let _ = (gpu, reuse, ok);
        anyhow::bail!("{} device: no capture to end", self.kind())
    }
    /// Runs a graph on its GPU's compute stream, in issue order with the
    /// stream's other work.
    fn launch_graph(&mut self, graph: Graph) -> anyhow::Result<()> {
        anyhow::bail!("{} device: unknown graph {}", self.kind(), graph.0)
    }
    /// Frees a graph (its launches already issued still run).
    fn drop_graph(&mut self, graph: Graph) {
        let _ = graph;
    }
}

/// The operations of the forward pass, each on a GPU's compute stream:
/// GEMMs (cuBLAS on CUDA) and the small kernels (NVRTC on CUDA).
pub trait Kernels {
    /// Runs a matrix product on `gpu`'s compute stream.
    fn gemm(&mut self, gpu: usize, g: &Gemm) -> anyhow::Result<()>;
    /// Token + position (+ type) embeddings of a batch.
    fn embed(&mut self, gpu: usize, e: &Embed) -> anyhow::Result<()>;
    /// Row-wise layer norm: `y = (x - mean) / sqrt(var + eps) * g + b`, `rows x cols` fp16.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm(
        &mut self,
        gpu: usize,
        x: DevPtr,
        y: DevPtr,
        g: DevPtr,
        b: DevPtr,
        rows: usize,
        cols: usize,
        eps: f32,
    ) -> anyhow::Result<()>;
    /// `y[r, c] = act(y[r, c] + bias[c])`; `ld` is the distance between rows.
    fn bias_act(
        &mut self,
        gpu: usize,
        y: DevPtr,
        bias: DevPtr,
        rows: usize,
        cols: usize,
        act: Act,
    ) -> anyhow::Result<()>;
    /// `x[i] += y[i]` over `n` fp16 elements.
    fn add(&mut self, gpu: usize, x: DevPtr, y: DevPtr, n: usize) -> anyhow::Result<()>;
    /// Splits `qkv [B*S, 3*H*dh]` into `q, k, v`, each `[B*H, S, dh]`.
    #[allow(clippy::too_many_arguments)]
    fn split_heads(
        &mut self,
        gpu: usize,
        qkv: DevPtr,
        q: DevPtr,
        k: DevPtr,
        v: DevPtr,
        b: usize,
        s: usize,
        h: usize,
        dh: usize,
    ) -> anyhow::Result<()>;
    #[allow(clippy::too_many_arguments)]
    /// Row softmax of f32 scores `[B*H*S, S]` into fp16 probabilities, with
    /// `scale` applied first and keys after the query masked when `causal`.
    fn softmax(
        &mut self,
        gpu: usize,
        scores: DevPtr,
        probs: DevPtr,
        rows: usize,
        s: usize,
        causal: bool,
        scale: f32,
    ) -> anyhow::Result<()>;
    /// Merges `o [B*H, S, dh]` back into `out [B*S, H*dh]`.
    #[allow(clippy::too_many_arguments)]
    fn merge_heads(
        &mut self,
        gpu: usize,
        o: DevPtr,
        out: DevPtr,
        b: usize,
        s: usize,
        h: usize,
        dh: usize,
    ) -> anyhow::Result<()>;
    /// Fills `n` fp16 elements at `dst` with seeded values in `[-scale, scale]`.
    fn fill_random(
        &mut self,
        gpu: usize,
        dst: DevPtr,
        n: usize,
        seed: u64,
        scale: f32,
    ) -> anyhow::Result<()>;
}

/// Opens a device by name: `cuda` (fails with a clear message when no driver
/// or GPU is found) or `cpu` (with `cpu_gpus` emulated GPUs).
pub fn open(kind: &str, cpu_gpus: usize) -> anyhow::Result<Box<dyn Device>> {
    match kind {
        "cuda" => Ok(Box::new(cuda::CudaDevice::open()?)),
        "cpu" => Ok(Box::new(cpu::CpuDevice::new(cpu_gpus))),
        other => anyhow::bail!("unknown device `{other}`; expected `cuda` or `cpu`"),
    }
}
