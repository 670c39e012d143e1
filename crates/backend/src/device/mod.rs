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
pub mod error;
pub mod host_buffer;
pub mod mapped;
pub mod ops;
pub mod seeded;

pub use error::{Context, DeviceError, DeviceResult};
pub use host_buffer::HostBuffer;
pub use ops::{
    decode, el_bytes, encode, token_id, Act, DevPtr, Dtype, Embed, Gemm, Heads, LayerNorm, Mat,
    Softmax, SplitHeads, MAX_BATCH,
};

/// Which stream of a GPU an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Kernels, matrix products, device-to-host outputs, peer copies.
    Compute,
    /// Host-to-device weight copies.
    Copy,
    /// Peer copies of multi-path loading's pieces into this GPU (so they
    /// queue neither behind its weight copies nor its kernels).
    Peer,
    /// Device-to-host copies of evicted weights (`policy.offload`): the
    /// link's other direction, beside the copy stream's loads.
    Offload,
}

/// A recorded event; release it with [`Device::release`] once consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Event(pub u64);

/// A captured, instantiated graph of one GPU's compute-stream work
/// ([`Device::begin_capture`]); drop it with [`Device::drop_graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Graph(pub u64);

/// Achieved rate of `gemm` on `gpu`, FLOP/s: one untimed run, then `reps`
/// back to back between two events on the compute stream.
pub fn gemm_rate_of(
    dev: &mut dyn Device,
    gpu: usize,
    gemm: &Gemm,
    reps: usize,
) -> DeviceResult<f64> {
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
    /// PCI address of `gpu` (`0000:1b:00.0`), where the device has one:
    /// which host CPUs are near it (`replay --pin-cpus auto`).
    fn pci_bus_id(&self, _gpu: usize) -> Option<String> {
        None
    }
    /// Device memory free on `gpu` before the arena, bytes.
    fn free_memory(&self, gpu: usize) -> DeviceResult<u64>;
    /// Allocates each GPU's arena once: `arena_bytes` of device memory.
    fn init_arena(&mut self, arena_bytes: u64) -> DeviceResult<()>;
    /// Allocates host memory: pinned (page-locked, registered with the
    /// driver) or pageable. Fails with a clear message if memory is short.
    fn alloc_host(&mut self, bytes: u64, pinned: bool) -> DeviceResult<HostBuffer>;

    /// Copies `bytes` from `src[src_off..]` to `dst` on `gpu`'s copy stream.
    /// `src` must stay alive until the copy is done.
    fn copy_h2d(
        &mut self,
        gpu: usize,
        src: &HostBuffer,
        src_off: u64,
        dst: DevPtr,
        bytes: u64,
    ) -> DeviceResult<()> {
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
    ) -> DeviceResult<()> {
        self.copy_d2h_on(gpu, StreamKind::Compute, src, dst, dst_off, bytes)
    }
    /// Copies `bytes` from `src` on `gpu` to `dst[dst_off..]` on its
    /// `stream` (offloads use [`StreamKind::Offload`]).
    fn copy_d2h_on(
        &mut self,
        gpu: usize,
        stream: StreamKind,
        src: DevPtr,
        dst: &HostBuffer,
        dst_off: u64,
        bytes: u64,
    ) -> DeviceResult<()>;
    /// Copies `bytes` from `src` on `src_gpu` to `dst` on `dst_gpu` (peer
    /// link), on `dst_gpu`'s compute stream.
    fn copy_peer(
        &mut self,
        dst_gpu: usize,
        dst: DevPtr,
        src_gpu: usize,
        src: DevPtr,
        bytes: u64,
    ) -> DeviceResult<()>;

    /// Copies `bytes` from `src` on `src_gpu` to `dst` on `dst_gpu` (peer
    /// link), on `dst_gpu`'s `stream`.
    fn copy_peer_on(
        &mut self,
        stream: StreamKind,
        dst_gpu: usize,
        dst: DevPtr,
        src_gpu: usize,
        src: DevPtr,
        bytes: u64,
    ) -> DeviceResult<()>;

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
    ) -> DeviceResult<()>;
    /// Maps `bytes` of pinned `src` from `src_off` into `gpu`'s address
    /// space (direct host access): the returned address, and addresses
    /// after it within `bytes`, may be read by `gpu`'s kernels and matrix
    /// products as if they were in its arena; the reads cross the GPU's
    /// host link (CUDA: `cuMemHostGetDevicePointer` on memory allocated
    /// with `CU_MEMHOSTALLOC_DEVICEMAP`; CPU: the host bytes read in place).
    /// Nothing may be copied into it.
    ///
    /// # Safety
    /// `src` must stay alive, and its bytes in the range unchanged, for as
    /// long as kernels read the returned addresses (the device keeps the
    /// mapping, never undone: a read after `src` is gone reads freed
    /// memory).
    unsafe fn map_host(
        &mut self,
        gpu: usize,
        src: &HostBuffer,
        src_off: u64,
        bytes: u64,
    ) -> DeviceResult<DevPtr>;

    /// Whether `dst_gpu` can read `src_gpu`'s memory directly (peer access:
    /// NVLink or PCIe peer-to-peer); if not, activations go through the host.
    fn peer_access(&self, dst_gpu: usize, src_gpu: usize) -> bool;
    /// Sums `n` elements of `dtype` at `bufs[r]` on `gpus[r]` over the group and
    /// leaves the sum in every rank's buffer, on the compute streams (NCCL
    /// on CUDA, one communicator per ordered group).
    fn all_reduce(
        &mut self,
        gpus: &[usize],
        bufs: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()>;
    /// Gathers `n` elements of `dtype` at `send[r]` of every rank into
    /// `recv[q]` (`tp * n` elements, rank order) on every rank `q`.
    fn all_gather(
        &mut self,
        gpus: &[usize],
        send: &[DevPtr],
        recv: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()>;

    /// Records an event on a stream.
    fn record(&mut self, gpu: usize, stream: StreamKind) -> DeviceResult<Event>;
    /// Makes a stream wait for an event (of any GPU) before its later work.
    fn wait(&mut self, gpu: usize, stream: StreamKind, event: Event) -> DeviceResult<()>;
    /// Whether the event has completed.
    fn query(&mut self, event: Event) -> DeviceResult<bool>;
    /// Blocks until the event has completed.
    fn synchronize(&mut self, event: Event) -> DeviceResult<()>;
    /// Seconds between two completed events.
    fn elapsed_s(&mut self, start: Event, end: Event) -> DeviceResult<f64>;
    /// Returns an event to the device once nothing refers to it.
    fn release(&mut self, event: Event);
    /// Waits for all work on every stream of every GPU.
    fn synchronize_all(&mut self) -> DeviceResult<()>;

    /// Whether [`Device::begin_capture`] works on this device.
    fn graphs_supported(&self) -> bool {
        false
    }
    /// Starts capturing `gpu`'s compute stream: the [`Kernels`] issued to
    /// it are recorded into a graph, not run, until [`Device::end_capture`].
    /// Only kernels and matrix products may be issued to it meanwhile.
    fn begin_capture(&mut self, gpu: usize) -> DeviceResult<()> {
        Err(DeviceError::Invalid(format!(
            "{} device: GPU {gpu} cannot capture graphs",
            self.kind()
        )))
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
    ) -> DeviceResult<Option<Graph>> {
        let _ = (gpu, reuse, ok);
        Err(DeviceError::Invalid(format!(
            "{} device: no capture to end",
            self.kind()
        )))
    }
    /// Runs a graph on its GPU's compute stream, in issue order with the
    /// stream's other work.
    fn launch_graph(&mut self, graph: Graph) -> DeviceResult<()> {
        Err(DeviceError::Invalid(format!(
            "{} device: unknown graph {}",
            self.kind(),
            graph.0
        )))
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
    fn gemm(&mut self, gpu: usize, g: &Gemm) -> DeviceResult<()>;
    /// Token + position (+ type) embeddings of a batch.
    fn embed(&mut self, gpu: usize, e: &Embed) -> DeviceResult<()>;
    /// Row-wise layer norm ([`LayerNorm`]).
    fn layer_norm(&mut self, gpu: usize, op: &LayerNorm) -> DeviceResult<()>;
    /// `y[r, c] = act(y[r, c] + bias[c])` over `rows x cols` elements of `dtype`.
    #[allow(clippy::too_many_arguments)]
    fn bias_act(
        &mut self,
        gpu: usize,
        y: DevPtr,
        bias: DevPtr,
        rows: usize,
        cols: usize,
        act: Act,
        dtype: Dtype,
    ) -> DeviceResult<()>;
    /// `x[i] += y[i]` over `n` elements of `dtype`.
    fn add(&mut self, gpu: usize, x: DevPtr, y: DevPtr, n: usize, dtype: Dtype)
        -> DeviceResult<()>;
    /// Splits `qkv` into per-head `q, k, v` ([`SplitHeads`]).
    fn split_heads(&mut self, gpu: usize, op: &SplitHeads) -> DeviceResult<()>;
    /// Row softmax of scores into probabilities ([`Softmax`]).
    fn softmax(&mut self, gpu: usize, op: &Softmax) -> DeviceResult<()>;
    /// Merges `o [B*H, S, dh]` back into `out [B*S, H*dh]` (elements of `dtype`).
    fn merge_heads(
        &mut self,
        gpu: usize,
        o: DevPtr,
        out: DevPtr,
        shape: Heads,
        dtype: Dtype,
    ) -> DeviceResult<()>;
    /// Fills `n` elements of `dtype` at `dst` with seeded values in `[-scale, scale]`.
    fn fill_random(
        &mut self,
        gpu: usize,
        dst: DevPtr,
        n: usize,
        seed: u64,
        scale: f32,
        dtype: Dtype,
    ) -> DeviceResult<()>;
}

/// Opens a device by name: `cuda` (fails with a clear message when no driver
/// or GPU is found) or `cpu` (with `cpu_gpus` emulated GPUs).
pub fn open(kind: &str, cpu_gpus: usize) -> DeviceResult<Box<dyn Device>> {
    match kind {
        "cuda" => Ok(Box::new(cuda::CudaDevice::open()?)),
        "cpu" => Ok(Box::new(cpu::CpuDevice::new(cpu_gpus))),
        other => Err(DeviceError::Invalid(format!(
            "unknown device `{other}`; expected `cuda` or `cpu`"
        ))),
    }
}
