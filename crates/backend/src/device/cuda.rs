//! The CUDA device through cudarc's driver, cuBLAS and NVRTC bindings, all
//! loaded at run time (`dynamic-loading`): the crate builds without CUDA and
//! fails with a clear message where no driver or GPU is found.
//!
//! Per GPU: one arena from `cuMemAlloc` (allocated once), a compute stream
//! and a copy stream (non-blocking), one cuBLAS handle on the compute stream
//! with its workspace allocated at start, and the NVRTC kernels of
//! [`source`].

use super::HostBuffer;
use super::{DevPtr, Device, Event, Graph, StreamKind};
use anyhow::{anyhow, bail, Result};
use cudarc::cublas::sys as cb;
use cudarc::driver::{result as dr, sys, CudaContext};
use cudarc::nccl::sys as nccl;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::Arc;

const CUBLAS_WORKSPACE: usize = 32 << 20;

struct Gpu {
    ctx: Arc<CudaContext>,
    compute: sys::CUstream,
    copy: sys::CUstream,
    blas: cb::cublasHandle_t,
    funcs: HashMap<&'static str, sys::CUfunction>,
    base: sys::CUdeviceptr,
    arena: u64,
    free_events: Vec<sys::CUevent>,
}

/// NVIDIA GPUs through the CUDA driver API.
pub struct CudaDevice {
    gpus: Vec<Gpu>,
    events: HashMap<u64, (usize, sys::CUevent)>,
    next_event: u64,
    current: usize,
    names: Vec<String>,
    peer: Vec<Vec<bool>>,
    comms: HashMap<Vec<usize>, Vec<nccl::ncclComm_t>>,
    graphs: HashMap<u64, (usize, sys::CUgraphExec)>,
    next_graph: u64,
    capturing: Option<usize>,
}

mod collective;
mod graph;
pub use collective::nccl_present;
mod open;
pub mod source;

fn ck(r: sys::CUresult, what: &str) -> Result<()> {
    r.result().map_err(|e| anyhow!("{what}: {e:?}"))
}

fn ckb(r: cb::cublasStatus_t, what: &str) -> Result<()> {
    r.result().map_err(|e| anyhow!("{what}: {e:?}"))
}

/// Whether a CUDA driver library can be loaded here (no GPU needed).
pub fn driver_present() -> bool {
    unsafe { sys::is_culib_present() }
}

impl CudaDevice {
    fn on(&mut self, gpu: usize) -> Result<&Gpu> {
        if gpu >= self.gpus.len() {
            bail!(
                "GPU {gpu} does not exist (this machine has {})",
                self.gpus.len()
            );
        }
        if self.current != gpu {
            self.gpus[gpu]
                .ctx
                .bind_to_thread()
                .map_err(|e| anyhow!("{e:?}"))?;
            self.current = gpu;
        }
        Ok(&self.gpus[gpu])
    }

    fn ptr(g: &Gpu, at: DevPtr, bytes: u64) -> Result<sys::CUdeviceptr> {
        if at + bytes > g.arena {
            bail!(
                "device access [{at}, +{bytes}) outside the arena of {} bytes",
                g.arena
            );
        }
        Ok(g.base + at)
    }

    fn launch(
        &mut self,
        gpu: usize,
        name: &str,
        grid: u32,
        block: u32,
        args: &mut [*mut c_void],
    ) -> Result<()> {
        let g = self.on(gpu)?;
        let f = g.funcs[name];
        unsafe { dr::launch_kernel(f, (grid.max(1), 1, 1), (block, 1, 1), 0, g.compute, args) }
            .map_err(|e| anyhow!("kernel {name}: {e:?}"))
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
            mem as f64 / (1u64 << 30) as f64
        )
    }

    fn gpus(&self) -> usize {
        self.gpus.len()
    }

    fn total_memory(&self, gpu: usize) -> Option<u64> {
        self.gpus.get(gpu)?.ctx.total_mem().ok().map(|b| b as u64)
    }

    fn free_memory(&self, gpu: usize) -> Result<u64> {
        let g = &self.gpus[gpu];
        g.ctx.bind_to_thread().map_err(|e| anyhow!("{e:?}"))?;
        let (free, _) = dr::mem_get_info().map_err(|e| anyhow!("{e:?}"))?;
        self.gpus[self.current]
            .ctx
            .bind_to_thread()
            .map_err(|e| anyhow!("{e:?}"))?;
        Ok(free as u64)
    }

    fn init_arena(&mut self, arena_bytes: u64) -> Result<()> {
        for i in 0..self.gpus.len() {
            let free = self.free_memory(i)?;
            if arena_bytes > free {
                bail!(
                    "GPU {i} has {:.2} GiB free but the weight pool and workspace need {:.2} GiB; lower `cluster.gpu_memory_gib` in the workload",
                    free as f64 / (1u64 << 30) as f64,
                    arena_bytes as f64 / (1u64 << 30) as f64
                );
            }
            self.on(i)?;
            self.drop_graphs_of(i);
            let g = &mut self.gpus[i];
            if g.base != 0 {
                unsafe { dr::free_sync(g.base) }.map_err(|e| anyhow!("{e:?}"))?;
            }
            g.base = unsafe { dr::malloc_sync(arena_bytes as usize) }.map_err(|e| {
                anyhow!("GPU {i}: cannot allocate the {arena_bytes}-byte arena: {e:?}")
            })?;
            g.arena = arena_bytes;
        }
        Ok(())
    }

    fn alloc_host(&mut self, bytes: u64, pinned: bool) -> Result<HostBuffer> {
        if !pinned {
            return HostBuffer::heap(bytes, false);
        }
        self.on(0)?;
        let p = unsafe { dr::malloc_host(bytes.max(1) as usize, sys::CU_MEMHOSTALLOC_PORTABLE) }
            .map_err(|e| {
                anyhow!(
                    "cuMemHostAlloc of {:.2} GiB pinned memory failed: {e:?}",
                    bytes as f64 / (1u64 << 30) as f64
                )
            })?;
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
    ) -> Result<()> {
        if src_off + bytes > src.len() {
            bail!(
                "host copy [{src_off}, +{bytes}) past the end of a {}-byte buffer",
                src.len()
            );
        }
        let g = self.on(gpu)?;
        let d = Self::ptr(g, dst, bytes)?;
        let s = if stream == StreamKind::Copy {
            g.copy
        } else {
            g.compute
        };
        unsafe {
            ck(
                sys::cuMemcpyHtoDAsync_v2(
                    d,
                    src.as_ptr().add(src_off as usize) as *const c_void,
                    bytes as usize,
                    s,
                ),
                "host-to-device copy",
            )
        }
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

    fn all_reduce(&mut self, gpus: &[usize], bufs: &[DevPtr], n: usize) -> Result<()> {
        self.nccl_all_reduce(gpus, bufs, n)
    }

    fn all_gather(
        &mut self,
        gpus: &[usize],
        send: &[DevPtr],
        recv: &[DevPtr],
        n: usize,
    ) -> Result<()> {
        self.nccl_all_gather(gpus, send, recv, n)
    }

    fn copy_d2h(
        &mut self,
        gpu: usize,
        src: DevPtr,
        dst: &HostBuffer,
        dst_off: u64,
        bytes: u64,
    ) -> Result<()> {
        if dst_off + bytes > dst.len() {
            bail!("device-to-host copy past the end of its host buffer");
        }
        let g = self.on(gpu)?;
        let s = Self::ptr(g, src, bytes)?;
        unsafe {
            ck(
                sys::cuMemcpyDtoHAsync_v2(
                    (dst.as_ptr() as *mut u8).add(dst_off as usize) as *mut c_void,
                    s,
                    bytes as usize,
                    g.compute,
                ),
                "device-to-host copy",
            )
        }
    }

    fn copy_peer(
        &mut self,
        dst_gpu: usize,
        dst: DevPtr,
        src_gpu: usize,
        src: DevPtr,
        bytes: u64,
    ) -> Result<()> {
        let s = Self::ptr(&self.gpus[src_gpu], src, bytes)?;
        let sctx = self.gpus[src_gpu].ctx.cu_ctx();
        let g = self.on(dst_gpu)?;
        let d = Self::ptr(g, dst, bytes)?;
        unsafe {
            ck(
                sys::cuMemcpyPeerAsync(d, g.ctx.cu_ctx(), s, sctx, bytes as usize, g.compute),
                "peer copy",
            )
        }
    }

    fn record(&mut self, gpu: usize, stream: StreamKind) -> Result<Event> {
        self.on(gpu)?;
        let g = &mut self.gpus[gpu];
        let ev = match g.free_events.pop() {
            Some(e) => e,
            None => dr::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT)
                .map_err(|e| anyhow!("{e:?}"))?,
        };
        let s = if stream == StreamKind::Copy {
            g.copy
        } else {
            g.compute
        };
        unsafe { dr::event::record(ev, s) }.map_err(|e| anyhow!("event record: {e:?}"))?;
        self.next_event += 1;
        self.events.insert(self.next_event, (gpu, ev));
        Ok(Event(self.next_event))
    }

    fn wait(&mut self, gpu: usize, stream: StreamKind, event: Event) -> Result<()> {
        let (_, ev) = *self
            .events
            .get(&event.0)
            .ok_or_else(|| anyhow!("unknown event {}", event.0))?;
        let g = self.on(gpu)?;
        let s = if stream == StreamKind::Copy {
            g.copy
        } else {
            g.compute
        };
        unsafe { ck(sys::cuStreamWaitEvent(s, ev, 0), "stream wait") }
    }

    fn query(&mut self, event: Event) -> Result<bool> {
        let (_, ev) = *self
            .events
            .get(&event.0)
            .ok_or_else(|| anyhow!("unknown event {}", event.0))?;
        match unsafe { sys::cuEventQuery(ev) } {
            sys::CUresult::CUDA_SUCCESS => Ok(true),
            sys::CUresult::CUDA_ERROR_NOT_READY => Ok(false),
            e => bail!("event query: {e:?}"),
        }
    }

    fn synchronize(&mut self, event: Event) -> Result<()> {
        let (_, ev) = *self
            .events
            .get(&event.0)
            .ok_or_else(|| anyhow!("unknown event {}", event.0))?;
        unsafe { dr::event::synchronize(ev) }.map_err(|e| anyhow!("event synchronize: {e:?}"))
    }

    fn elapsed_s(&mut self, start: Event, end: Event) -> Result<f64> {
        let (_, a) = *self
            .events
            .get(&start.0)
            .ok_or_else(|| anyhow!("unknown event"))?;
        let (_, b) = *self
            .events
            .get(&end.0)
            .ok_or_else(|| anyhow!("unknown event"))?;
        let ms =
            unsafe { dr::event::elapsed(a, b) }.map_err(|e| anyhow!("event elapsed: {e:?}"))?;
        Ok(ms as f64 * 1e-3)
    }

    fn release(&mut self, event: Event) {
        if let Some((gpu, ev)) = self.events.remove(&event.0) {
            self.gpus[gpu].free_events.push(ev);
        }
    }

    fn synchronize_all(&mut self) -> Result<()> {
        for i in 0..self.gpus.len() {
            let g = self.on(i)?;
            let (a, b) = (g.compute, g.copy);
            unsafe {
                dr::stream::synchronize(a).map_err(|e| anyhow!("{e:?}"))?;
                dr::stream::synchronize(b).map_err(|e| anyhow!("{e:?}"))?;
            }
        }
        Ok(())
    }

    fn graphs_supported(&self) -> bool {
        true
    }

    fn begin_capture(&mut self, gpu: usize) -> Result<()> {
        self.capture_begin(gpu)
    }

    fn end_capture(&mut self, gpu: usize, reuse: Option<Graph>, ok: bool) -> Result<Option<Graph>> {
        self.capture_end(gpu, reuse, ok)
    }

    fn launch_graph(&mut self, graph: Graph) -> Result<()> {
        self.graph_launch(graph)
    }

    fn drop_graph(&mut self, graph: Graph) {
        self.drop_exec(graph)
    }
}
