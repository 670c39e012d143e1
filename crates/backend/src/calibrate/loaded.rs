//! An executor holding every model of a calibration workload, and the
//! passes, copies and reloads [`super::paced`] times through it.

use crate::device::Device;
use crate::exec::workload::build_executor;
use crate::exec::{Completion, ComputeOp, CopyOp, Executor};
use crate::host_store::WeightSource;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;
use switchyard_core::hardware::HardwareProfile;
use switchyard_core::stats::median;
use switchyard_core::Workload;

/// An executor on GPUs `0..tp` with every model of a calibration workload
/// loaded, split `tp` ways, and the passes it times.
pub(super) struct Loaded {
    /// The executor holding the models.
    pub(super) ex: Executor,
    /// Pool offset of each model (the same on every rank).
    pub(super) offsets: Vec<u64>,
    tp: usize,
    /// Whether copies read pinned host memory (else pageable).
    pinned: bool,
    /// The last key queued.
    key: u64,
}

/// Median seconds per model and batch size.
pub(super) struct PacedTimes {
    /// From queueing a pass to the host seeing it done.
    pub(super) issued: Vec<Vec<f64>>,
    /// From the first layer starting on the GPU to the host seeing the
    /// pass done, for a pass queued behind a copy of the model's weights.
    pub(super) queued: Vec<Vec<f64>>,
    /// Host time spent issuing the pass.
    pub(super) issue: Vec<Vec<f64>>,
}

impl Loaded {
    /// Loads every model of `models` (workload `models` entries), split
    /// `tp` ways (`resident` when `tp` is 1, else `computron`), or with
    /// `pageable` on one GPU as stop-and-start holds them.
    pub(super) fn new(
        dev: Box<dyn Device>,
        models: &str,
        profile: &HardwareProfile,
        tp: u32,
        graphs: bool,
        pageable: bool,
    ) -> Result<Loaded> {
        let system = match (tp > 1, pageable) {
            (false, true) => "stop-and-start",
            (true, true) => bail!("pageable copies are one-GPU only"),
            (true, false) => "computron",
            (false, false) => "resident",
        };
        let yaml = format!(
            "name: calibrate-paced\nseed: 1\nduration_s: 1\n\
             cluster: {{ hardware: h200-pcie5, gpus: {tp} }}\n\
             arrivals: {{ process: poisson, rate: 1 }}\n\
             policy: {{ system: {system} }}\nmodels:\n{models}"
        );
        let mut w = Workload::parse(Path::new("<replay calibrate>"), &yaml)
            .context("the calibration workload")?;
        let weights: u64 = w.models.iter().map(|m| m.shape.total_bytes()).sum();
        let mut hw = profile.clone();
        hw.gpu_memory_bytes = hw
            .gpu_memory_bytes
            .min(hw.reserved_bytes + weights + (256 << 20));
        w.cluster.hardware = hw;
        let mut ex = build_executor(dev, &w, &WeightSource::Random { seed: 7 })?;
        ex.graphs.off = !graphs;
        let mut at = 0u64;
        let offsets = (0..w.models.len())
            .map(|m| {
                let offset = at;
                at += ex.shards[m].image_bytes().div_ceil(256) * 256;
                offset
            })
            .collect();
        let mut l = Loaded {
            ex,
            offsets,
            tp: tp as usize,
            pinned: !pageable,
            key: 0,
        };
        for m in 0..w.models.len() {
            l.copy(m)?;
        }
        l.ex.drain()?;
        Ok(l)
    }

    /// Queues a copy of model `m`'s every rank to its offset; the keys.
    pub(super) fn copy(&mut self, m: usize) -> Result<Vec<u64>> {
        let layers = self.ex.layouts[m].layers();
        let mut keys = Vec::with_capacity(self.tp);
        for rank in 0..self.tp {
            self.key += 1;
            self.ex.copy(CopyOp {
                key: self.key,
                gpu: rank,
                model: m,
                stage: 0,
                shard: rank,
                layers: 0..layers,
                pool_offset: self.offsets[m],
                pinned: self.pinned,
                ..CopyOp::default()
            })?;
            keys.push(self.key);
        }
        Ok(keys)
    }

    /// Queues a pass of model `m` at batch `b`, waiting for `copies`.
    pub(super) fn queue_pass(&mut self, m: usize, b: u32, copies: &[u64]) -> Result<u64> {
        let layers = self.ex.layouts[m].layers();
        self.key += 1;
        self.ex.compute(ComputeOp {
            key: self.key,
            gpus: (0..self.tp).collect(),
            model: m,
            layers: 0..layers,
            requests: (0..b as u64).collect(),
            waits: copies.iter().map(|&c| (0..layers, c)).collect(),
            ..ComputeOp::default()
        })?;
        Ok(self.key)
    }

    /// Seconds from queueing a pass of model `m` at batch `b` to the host
    /// seeing it done, and host seconds spent issuing it.
    pub(super) fn pass(&mut self, m: usize, b: u32) -> Result<(f64, f64)> {
        let before = self.ex.issue.busy_s();
        let t0 = Instant::now();
        let key = self.queue_pass(m, b, &[])?;
        let seen = self.ex.wait_for_compute(key)?;
        Ok((
            (seen - t0).as_secs_f64(),
            (self.ex.issue.busy_s() - before).max(0.0),
        ))
    }

    /// Model `m`'s weights copied again and a pass at batch `b` queued
    /// behind the copy, so the host issues its layers ahead of the GPU (as
    /// for a cold pass): seconds from its first layer starting on the GPU
    /// to the host seeing it done.
    pub(super) fn queued(&mut self, m: usize, b: u32) -> Result<f64> {
        let bytes = self.ex.shards[m].image_bytes();
        for rank in 0..self.tp {
            self.ex.evict(rank, m, self.offsets[m], bytes);
        }
        let copies = self.copy(m)?;
        let key = self.queue_pass(m, b, &copies)?;
        loop {
            self.ex.pump()?;
            for c in self.ex.poll()? {
                if let Completion::Compute {
                    key: k, start, at, ..
                } = c
                {
                    if k == key {
                        self.ex.drain()?;
                        return Ok((at - start).as_secs_f64());
                    }
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Model `m`'s weights copied again (one GPU) while, with `serving`,
    /// model `other` runs batch-1 passes back to back, as replay serves
    /// other models during a stop-and-start load: bytes per second from
    /// the copy's first byte moving to its last, on the copy stream, and
    /// bytes per second of the host's copy calls alone (what replay's
    /// `host_path` counts), in that order.
    pub(super) fn reload_rate(&mut self, m: usize, serving: Option<usize>) -> Result<(f64, f64)> {
        let bytes = self.ex.shards[m].image_bytes();
        self.ex.evict(0, m, self.offsets[m], bytes);
        let calls_s = |s: &crate::exec::IssueStats| s.copy_calls as f64 * s.mean_copy_call_s;
        let before = calls_s(&self.ex.issue);
        let key = self.copy(m)?[0];
        let mut pass = None;
        loop {
            if let (Some(o), None) = (serving, pass) {
                pass = Some(self.queue_pass(o, 1, &[])?);
            }
            self.ex.pump()?;
            for c in self.ex.poll()? {
                match c {
                    Completion::Copy {
                        key: k, start, at, ..
                    } if k == key => {
                        self.ex.drain()?;
                        let calls = (calls_s(&self.ex.issue) - before).max(1e-12);
                        let on_stream = (at - start).as_secs_f64().max(1e-12);
                        return Ok((bytes as f64 / on_stream, bytes as f64 / calls));
                    }
                    Completion::Compute { key: k, .. } if Some(k) == pass => pass = None,
                    _ => {}
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Every shape once (kernels load lazily), then `rounds` rounds of
    /// every batch size with the models taking turns, issued and queued.
    pub(super) fn paced(&mut self, batches: &[u32], rounds: usize) -> Result<PacedTimes> {
        let n = self.offsets.len();
        for &b in batches {
            for m in 0..n {
                self.pass(m, b)?;
            }
        }
        let mut issued = vec![vec![Vec::with_capacity(rounds); batches.len()]; n];
        let (mut queued, mut issue) = (issued.clone(), issued.clone());
        for round in 0..rounds {
            for (bi, &b) in batches.iter().enumerate() {
                for m in 0..n {
                    let (pass, host) = self.pass(m, b)?;
                    issued[m][bi].push(pass);
                    issue[m][bi].push(host);
                    // Half as many queued passes: each copies the weights again.
                    if round % 2 == 0 {
                        queued[m][bi].push(self.queued(m, b)?);
                    }
                }
            }
        }
        let medians = |v: &mut Vec<Vec<Vec<f64>>>| -> Vec<Vec<f64>> {
            v.iter_mut()
                .map(|per_arch| per_arch.iter_mut().map(|v| median(v)).collect())
                .collect()
        };
        Ok(PacedTimes {
            issued: medians(&mut issued),
            queued: medians(&mut queued),
            issue: medians(&mut issue),
        })
    }
}
