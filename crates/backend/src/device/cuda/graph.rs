//! CUDA graphs of a GPU's compute stream: stream capture (relaxed mode, so
//! the other stream's copies and event queries may go on meanwhile),
//! instantiation, in-place update of an executable whose topology matches
//! (`cuGraphExecUpdate`, cheaper than a new instantiation), launch.
//! cuBLAS captures since its workspace is set at start ([`super::open`]).

use super::{ck, CudaDevice};
use crate::device::Graph;
use anyhow::{bail, Result};
use cudarc::driver::sys;

impl CudaDevice {
    pub(super) fn capture_begin(&mut self, gpu: usize) -> Result<()> {
        if let Some(g) = self.capturing {
            bail!("GPU {g} is already being captured");
        }
        let s = self.on(gpu)?.compute;
        unsafe {
            ck(
                sys::cuStreamBeginCapture_v2(
                    s,
                    sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED,
                ),
                "begin stream capture",
            )?
        };
        self.capturing = Some(gpu);
        Ok(())
    }

    pub(super) fn capture_end(
        &mut self,
        gpu: usize,
        reuse: Option<Graph>,
        ok: bool,
    ) -> Result<Option<Graph>> {
        if self.capturing != Some(gpu) {
            bail!("GPU {gpu} is not being captured");
        }
        self.capturing = None;
        let s = self.on(gpu)?.compute;
        let mut graph: sys::CUgraph = std::ptr::null_mut();
        let r = unsafe { sys::cuStreamEndCapture(s, &mut graph) };
        if !ok || r != sys::CUresult::CUDA_SUCCESS {
            if !graph.is_null() {
                unsafe { sys::cuGraphDestroy(graph) };
            }
            if ok {
                ck(r, "end stream capture")?;
            }
            return Ok(None);
        }
        let done = self.instantiate(gpu, graph, reuse);
        unsafe { sys::cuGraphDestroy(graph) };
        done.map(Some)
    }

    /// An executable of `graph`: `reuse`'s updated in place when it can be.
    fn instantiate(
        &mut self,
        gpu: usize,
        graph: sys::CUgraph,
        reuse: Option<Graph>,
    ) -> Result<Graph> {
        if let Some(old) = reuse {
            if let Some(&(g, exec)) = self.graphs.get(&old.0) {
                if g == gpu {
                    let mut info: sys::CUgraphExecUpdateResultInfo = unsafe { std::mem::zeroed() };
                    let r = unsafe { sys::cuGraphExecUpdate_v2(exec, graph, &mut info) };
                    if r == sys::CUresult::CUDA_SUCCESS {
                        return Ok(old);
                    }
                }
            }
            self.drop_exec(old);
        }
        let mut exec: sys::CUgraphExec = std::ptr::null_mut();
        unsafe {
            ck(
                sys::cuGraphInstantiateWithFlags(&mut exec, graph, 0),
                "graph instantiate",
            )?
        };
        self.next_graph += 1;
        self.graphs.insert(self.next_graph, (gpu, exec));
        Ok(Graph(self.next_graph))
    }

    pub(super) fn graph_launch(&mut self, graph: Graph) -> Result<()> {
        let Some(&(gpu, exec)) = self.graphs.get(&graph.0) else {
            bail!("unknown graph {}", graph.0);
        };
        let s = self.on(gpu)?.compute;
        unsafe { ck(sys::cuGraphLaunch(exec, s), "graph launch") }
    }

    pub(super) fn drop_exec(&mut self, graph: Graph) {
        if let Some((gpu, exec)) = self.graphs.remove(&graph.0) {
            if self.on(gpu).is_ok() {
                unsafe { sys::cuGraphExecDestroy(exec) };
            }
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
