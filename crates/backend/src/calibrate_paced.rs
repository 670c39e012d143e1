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
use crate::calibrate_passes::{idle_until, IDLE_GAPS_S};
use crate::device::Device;
use crate::exec::{ComputeOp, CopyOp, Executor};
use crate::host_store::WeightSource;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use switchyard_core::hardware::HardwareProfile;
use switchyard_core::stats::median;
use switchyard_core::Workload;

/// Times passes through an executor holding every architecture of `opts`
/// and rewrites `profile`'s calibrated pass times and idle penalty; appends
/// what it measured to `report`.
pub fn refine(
    dev: Box<dyn Device>,
    opts: &CalibrateOptions,
    profile: &mut HardwareProfile,
    report: &mut String,
) -> Result<()> {
    let max_b = opts.batches.iter().copied().max().unwrap_or(1);
    let models: String = opts
        .archs
        .iter()
        .map(|a| format!("  - {{ arch: {a}, max_batch: {max_b} }}\n"))
        .collect();
    refine_models(dev, &models, opts, profile, report)
}

/// [`refine`] for the workload `models` entries (YAML list items), one per
/// architecture of `opts.archs`, in that order.
fn refine_models(
    dev: Box<dyn Device>,
    models: &str,
    opts: &CalibrateOptions,
    profile: &mut HardwareProfile,
    report: &mut String,
) -> Result<()> {
    // Rounds of interleaved passes per batch size (9 at the default 5
    // repetitions), and per idle gap (3).
    let rounds = 2 * opts.reps.max(1) - 1;
    let idle_rounds = opts.reps.max(1).div_ceil(2);
    let yaml = format!(
        "name: calibrate-paced\nseed: 1\nduration_s: 1\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\n\
         policy: {{ system: resident }}\nmodels:\n{models}"
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
    let sizes: Vec<(usize, u64)> = ex
        .layouts
        .iter()
        .map(|l| (l.layers(), l.total_bytes()))
        .collect();
    for (m, &(layers, bytes)) in sizes.iter().enumerate() {
        key += 1;
        ex.copy(CopyOp {
            key,
            gpu: 0,
            model: m,
            stage: 0,
            shard: 0,
            layers: 0..layers,
            pool_offset: offset,
            pinned: true,
        })?;
        offset += bytes.div_ceil(256) * 256;
    }
    ex.drain()?;
    let n = w.models.len();
    let mut pass = |ex: &mut Executor, m: usize, b: u32| -> Result<f64> {
        key += 1;
        let t0 = Instant::now();
        ex.compute(ComputeOp {
            key,
            gpus: vec![0],
            model: m,
            layers: 0..ex.layouts[m].layers(),
            requests: (0..b as u64).collect(),
            ..ComputeOp::default()
        })?;
        Ok((ex.wait_for_compute(key)? - t0).as_secs_f64())
    };
    // Warm-up: every shape once (kernels load lazily).
    for &b in &opts.batches {
        for m in 0..n {
            pass(&mut ex, m, b)?;
        }
    }
    // Back to back, the architectures taking turns.
    let mut host = vec![vec![Vec::with_capacity(rounds); opts.batches.len()]; n];
    for _ in 0..rounds {
        for (bi, &b) in opts.batches.iter().enumerate() {
            for (m, per_arch) in host.iter_mut().enumerate() {
                per_arch[bi].push(pass(&mut ex, m, b)?);
            }
        }
    }
    let paced: Vec<Vec<f64>> = host
        .iter_mut()
        .map(|per_arch| per_arch.iter_mut().map(|v| median(v)).collect())
        .collect();
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
                    extra.push(pass(&mut ex, m, opts.batches[bi])? - per_arch[bi]);
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
        };
        let mut profile = HardwareProfile::resolve("h200-pcie5", None).unwrap();
        profile.gpu_memory_bytes = 8 << 30;
        profile.calibrated.insert(
            "tiny".into(),
            switchyard_core::hardware::CalibratedTimes {
                batch_sizes: vec![1, 2],
                layer_s: vec![vec![1.0, 3.0], vec![2.0, 6.0]],
                items_per_request: 1,
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
}
