//! Whole passes timed through the executor, as `replay` runs them: the last
//! step of `replay calibrate`.
//!
//! The per-architecture passes of [`crate::calibrate_passes`] repeat one
//! model back to back, so the host's caches and the driver stay warm for
//! that one pass. Replay interleaves many models and its dispatcher loop
//! (pump, poll) runs between layers; on an H100 that made warm BERT-base
//! passes 1.50-1.71 ms under replay against 1.05-1.10 ms calibrated, while
//! GPT-2 (whose LM head keeps the GPU busy) matched. So this step loads every
//! calibrated architecture into one executor's pool, as `resident` would,
//! and times each pass from queueing it to the host seeing it done, with the
//! architectures taking turns:
//! - at every batch size, back to back: the pass time the profile keeps
//!   (each architecture's per-layer times are scaled to it, less the
//!   per-request overhead the simulator adds back);
//! - after each idle gap of [`IDLE_GAPS_S`] (batch 1 and the largest): the
//!   idle penalty, over the interleaved back-to-back time.

use crate::calibrate::CalibrateOptions;
use crate::calibrate_passes::{idle_until, median, IDLE_GAPS_S};
use crate::device::Device;
use crate::exec::{ComputeOp, CopyOp, Executor};
use crate::host_store::WeightSource;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use switchyard_core::hardware::HardwareProfile;
use switchyard_core::Workload;

/// Times passes through an executor holding every architecture of `opts`
/// and rewrites `profile`'s calibrated pass times and idle penalty; then,
/// for each tensor-parallel degree of `opts.tp`, times the passes of every
/// architecture split over that many GPUs (`tensor_parallel_pass_s`).
/// Appends what it measured to `report`.
pub fn refine(
    dev: Box<dyn Device>,
    opts: &CalibrateOptions,
    profile: &mut HardwareProfile,
    report: &mut String,
) -> Result<()> {
    let dev = refine_models(dev, &model_entries(opts, 1), opts, profile, report)?;
    tensor_parallel(dev, |tp| model_entries(opts, tp), opts, profile, report)
}

/// The workload `models` entries (YAML list items) of `opts`' architectures,
/// in order, each split `tp` ways.
fn model_entries(opts: &CalibrateOptions, tp: u32) -> String {
    let max_b = opts.batches.iter().copied().max().unwrap_or(1);
    opts.archs
        .iter()
        .map(|a| {
            format!("  - {{ arch: {a}, max_batch: {max_b}, parallel: {{ tp: {tp}, pp: 1 }} }}\n")
        })
        .collect()
}

/// Rounds of interleaved passes per batch size (9 at the default 5 repetitions).
fn rounds(opts: &CalibrateOptions) -> usize {
    2 * opts.reps.max(1) - 1
}

/// An executor on GPUs `0..tp` with every model of `models` loaded, split
/// `tp` ways (`resident` when `tp` is 1, else `computron`), and the number
/// of models.
fn loaded(
    dev: Box<dyn Device>,
    models: &str,
    profile: &HardwareProfile,
    tp: u32,
) -> Result<(Executor, usize)> {
    let system = if tp > 1 { "computron" } else { "resident" };
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
    let mut ex = crate::replay::build_executor(dev, &w, &WeightSource::Random { seed: 7 })?;
    let mut key = 0u64;
    let mut offset = 0u64;
    for m in 0..w.models.len() {
        let (layers, bytes) = (ex.layouts[m].layers(), ex.shards[m].image_bytes());
        for rank in 0..tp as usize {
            key += 1;
            ex.copy(CopyOp {
                key,
                gpu: rank,
                model: m,
                stage: 0,
                shard: rank,
                layers: 0..layers,
                pool_offset: offset,
                pinned: true,
            })?;
        }
        offset += bytes.div_ceil(256) * 256;
    }
    ex.drain()?;
    Ok((ex, w.models.len()))
}

/// Keys of the passes [`pass`] queues (above every copy's).
struct Passes {
    key: u64,
    tp: usize,
}

impl Passes {
    fn new(tp: u32) -> Passes {
        Passes {
            key: 1 << 32,
            tp: tp as usize,
        }
    }

    /// Seconds from queueing a pass of model `m` at batch `b` to the host
    /// seeing it done.
    fn pass(&mut self, ex: &mut Executor, m: usize, b: u32) -> Result<f64> {
        self.key += 1;
        let t0 = Instant::now();
        ex.compute(ComputeOp {
            key: self.key,
            gpus: (0..self.tp).collect(),
            model: m,
            layers: 0..ex.layouts[m].layers(),
            requests: (0..b as u64).collect(),
            ..ComputeOp::default()
        })?;
        Ok((ex.wait_for_compute(self.key)? - t0).as_secs_f64())
    }

    /// Every shape once (kernels load lazily), then `rounds` rounds of
    /// every batch size with the `n` models taking turns: the median pass
    /// of each model at each batch size.
    fn paced(
        &mut self,
        ex: &mut Executor,
        n: usize,
        batches: &[u32],
        rounds: usize,
    ) -> Result<Vec<Vec<f64>>> {
        for &b in batches {
            for m in 0..n {
                self.pass(ex, m, b)?;
            }
        }
        let mut host = vec![vec![Vec::with_capacity(rounds); batches.len()]; n];
        for _ in 0..rounds {
            for (bi, &b) in batches.iter().enumerate() {
                for (m, per_arch) in host.iter_mut().enumerate() {
                    per_arch[bi].push(self.pass(ex, m, b)?);
                }
            }
        }
        Ok(host
            .iter_mut()
            .map(|per_arch| per_arch.iter_mut().map(|v| median(v)).collect())
            .collect())
    }
}

/// [`refine`]'s one-GPU step for the workload `models` entries, one per
/// architecture of `opts.archs`, in that order; gives the device back.
fn refine_models(
    dev: Box<dyn Device>,
    models: &str,
    opts: &CalibrateOptions,
    profile: &mut HardwareProfile,
    report: &mut String,
) -> Result<Box<dyn Device>> {
    // Rounds per idle gap (3 at the default 5 repetitions).
    let idle_rounds = opts.reps.max(1).div_ceil(2);
    let (mut ex, n) = loaded(dev, models, profile, 1)?;
    let mut passes = Passes::new(1);
    let paced = passes.paced(&mut ex, n, &opts.batches, rounds(opts))?;
    // After idle gaps, at batch 1 and the largest.
    let ends: Vec<usize> = if opts.batches.len() > 1 {
        vec![0, opts.batches.len() - 1]
    } else {
        vec![0]
    };
    let mut penalty = Vec::with_capacity(IDLE_GAPS_S.len());
    for gap in IDLE_GAPS_S {
        let mut extra = Vec::new();
        for _ in 0..idle_rounds {
            for &bi in &ends {
                for (m, per_arch) in paced.iter().enumerate() {
                    idle_until(Instant::now() + Duration::from_secs_f64(gap));
                    extra.push(passes.pass(&mut ex, m, opts.batches[bi])? - per_arch[bi]);
                }
            }
        }
        penalty.push((gap, median(&mut extra).max(0.0)));
    }
    let overhead = profile.compute.request_overhead_s;
    *report += "passes through the executor, architectures taking turns (replaces the pass times above):\n";
    for (m, a) in opts.archs.iter().enumerate() {
        let Some(c) = profile.calibrated.get_mut(a) else {
            bail!("architecture {a} was not calibrated before the paced passes");
        };
        for (bi, row) in c.layer_s.iter_mut().enumerate() {
            let sum: f64 = row.iter().sum();
            let want = (paced[m][bi] - overhead).max(0.0);
            if sum > 0.0 {
                row.iter_mut().for_each(|t| *t *= want / sum);
            }
            *report += &format!(
                "{a} batch {} paced: {:.3} ms (back to back alone: {:.3} ms)\n",
                opts.batches[bi],
                want * 1e3,
                sum * 1e3
            );
        }
    }
    profile.compute.idle_penalty = penalty;
    *report += "idle penalty through the executor (replaces the one above):";
    for (gap, extra) in &profile.compute.idle_penalty {
        *report += &format!(" {:.1} ms: {:.1} us", gap * 1e3, extra * 1e6);
    }
    *report += "\n";
    Ok(ex.dev)
}

/// [`refine`]'s tensor-parallel step: for each degree of `opts.tp`, every
/// architecture (the workload `models` entries `entries(tp)`, in the order
/// of `opts.archs`) split over GPUs `0..tp`, timed as the one-GPU passes are;
/// each pass (less the per-request overhead) goes to
/// `tensor_parallel_pass_s`.
fn tensor_parallel(
    mut dev: Box<dyn Device>,
    entries: impl Fn(u32) -> String,
    opts: &CalibrateOptions,
    profile: &mut HardwareProfile,
    report: &mut String,
) -> Result<()> {
    let overhead = profile.compute.request_overhead_s;
    for &tp in opts.tp.iter().filter(|&&tp| tp > 1) {
        if dev.gpus() < tp as usize {
            bail!(
                "--tp {tp} needs {tp} GPUs but the {} device has {}",
                dev.kind(),
                dev.gpus()
            );
        }
        let (mut ex, n) = loaded(dev, &entries(tp), profile, tp)?;
        let paced = Passes::new(tp).paced(&mut ex, n, &opts.batches, rounds(opts))?;
        *report += &format!(
            "passes split over {tp} GPUs (tensor parallel), architectures taking turns:\n"
        );
        for (m, a) in opts.archs.iter().enumerate() {
            let Some(c) = profile.calibrated.get_mut(a) else {
                bail!("architecture {a} was not calibrated before the tensor-parallel passes");
            };
            let times: Vec<f64> = paced[m].iter().map(|t| (t - overhead).max(1e-9)).collect();
            for (bi, t) in times.iter().enumerate() {
                let one: f64 = c.layer_s[bi].iter().sum();
                *report += &format!(
                    "{a} tp {tp} batch {}: {:.3} ms (one GPU: {:.3} ms)\n",
                    opts.batches[bi],
                    t * 1e3,
                    one * 1e3
                );
            }
            c.tensor_parallel_pass_s.insert(tp, times);
        }
        dev = ex.dev;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu::CpuDevice;

    #[test]
    fn cpu_paced_passes_rescale_every_calibrated_row() {
        let opts = CalibrateOptions {
            archs: vec!["tiny".into()],
            batches: vec![1, 2],
            base: "h200-pcie5".into(),
            name: "t".into(),
            reps: 1,
            tp: vec![],
        };
        let mut profile = HardwareProfile::resolve("h200-pcie5", None).unwrap();
        profile.gpu_memory_bytes = 8 << 30;
        profile.calibrated.insert(
            "tiny".into(),
            switchyard_core::hardware::CalibratedTimes {
                batch_sizes: vec![1, 2],
                layer_s: vec![vec![1.0, 3.0], vec![2.0, 6.0]],
                items_per_request: 1,
                tensor_parallel_pass_s: Default::default(),
            },
        );
        let mut report = String::new();
        let models = "  - { name: tiny, layers: 2, layer_mb: 1, layer_ms: 0.05, max_batch: 2 }\n";
        let dev = Box::new(CpuDevice::new(1));
        refine_models(dev, models, &opts, &mut profile, &mut report).unwrap();
        for row in &profile.calibrated["tiny"].layer_s {
            // Rescaled to the measured pass (far below the 4 s and 8 s put
            // in), each layer keeping its share.
            let sum: f64 = row.iter().sum();
            assert!(sum > 0.0 && sum < 1.0, "{row:?}");
            assert!((row[1] / row[0] - 3.0).abs() < 1e-9, "{row:?}");
        }
        assert_eq!(profile.compute.idle_penalty.len(), IDLE_GAPS_S.len());
        assert!(report.contains("tiny batch 2 paced"), "{report}");
    }

    #[test]
    fn cpu_tensor_parallel_passes_are_stored_per_degree() {
        let mut opts = CalibrateOptions {
            archs: vec!["tiny".into()],
            batches: vec![1, 2],
            base: "h200-pcie5".into(),
            name: "t".into(),
            reps: 1,
            tp: vec![2],
        };
        let mut profile = HardwareProfile::resolve("h200-pcie5", None).unwrap();
        profile.gpu_memory_bytes = 8 << 30;
        profile.calibrated.insert(
            "tiny".into(),
            switchyard_core::hardware::CalibratedTimes {
                batch_sizes: vec![1, 2],
                layer_s: vec![vec![1.0, 3.0], vec![2.0, 6.0]],
                items_per_request: 1,
                tensor_parallel_pass_s: Default::default(),
            },
        );
        let entries = |tp: u32| {
            format!("  - {{ name: tiny, layers: 2, layer_mb: 1, layer_ms: 0.05, max_batch: 2, parallel: {{ tp: {tp}, pp: 1 }} }}\n")
        };
        let mut report = String::new();
        let dev = Box::new(CpuDevice::new(2));
        tensor_parallel(dev, entries, &opts, &mut profile, &mut report).unwrap();
        let c = &profile.calibrated["tiny"];
        assert_eq!(c.tensor_parallel_pass_s.len(), 1);
        let passes = &c.tensor_parallel_pass_s[&2];
        assert_eq!(passes.len(), 2);
        assert!(passes.iter().all(|&t| t > 0.0 && t < 1.0), "{passes:?}");
        assert!(report.contains("tiny tp 2 batch 2"), "{report}");
        // More GPUs than the device has: a clear error.
        opts.tp = vec![4];
        let err = tensor_parallel(
            Box::new(CpuDevice::new(2)),
            entries,
            &opts,
            &mut profile,
            &mut report,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--tp 4 needs 4 GPUs"), "{err}");
    }
}
