//! The CUDA device through cudarc's driver, cuBLAS and NVRTC bindings, all
//! loaded at run time (`dynamic-loading`): the crate builds without CUDA and
//! fails with a clear message where no driver or GPU is found.
//!
//! Per GPU: one arena from `cuMemAlloc` (allocated once), a compute stream
//! and a copy stream (non-blocking), one cuBLAS handle on the compute stream
//! with its workspace allocated at start, and the NVRTC kernels of
//! [`source`].

use super::error::invalid;
use super::mapped::MappedRanges;
use super::{
    el_bytes, Context, DevPtr, Device, DeviceError, DeviceResult, Dtype, Event, Graph, HostBuffer,
    StreamKind,
};
use cudarc::cublas::sys as cb;
use cudarc::driver::{result as dr, sys, CudaContext, CudaEvent, CudaFunction, CudaStream};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;
use switchyard_core::hardware::GIB;

const CUBLAS_WORKSPACE: usize = 32 << 20;

/// Device memory from `cuMemAlloc`, freed (in its context) on drop.
struct DeviceAlloc {
    ctx: Arc<CudaContext>,
    base: sys::CUdeviceptr,
    bytes: u64,
}

impl DeviceAlloc {
    /// `bytes` of device memory in `ctx` (bound to this thread first).
    fn new(ctx: &Arc<CudaContext>, bytes: u64) -> DeviceResult<DeviceAlloc> {
        ctx.bind_to_thread()?;
        // SAFETY: a plain allocation in the bound context; the pointer is
        // owned by the value returned and freed once, in `Drop`.
        let base = unsafe { dr::malloc_sync(bytes as usize) }?;
        Ok(DeviceAlloc {
            ctx: ctx.clone(),
            base,
            bytes,
        })
    }

    /// The address of `[at, at + bytes)`, checked against the allocation.
    fn at(&self, at: DevPtr, bytes: u64) -> DeviceResult<sys::CUdeviceptr> {
        if at + bytes > self.bytes {
            invalid!(
                "device access [{at}, +{bytes}) outside the arena of {} bytes",
                self.bytes
            );
        }
        Ok(self.base + at)
    }
}

impl Drop for DeviceAlloc {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: `base` came from `cuMemAlloc` in this context and is
            // freed only here; the device drains its streams before its
            // allocations drop (`CudaDevice::drop`).
            let _ = unsafe { dr::free_sync(self.base) };
        }
    }
}

/// A cuBLAS handle bound to one stream, destroyed on drop. (cudarc's
/// `CudaBlas` panics when destroying fails, which after a sticky CUDA error
/// would hide the error being reported.)
struct BlasHandle(cb::cublasHandle_t);

impl BlasHandle {
    /// A handle in the bound context, issuing on `stream`.
    fn new(stream: &CudaStream) -> DeviceResult<BlasHandle> {
        let h = BlasHandle(cudarc::cublas::result::create_handle()?);
        // SAFETY: the handle is live (owned by `h`) and the stream is live
        // for the handle's life (both belong to the same `Gpu`).
        unsafe { cudarc::cublas::result::set_stream(h.0, stream.cu_stream() as _) }?;
        Ok(h)
    }
}

impl Drop for BlasHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from `cublasCreate` and is destroyed only here.
        let _ = unsafe { cudarc::cublas::result::destroy_handle(self.0) };
    }
}

struct Gpu {
    ctx: Arc<CudaContext>,
    compute: Arc<CudaStream>,
    copy: Arc<CudaStream>,
    /// Multi-path loading's peer copies into this GPU.
    peer: Arc<CudaStream>,
    /// Offloads: evicted weights copied back to host memory.
    offload: Arc<CudaStream>,
    /// Dropped before its workspace (fields drop in order).
    blas: BlasHandle,
    _blas_workspace: DeviceAlloc,
    /// Kernels by name (of [`source::NAMES`]) and element type.
    funcs: HashMap<(&'static str, Dtype), CudaFunction>,
    arena: Option<DeviceAlloc>,
    /// Pinned host ranges its kernels read in place (`map_host`).
    mapped: MappedRanges,
    free_events: Vec<CudaEvent>,
}

impl Gpu {
    /// The stream of `kind`.
    fn stream(&self, kind: StreamKind) -> &Arc<CudaStream> {
        match kind {
            StreamKind::Copy => &self.copy,
            StreamKind::Compute => &self.compute,
            StreamKind::Peer => &self.peer,
            StreamKind::Offload => &self.offload,
        }
    }
}

/// NVIDIA GPUs through the CUDA driver API.
///
/// Fields drop in order: graphs, communicators and events go before the
/// GPUs whose contexts, streams and memory they use.
pub struct CudaDevice {
    graphs: HashMap<u64, (usize, graph::GraphExec)>,
    next_graph: u64,
    capturing: Option<usize>,
    comms: HashMap<Vec<usize>, collective::Comms>,
    events: HashMap<u64, (usize, CudaEvent)>,
    next_event: u64,
    gpus: Vec<Gpu>,
    current: usize,
    names: Vec<String>,
    peer: Vec<Vec<bool>>,
}

mod collective;
mod graph;
pub use collective::nccl_present;
mod open;
pub mod source;

/// Whether a CUDA driver library can be loaded here (no GPU needed).
pub fn driver_present() -> bool {
    // SAFETY: only tries to load the library; calls nothing in it.
    unsafe { sys::is_culib_present() }
}

impl CudaDevice {
    /// Binds `gpu`'s context to this thread (when another is bound) and
    /// returns the GPU.
    fn on(&mut self, gpu: usize) -> DeviceResult<&Gpu> {
        if gpu >= self.gpus.len() {
            invalid!(
                "GPU {gpu} does not exist (this machine has {})",
                self.gpus.len()
            );
        }
        if self.current != gpu {
            self.gpus[gpu].ctx.bind_to_thread()?;
            self.current = gpu;
        }
        Ok(&self.gpus[gpu])
    }

    /// `gpu`'s arena address of `[at, at + bytes)`, or the mapped device
    /// address of host memory ([`Device::map_host`]), checked.
    fn ptr(g: &Gpu, at: DevPtr, bytes: u64) -> DeviceResult<sys::CUdeviceptr> {
        if MappedRanges::is_mapped(at) {
            return g.mapped.resolve(at, bytes);
        }
        match &g.arena {
            Some(a) => a.at(at, bytes),
            None => invalid!("device access [{at}, +{bytes}) before the arena is allocated"),
        }
    }

    /// The event behind a handle, and its GPU.
    fn event(&self, event: Event) -> DeviceResult<(usize, &CudaEvent)> {
        match self.events.get(&event.0) {
            Some((gpu, ev)) => Ok((*gpu, ev)),
            None => invalid!("unknown event {}", event.0),
        }
    }

    fn launch(
        &mut self,
        gpu: usize,
        (name, dtype): (&'static str, Dtype),
        grid: u32,
        block: u32,
        args: &mut [*mut c_void],
    ) -> DeviceResult<()> {
        let g = self.on(gpu)?;
        let Some(f) = g.funcs.get(&(name, dtype)) else {
            invalid!("no kernel {name} for {} elements", dtype.name());
        };
        let f = f.cu_function();
        // SAFETY: `f` is a kernel of the module loaded in this GPU's context
        // (bound by `on`), kept alive by `funcs`; `args` holds one pointer
        // per kernel parameter, each to a live value of the parameter's type
        // (the `args!` call sites follow the kernels' signatures in
        // `source`), and every device address among them was checked
        // against the arena.
        unsafe {
            dr::launch_kernel(
                f,
                (grid.max(1), 1, 1),
                (block, 1, 1),
                0,
                g.compute.cu_stream(),
                args,
            )
        }
        .with_context(|| format!("kernel {}", source::kernel_name(name, dtype)))
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        // Work in flight may still use the memory about to be freed.
        for g in &self.gpus {
            let _ = g.compute.synchronize();
            let _ = g.copy.synchronize();
            let _ = g.peer.synchronize();
        }
    }
}

fn grid_for(n: u64) -> u32 {
    n.div_ceil(source::BLOCK as u64).clamp(1, 8192) as u32
}

macro_rules! args {
    ($($x:expr),* $(,)?) => { [$( &$x as *const _ as *mut c_void ),*] };
}

mod kernels;

impl Device for CudaDevice {
    fn kind(&self) -> &'static str {
        "cuda"
    }

    fn describe(&self) -> String {
        let mem = self
            .gpus
            .first()
            .and_then(|g| g.ctx.total_mem().ok())
            .unwrap_or(0);
        format!(
            "{} x {} ({:.1} GiB)",
            self.gpus.len(),
            self.names[0],
            mem as f64 / GIB
        )
    }

    fn gpus(&self) -> usize {
        self.gpus.len()
    }

    fn total_memory(&self, gpu: usize) -> Option<u64> {
        self.gpus.get(gpu)?.ctx.total_mem().ok().map(|b| b as u64)
    }

    fn pci_bus_id(&self, gpu: usize) -> Option<String> {
        use cudarc::driver::sys::CUdevice_attribute as A;
        let ctx = &self.gpus.get(gpu)?.ctx;
        let domain = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID).ok()?;
        let bus = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID).ok()?;
        let device = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID).ok()?;
        Some(format!("{domain:04x}:{bus:02x}:{device:02x}.0"))
    }

    fn free_memory(&self, gpu: usize) -> DeviceResult<u64> {
        let (free, _) = self.gpus[gpu].ctx.mem_get_info()?;
        self.gpus[self.current].ctx.bind_to_thread()?;
        Ok(free as u64)
    }

    fn init_arena(&mut self, arena_bytes: u64) -> DeviceResult<()> {
        for i in 0..self.gpus.len() {
            let free = self.free_memory(i)?;
            if arena_bytes > free {
                return Err(DeviceError::OutOfMemory(format!(
                    "GPU {i} has {:.2} GiB free but the weight pool and workspace need {:.2} GiB; lower `cluster.gpu_memory_gib` in the workload",
                    free as f64 / GIB,
                    arena_bytes as f64 / GIB
                )));
            }
            self.on(i)?;
            self.drop_graphs_of(i);
            let g = &mut self.gpus[i];
            g.arena = None;
            let arena = DeviceAlloc::new(&g.ctx, arena_bytes).map_err(|e| {
                DeviceError::OutOfMemory(format!(
                    "GPU {i}: cannot allocate the {arena_bytes}-byte arena: {e}"
                ))
            })?;
            g.arena = Some(arena);
        }
        Ok(())
    }

    fn alloc_host(&mut self, bytes: u64, pinned: bool) -> DeviceResult<HostBuffer> {
        if !pinned {
            return HostBuffer::heap(bytes, false);
        }
        self.on(0)?;
        // Portable (every context copies from it) and mapped (kernels may
        // read it in place: direct host access, `map_host`).
        let flags = sys::CU_MEMHOSTALLOC_PORTABLE | sys::CU_MEMHOSTALLOC_DEVICEMAP;
        // SAFETY: a plain page-locked allocation in the bound context; the
        // pointer is handed to the `HostBuffer`, which frees it once.
        let p = unsafe { dr::malloc_host(bytes.max(1) as usize, flags) }.map_err(|e| {
            DeviceError::OutOfMemory(format!(
                "cuMemHostAlloc of {:.2} GiB pinned memory failed: {e}",
                bytes as f64 / GIB
            ))
        })?;
        // SAFETY: `p` points to `bytes.max(1)` bytes from `cuMemHostAlloc`,
        // owned by nothing else.
        Ok(unsafe { HostBuffer::from_cuda_pinned(p as *mut u8, bytes) })
    }

    fn copy_h2d_on(
        &mut self,
        gpu: usize,
        stream: StreamKind,
        src: &HostBuffer,
        src_off: u64,
        dst: DevPtr,
        bytes: u64,
    ) -> DeviceResult<()> {
        if src_off + bytes > src.len() {
            invalid!(
                "host copy [{src_off}, +{bytes}) past the end of a {}-byte buffer",
                src.len()
            );
        }
        let g = self.on(gpu)?;
        let d = Self::ptr(g, dst, bytes)?;
        // SAFETY: the source range is inside `src` (checked above) and the
        // destination inside the arena (checked by `ptr`); callers keep
        // `src` alive until the copy's event completes (`Device::copy_h2d`).
        unsafe {
            sys::cuMemcpyHtoDAsync_v2(
                d,
                src.as_ptr().add(src_off as usize) as *const c_void,
                bytes as usize,
                g.stream(stream).cu_stream(),
            )
        }
        .result()
        .context("host-to-device copy")
    }

    unsafe fn map_host(
        &mut self,
        gpu: usize,
        src: &HostBuffer,
        src_off: u64,
        bytes: u64,
    ) -> DeviceResult<DevPtr> {
        src.check_mappable(src_off, bytes)?;
        self.on(gpu)?;
        let mut dptr: sys::CUdeviceptr = 0;
        let host = src.as_ptr().wrapping_add(src_off as usize) as *mut c_void;
        // SAFETY: `host` lies in `src`, page-locked by `cuMemHostAlloc` with
        // `CU_MEMHOSTALLOC_DEVICEMAP` (`alloc_host`); the call writes one
        // device pointer into `dptr` in `gpu`'s context (bound by `on`). The
        // caller keeps `src` alive for the device's life (`map_host`'s
        // contract), so the mapping never dangles.
        unsafe { sys::cuMemHostGetDevicePointer_v2(&mut dptr, host, 0) }.result()?;
        Ok(self.gpus[gpu].mapped.add(dptr, bytes))
    }

    fn peer_access(&self, dst_gpu: usize, src_gpu: usize) -> bool {
        dst_gpu == src_gpu
            || self
                .peer
                .get(dst_gpu)
                .and_then(|r| r.get(src_gpu))
                .copied()
                .unwrap_or(false)
    }

    fn all_reduce(
        &mut self,
        gpus: &[usize],
        bufs: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        self.nccl_all_reduce(gpus, bufs, n, dtype)
    }

    fn all_gather(
        &mut self,
        gpus: &[usize],
        send: &[DevPtr],
        recv: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        self.nccl_all_gather(gpus, send, recv, n, dtype)
    }

    fn copy_d2h_on(
        &mut self,
        gpu: usize,
        stream: StreamKind,
        src: DevPtr,
        dst: &HostBuffer,
        dst_off: u64,
        bytes: u64,
    ) -> DeviceResult<()> {
        if dst_off + bytes > dst.len() {
            invalid!("device-to-host copy past the end of its host buffer");
        }
        let g = self.on(gpu)?;
        let s = Self::ptr(g, src, bytes)?;
        // SAFETY: the source range is inside the arena (checked by `ptr`)
        // and the destination inside `dst` (checked above); `dst` is read
        // only after the copy's event completes, and stays alive until then.
        unsafe {
            sys::cuMemcpyDtoHAsync_v2(
                dst.as_write_ptr().add(dst_off as usize) as *mut c_void,
                s,
                bytes as usize,
                g.stream(stream).cu_stream(),
            )
        }
        .result()
        .context("device-to-host copy")
    }

    fn copy_peer(
        &mut self,
        dst_gpu: usize,
        dst: DevPtr,
        src_gpu: usize,
        src: DevPtr,
        bytes: u64,
    ) -> DeviceResult<()> {
        self.copy_peer_on(StreamKind::Compute, dst_gpu, dst, src_gpu, src, bytes)
    }

    fn copy_peer_on(
        &mut self,
        stream: StreamKind,
        dst_gpu: usize,
        dst: DevPtr,
        src_gpu: usize,
        src: DevPtr,
        bytes: u64,
    ) -> DeviceResult<()> {
        let Some(src_g) = self.gpus.get(src_gpu) else {
            invalid!(
                "GPU {src_gpu} does not exist (this machine has {})",
                self.gpus.len()
            );
        };
        let s = Self::ptr(src_g, src, bytes)?;
        let sctx = src_g.ctx.cu_ctx();
        let g = self.on(dst_gpu)?;
        let d = Self::ptr(g, dst, bytes)?;
        // SAFETY: both ranges are inside their GPUs' arenas (checked by
        // `ptr`), and both contexts are alive (held by `self.gpus`).
        unsafe {
            sys::cuMemcpyPeerAsync(
                d,
                g.ctx.cu_ctx(),
                s,
                sctx,
                bytes as usize,
                g.stream(stream).cu_stream(),
            )
        }
        .result()
        .context("peer copy")
    }

    fn record(&mut self, gpu: usize, stream: StreamKind) -> DeviceResult<Event> {
        self.on(gpu)?;
        let g = &mut self.gpus[gpu];
        let ev = match g.free_events.pop() {
            Some(e) => e,
            None => g
                .ctx
                .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?,
        };
        ev.record(g.stream(stream)).context("event record")?;
        self.next_event += 1;
        self.events.insert(self.next_event, (gpu, ev));
        Ok(Event(self.next_event))
    }

    fn wait(&mut self, gpu: usize, stream: StreamKind, event: Event) -> DeviceResult<()> {
        self.event(event)?;
        self.on(gpu)?;
        let (_, ev) = self.event(event)?;
        self.gpus[gpu]
            .stream(stream)
            .wait(ev)
            .context("stream wait")
    }

    fn query(&mut self, event: Event) -> DeviceResult<bool> {
        let (_, ev) = self.event(event)?;
        ev.try_is_complete().context("event query")
    }

    fn synchronize(&mut self, event: Event) -> DeviceResult<()> {
        let (gpu, ev) = self.event(event)?;
        // Binds the event's context.
        let done = ev.synchronize().context("event synchronize");
        self.current = gpu;
        done
    }

    fn elapsed_s(&mut self, start: Event, end: Event) -> DeviceResult<f64> {
        let (gpu, a) = self.event(start)?;
        let (_, b) = self.event(end)?;
        // Binds the start event's context.
        let ms = a.elapsed_ms(b).context("event elapsed");
        self.current = gpu;
        Ok(ms? as f64 * 1e-3)
    }

    fn release(&mut self, event: Event) {
        if let Some((gpu, ev)) = self.events.remove(&event.0) {
            self.gpus[gpu].free_events.push(ev);
        }
    }

    fn synchronize_all(&mut self) -> DeviceResult<()> {
        for i in 0..self.gpus.len() {
            let g = self.on(i)?;
            g.compute.synchronize()?;
            g.copy.synchronize()?;
            g.peer.synchronize()?;
            g.offload.synchronize()?;
        }
        Ok(())
    }

    fn graphs_supported(&self) -> bool {
        true
    }

    fn begin_capture(&mut self, gpu: usize) -> DeviceResult<()> {
        self.capture_begin(gpu)
    }

    fn end_capture(
        &mut self,
        gpu: usize,
        reuse: Option<Graph>,
        ok: bool,
    ) -> DeviceResult<Option<Graph>> {
        self.capture_end(gpu, reuse, ok)
    }

    fn launch_graph(&mut self, graph: Graph) -> DeviceResult<()> {
        self.graph_launch(graph)
    }

    fn drop_graph(&mut self, graph: Graph) {
        self.drop_exec(graph)
    }
}
