//! CUDA graphs of a GPU's compute stream: stream capture (relaxed mode, so
//! the other stream's copies and event queries may go on meanwhile),
//! instantiation, in-place update of an executable whose topology matches
//! (`cuGraphExecUpdate`, cheaper than a new instantiation), launch.
//! cuBLAS captures since its workspace is set at start ([`super::open`]).
//! Captured graphs and executables are destroyed on drop.

use super::CudaDevice;
use crate::device::error::invalid;
use crate::device::{Context, DeviceResult, Graph};
use cudarc::driver::{sys, CudaContext};
use std::sync::Arc;

/// A captured graph, destroyed on drop (its executable lives on).
struct Captured(sys::CUgraph);

impl Drop for Captured {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the graph came from `cuStreamEndCapture` and is
            // destroyed only here.
            unsafe { sys::cuGraphDestroy(self.0) };
        }
    }
}

/// An instantiated graph, destroyed (in its context) on drop; launches
/// already issued still run.
pub(super) struct GraphExec {
    ctx: Arc<CudaContext>,
    exec: sys::CUgraphExec,
}

impl Drop for GraphExec {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: the executable came from `cuGraphInstantiateWithFlags`
            // in this context and is destroyed only here.
            unsafe { sys::cuGraphExecDestroy(self.exec) };
        }
    }
}

impl CudaDevice {
    pub(super) fn capture_begin(&mut self, gpu: usize) -> DeviceResult<()> {
        if let Some(g) = self.capturing {
            invalid!("GPU {g} is already being captured");
        }
        let s = self.on(gpu)?.compute.cu_stream();
        // SAFETY: `s` is the live compute stream of the bound context.
        unsafe {
            sys::cuStreamBeginCapture_v2(
                s,
                sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED,
            )
        }
        .result()
        .context("begin stream capture")?;
        self.capturing = Some(gpu);
        Ok(())
    }

    pub(super) fn capture_end(
        &mut self,
        gpu: usize,
        reuse: Option<Graph>,
        ok: bool,
    ) -> DeviceResult<Option<Graph>> {
        if self.capturing != Some(gpu) {
            invalid!("GPU {gpu} is not being captured");
        }
        self.capturing = None;
        let s = self.on(gpu)?.compute.cu_stream();
        let mut graph = Captured(std::ptr::null_mut());
        // SAFETY: `s` is the compute stream being captured; `graph.0` is a
        // live out-parameter, owned (and destroyed) by `graph`.
        let r = unsafe { sys::cuStreamEndCapture(s, &mut graph.0) };
        if !ok || r != sys::CUresult::CUDA_SUCCESS {
            if ok {
                r.result().context("end stream capture")?;
            }
            return Ok(None);
        }
        self.instantiate(gpu, &graph, reuse).map(Some)
    }

    /// An executable of `graph`: `reuse`'s updated in place when it can be.
    fn instantiate(
        &mut self,
        gpu: usize,
        graph: &Captured,
        reuse: Option<Graph>,
    ) -> DeviceResult<Graph> {
        if let Some(old) = reuse {
            if let Some((g, exec)) = self.graphs.get(&old.0) {
                if *g == gpu {
                    // SAFETY: all-zero is a valid value of this plain C struct.
                    let mut info: sys::CUgraphExecUpdateResultInfo = unsafe { std::mem::zeroed() };
                    // SAFETY: `exec` and `graph` are live (owned by
                    // `self.graphs` and the caller); `info` is a live
                    // out-parameter.
                    let r = unsafe { sys::cuGraphExecUpdate_v2(exec.exec, graph.0, &mut info) };
                    if r == sys::CUresult::CUDA_SUCCESS {
                        return Ok(old);
                    }
                }
            }
            self.drop_exec(old);
        }
        let mut exec: sys::CUgraphExec = std::ptr::null_mut();
        // SAFETY: `graph` is live; `exec` is a live out-parameter whose
        // result is owned by the `GraphExec` made below.
        unsafe { sys::cuGraphInstantiateWithFlags(&mut exec, graph.0, 0) }
            .result()
            .context("graph instantiate")?;
        let ctx = self.gpus[gpu].ctx.clone();
        self.next_graph += 1;
        self.graphs
            .insert(self.next_graph, (gpu, GraphExec { ctx, exec }));
        Ok(Graph(self.next_graph))
    }

    pub(super) fn graph_launch(&mut self, graph: Graph) -> DeviceResult<()> {
        let Some((gpu, exec)) = self.graphs.get(&graph.0).map(|(g, e)| (*g, e.exec)) else {
            invalid!("unknown graph {}", graph.0);
        };
        let s = self.on(gpu)?.compute.cu_stream();
        // SAFETY: `exec` is live (owned by `self.graphs`) and belongs to the
        // bound context, whose compute stream `s` is.
        unsafe { sys::cuGraphLaunch(exec, s) }
            .result()
            .context("graph launch")
    }

    pub(super) fn drop_exec(&mut self, graph: Graph) {
        if let Some((gpu, exec)) = self.graphs.remove(&graph.0) {
            // Binds the graph's context to destroy it.
            drop(exec);
            self.current = gpu;
        }
    }

    /// Drops every graph of `gpu` (its arena is about to move, so their
    /// addresses would be stale); later launches of them fail.
    pub(super) fn drop_graphs_of(&mut self, gpu: usize) {
        let ids: Vec<u64> = self
            .graphs
            .iter()
            .filter(|(_, (g, _))| *g == gpu)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.drop_exec(Graph(id));
        }
    }
}
