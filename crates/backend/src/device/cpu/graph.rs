//! Graphs on the CPU device, as CUDA captures them: while a GPU's compute
//! stream is captured its kernels are recorded, not run, with their
//! arguments (addresses included) as they were issued; a launch runs the
//! recorded operations in order. So a graph that went stale (weights moved
//! since its capture) computes from the old addresses here too, and CI sees
//! what the GPU would.

use super::CpuDevice;
use crate::device::error::invalid;
use crate::device::{
    Act, DevPtr, DeviceResult, Dtype, Embed, Gemm, Heads, Kernels, LayerNorm, Softmax, SplitHeads,
};

/// One recorded kernel with its arguments.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Gemm(Gemm),
    Embed(Box<Embed>),
    LayerNorm(LayerNorm),
    BiasAct(DevPtr, DevPtr, usize, usize, Act, Dtype),
    Add(DevPtr, DevPtr, usize, Dtype),
    SplitHeads(SplitHeads),
    Softmax(Softmax),
    MergeHeads(DevPtr, DevPtr, Heads, Dtype),
    FillRandom(DevPtr, usize, u64, f32, Dtype),
}

/// Capture state of a CPU device.
#[derive(Default)]
pub(super) struct Graphs {
    /// The GPU being captured and what it recorded so far.
    pub capture: Option<(usize, Vec<Op>)>,
    /// Instantiated graphs: GPU and operations.
    pub graphs: std::collections::HashMap<u64, (usize, Vec<Op>)>,
    pub next: u64,
}

impl CpuDevice {
    /// Records `op` instead of running it when `gpu`'s compute stream is
    /// being captured; whether it did.
    pub(super) fn captured(&mut self, gpu: usize, op: impl FnOnce() -> Op) -> bool {
        match &mut self.graph.capture {
            Some((g, ops)) if *g == gpu => {
                ops.push(op());
                true
            }
            _ => false,
        }
    }

    /// Fails when `gpu`'s compute stream is being captured (only kernels
    /// may be issued to it then).
    pub(super) fn not_capturing(&self, gpu: usize, what: &str) -> DeviceResult<()> {
        if matches!(self.graph.capture, Some((g, _)) if g == gpu) {
            invalid!(
                "cpu device: {what} issued to GPU {gpu}'s compute stream while it is captured"
            );
        }
        Ok(())
    }

    pub(super) fn begin(&mut self, gpu: usize) -> DeviceResult<()> {
        if gpu >= self.gpus {
            invalid!("cpu device: GPU {gpu} does not exist");
        }
        if self.graph.capture.is_some() {
            invalid!("cpu device: a capture is already under way");
        }
        self.graph.capture = Some((gpu, Vec::new()));
        Ok(())
    }

    pub(super) fn end(
        &mut self,
        gpu: usize,
        reuse: Option<u64>,
        ok: bool,
    ) -> DeviceResult<Option<u64>> {
        let ops = match self.graph.capture.take() {
            Some((g, ops)) if g == gpu => ops,
            other => {
                self.graph.capture = other;
                invalid!("cpu device: GPU {gpu} is not being captured");
            }
        };
        if !ok {
            return Ok(None);
        }
        let id = match reuse {
            Some(r) if self.graph.graphs.get(&r).is_some_and(|(g, _)| *g == gpu) => r,
            _ => {
                if let Some(r) = reuse {
                    self.graph.graphs.remove(&r);
                }
                self.graph.next += 1;
                self.graph.next
            }
        };
        self.graph.graphs.insert(id, (gpu, ops));
        Ok(Some(id))
    }

    pub(super) fn launch(&mut self, id: u64) -> DeviceResult<()> {
        let Some((gpu, ops)) = self.graph.graphs.get(&id).cloned() else {
            invalid!("cpu device: unknown graph {id}");
        };
        self.not_capturing(gpu, "a graph launch")?;
        for op in ops {
            match op {
                Op::Gemm(m) => self.gemm(gpu, &m)?,
                Op::Embed(e) => self.embed(gpu, &e)?,
                Op::LayerNorm(op) => self.layer_norm(gpu, &op)?,
                Op::BiasAct(y, b, r, c, a, d) => self.bias_act(gpu, y, b, r, c, a, d)?,
                Op::Add(x, y, n, d) => self.add(gpu, x, y, n, d)?,
                Op::SplitHeads(op) => self.split_heads(gpu, &op)?,
                Op::Softmax(op) => self.softmax(gpu, &op)?,
                Op::MergeHeads(o, out, shape, d) => self.merge_heads(gpu, o, out, shape, d)?,
                Op::FillRandom(at, n, seed, scale, d) => {
                    self.fill_random(gpu, at, n, seed, scale, d)?
                }
            }
        }
        Ok(())
    }
}
