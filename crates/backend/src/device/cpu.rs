//! The CPU device: each emulated GPU's arena is host memory (reserved with
//! `mmap(MAP_NORESERVE)`, so only touched pages cost memory); copies are real
//! memcpys and matrix products are real (f32 accumulation over fp16 data).
//! Every operation runs when issued, so events complete at once and carry
//! the host time of their recording.

use super::error::invalid;
use super::mapped::MappedRanges;
use super::HostBuffer;
use super::{Act, DevPtr, Device, Dtype, Embed, Event, Gemm, Graph, Kernels, StreamKind};
use super::{DeviceError, DeviceResult};
use std::time::Instant;

struct Arena {
    ptr: *mut u8,
    len: u64,
}

impl Drop for Arena {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `ptr` and `len` are the mapping `mmap` returned in
            // `init_arena`, unmapped only here; no view of it outlives `self`.
            unsafe {
                libc::munmap(self.ptr as *mut _, self.len as usize);
            }
        }
    }
}

/// Host-memory emulation of `gpus` GPUs.
pub struct CpuDevice {
    /// Whether emulated GPUs reach each other's memory directly (peer
    /// access); `false` sends pipeline activations through the host.
    pub peer: bool,
    arenas: Vec<Arena>,
    /// Per GPU: host ranges its kernels read in place (`map_host`).
    mapped: Vec<MappedRanges>,
    gpus: usize,
    events: std::collections::HashMap<u64, Instant>,
    next_event: u64,
    graph: graph::Graphs,
}

mod graph;
mod kernels;

impl CpuDevice {
    /// A device of `gpus` emulated GPUs (no arena yet).
    pub fn new(gpus: usize) -> CpuDevice {
        CpuDevice {
            peer: true,
            arenas: Vec::new(),
            mapped: (0..gpus.max(1)).map(|_| MappedRanges::default()).collect(),
            gpus: gpus.max(1),
            events: Default::default(),
            next_event: 0,
            graph: Default::default(),
        }
    }

    /// GPU `gpu`'s arena bytes `[at, at + bytes)`, checked against the arena.
    fn span(&self, gpu: usize, at: DevPtr, bytes: usize) -> DeviceResult<(*mut u8, usize)> {
        let a = self
            .arenas
            .get(gpu)
            .ok_or_else(|| DeviceError::Invalid(format!("cpu device: GPU {gpu} has no arena")))?;
        if at + bytes as u64 > a.len {
            invalid!(
                "cpu device: access [{at}, +{bytes}) outside GPU {gpu}'s arena of {} bytes",
                a.len
            );
        }
        // SAFETY: `at + bytes` is within the mapping of `a.len` bytes (checked above).
        Ok((unsafe { a.ptr.add(at as usize) }, bytes))
    }

    /// Reads GPU `gpu`'s arena bytes `[at, at + bytes)`, or host bytes
    /// mapped for it ([`Device::map_host`]).
    fn mem(&self, gpu: usize, at: DevPtr, bytes: usize) -> DeviceResult<&[u8]> {
        if MappedRanges::is_mapped(at) {
            let Some(m) = self.mapped.get(gpu) else {
                invalid!("cpu device: GPU {gpu} does not exist");
            };
            let p = m.resolve(at, bytes as u64)? as *const u8;
            // SAFETY: `p..p + bytes` lies in a host buffer mapped by
            // `map_host` (checked by `resolve`), whose caller keeps it alive
            // and unchanged for the device's life.
            return Ok(unsafe { std::slice::from_raw_parts(p, bytes) });
        }
        let (p, n) = self.span(gpu, at, bytes)?;
        // SAFETY: the range is inside a live mapping owned by `self` (checked
        // by `span`); writes need `&mut self`, so none happens while this
        // shared view is alive.
        Ok(unsafe { std::slice::from_raw_parts(p, n) })
    }

    /// Writes GPU `gpu`'s arena bytes `[at, at + bytes)`.
    fn mem_mut(&mut self, gpu: usize, at: DevPtr, bytes: usize) -> DeviceResult<&mut [u8]> {
        let (p, n) = self.span(gpu, at, bytes)?;
        // SAFETY: the range is inside a live mapping owned by `self` (checked
        // by `span`), and `&mut self` makes this view the only one.
        Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
    }

    /// Reads `n` elements of `dtype` at `at` as f32.
    fn read(&self, gpu: usize, at: DevPtr, n: usize, dtype: Dtype) -> DeviceResult<Vec<f32>> {
        Ok(super::decode(
            dtype,
            self.mem(gpu, at, n * super::el_bytes(dtype))?,
        ))
    }

    /// Writes `v` at `at` as elements of `dtype` (rounded to nearest even).
    fn write(&mut self, gpu: usize, at: DevPtr, v: &[f32], dtype: Dtype) -> DeviceResult<()> {
        let m = self.mem_mut(gpu, at, v.len() * super::el_bytes(dtype))?;
        super::encode(dtype, v, m);
        Ok(())
    }

    fn event(&mut self) -> Event {
        self.next_event += 1;
        self.events.insert(self.next_event, Instant::now());
        Event(self.next_event)
    }
}

/// Extent in elements of a column-major matrix of `rows x cols` with leading dimension `ld`.
fn extent(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (cols - 1) * ld + rows
    }
}

impl Device for CpuDevice {
    fn kind(&self) -> &'static str {
        "cpu"
    }

    fn describe(&self) -> String {
        format!(
            "cpu device ({} emulated GPU{}, {} host threads)",
            self.gpus,
            if self.gpus == 1 { "" } else { "s" },
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        )
    }

    fn gpus(&self) -> usize {
        self.gpus
    }

    fn total_memory(&self, _gpu: usize) -> Option<u64> {
        None
    }

    fn free_memory(&self, _gpu: usize) -> DeviceResult<u64> {
        Ok(u64::MAX / 4)
    }

    fn init_arena(&mut self, arena_bytes: u64) -> DeviceResult<()> {
        self.arenas.clear();
        for g in 0..self.gpus {
            // SAFETY: a fresh anonymous private mapping (no address hint, no
            // file); the result is checked before use and owned by `Arena`.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    arena_bytes.max(1) as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(DeviceError::OutOfMemory(format!(
                    "cpu device: cannot reserve {arena_bytes} bytes for GPU {g}'s arena"
                )));
            }
            self.arenas.push(Arena {
                ptr: ptr as *mut u8,
                len: arena_bytes.max(1),
            });
        }
        Ok(())
    }

    fn alloc_host(&mut self, bytes: u64, pinned: bool) -> DeviceResult<HostBuffer> {
        HostBuffer::heap(bytes, pinned)
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
        if stream == StreamKind::Compute {
            self.not_capturing(gpu, "a host-to-device copy")?;
        }
        let Some(s) = src
            .as_slice()
            .get(src_off as usize..(src_off + bytes) as usize)
        else {
            invalid!(
                "host copy [{src_off}, +{bytes}) past the end of a {}-byte buffer",
                src.len()
            );
        };
        self.mem_mut(gpu, dst, bytes as usize)?.copy_from_slice(s);
        Ok(())
    }

    unsafe fn map_host(
        &mut self,
        gpu: usize,
        src: &HostBuffer,
        src_off: u64,
        bytes: u64,
    ) -> DeviceResult<DevPtr> {
        src.check_mappable(src_off, bytes)?;
        let Some(m) = self.mapped.get_mut(gpu) else {
            invalid!("cpu device: GPU {gpu} does not exist");
        };
        Ok(m.add(src.as_ptr() as u64 + src_off, bytes))
    }

    fn peer_access(&self, dst_gpu: usize, src_gpu: usize) -> bool {
        self.peer || dst_gpu == src_gpu
    }

    fn all_reduce(
        &mut self,
        gpus: &[usize],
        bufs: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        for &g in gpus {
            self.not_capturing(g, "an all-reduce")?;
        }
        if gpus.len() != bufs.len() {
            invalid!("all-reduce: {} GPUs but {} buffers", gpus.len(), bufs.len());
        }
        let mut sum = vec![0f32; n];
        for (g, b) in gpus.iter().zip(bufs) {
            for (s, v) in sum.iter_mut().zip(self.read(*g, *b, n, dtype)?) {
                *s += v;
            }
        }
        for (g, b) in gpus.iter().zip(bufs) {
            self.write(*g, *b, &sum, dtype)?;
        }
        Ok(())
    }

    fn all_gather(
        &mut self,
        gpus: &[usize],
        send: &[DevPtr],
        recv: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        for &g in gpus {
            self.not_capturing(g, "an all-gather")?;
        }
        if gpus.len() != send.len() || gpus.len() != recv.len() {
            invalid!(
                "all-gather: {} GPUs, {} send and {} receive buffers",
                gpus.len(),
                send.len(),
                recv.len()
            );
        }
        let bytes = n * super::el_bytes(dtype);
        let mut all = Vec::with_capacity(bytes * gpus.len());
        for (g, b) in gpus.iter().zip(send) {
            all.extend_from_slice(self.mem(*g, *b, bytes)?);
        }
        for (g, b) in gpus.iter().zip(recv) {
            self.mem_mut(*g, *b, all.len())?.copy_from_slice(&all);
        }
        Ok(())
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
        if stream == StreamKind::Compute {
            self.not_capturing(gpu, "a device-to-host copy")?;
        }
        if dst_off + bytes > dst.len() {
            invalid!("cpu device: output copy past the end of its host buffer");
        }
        let s = self.mem(gpu, src, bytes as usize)?;
        // SAFETY: `s` lies in the arena (checked by `mem`), the destination
        // range inside `dst` (checked above); the two never overlap (arena
        // and host buffer are separate allocations), and the host buffer is
        // only read after the event of this copy.
        unsafe {
            std::ptr::copy_nonoverlapping(
                s.as_ptr(),
                dst.as_write_ptr().add(dst_off as usize),
                bytes as usize,
            )
        };
        Ok(())
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
        if stream == StreamKind::Compute {
            self.not_capturing(dst_gpu, "a peer copy")?;
        }
        if !self.peer_access(dst_gpu, src_gpu) {
            invalid!("cpu device: GPU {dst_gpu} has no peer access to GPU {src_gpu}");
        }
        let v = self.mem(src_gpu, src, bytes as usize)?.to_vec();
        self.mem_mut(dst_gpu, dst, bytes as usize)?
            .copy_from_slice(&v);
        Ok(())
    }

    fn record(&mut self, gpu: usize, stream: StreamKind) -> DeviceResult<Event> {
        if stream == StreamKind::Compute {
            self.not_capturing(gpu, "an event record")?;
        }
        Ok(self.event())
    }

    fn wait(&mut self, gpu: usize, stream: StreamKind, _event: Event) -> DeviceResult<()> {
        if stream == StreamKind::Compute {
            self.not_capturing(gpu, "an event wait")?;
        }
        Ok(())
    }

    fn query(&mut self, _event: Event) -> DeviceResult<bool> {
        Ok(true)
    }

    fn synchronize(&mut self, _event: Event) -> DeviceResult<()> {
        Ok(())
    }

    fn elapsed_s(&mut self, start: Event, end: Event) -> DeviceResult<f64> {
        let (a, b) = (self.events.get(&start.0), self.events.get(&end.0));
        match (a, b) {
            (Some(a), Some(b)) => Ok(b.saturating_duration_since(*a).as_secs_f64()
                - a.saturating_duration_since(*b).as_secs_f64()),
            _ => invalid!("cpu device: unknown event"),
        }
    }

    fn release(&mut self, event: Event) {
        self.events.remove(&event.0);
    }

    fn synchronize_all(&mut self) -> DeviceResult<()> {
        Ok(())
    }

    fn graphs_supported(&self) -> bool {
        true
    }

    fn begin_capture(&mut self, gpu: usize) -> DeviceResult<()> {
        self.begin(gpu)
    }

    fn end_capture(
        &mut self,
        gpu: usize,
        reuse: Option<Graph>,
        ok: bool,
    ) -> DeviceResult<Option<Graph>> {
        Ok(self.end(gpu, reuse.map(|g| g.0), ok)?.map(Graph))
    }

    fn launch_graph(&mut self, graph: Graph) -> DeviceResult<()> {
        self.launch(graph.0)
    }

    fn drop_graph(&mut self, graph: Graph) {
        self.graph.graphs.remove(&graph.0);
    }
}
