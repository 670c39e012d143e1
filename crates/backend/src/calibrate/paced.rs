//! Whole passes timed through the executor, as `replay` runs them: the last
//! step of `replay calibrate`.
//!
//! The per-architecture passes of [`crate::calibrate::passes`] repeat one
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

use super::loaded::{Loaded, PacedTimes};
use super::options::CalibrateOptions;
use super::passes::IDLE_GAPS_S;
use crate::device::{Device, Dtype};
use crate::pace::idle_until;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};
use switchyard_core::hardware::{HardwareProfile, ParallelPasses};
use switchyard_core::stats::median;

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
    let dev = pageable_loads(dev, &model_entries(opts, 1), opts, profile, report)?;
    tensor_parallel(dev, |tp| model_entries(opts, tp), opts, profile, report)
}

/// The workload `models` entries (YAML list items) of `opts`' architectures,
/// in order, each split `tp` ways.
fn model_entries(opts: &CalibrateOptions, tp: u32) -> String {
    let max_b = opts.batches.iter().copied().max().unwrap_or(1);
    opts.entries()
        .iter()
        .map(|(a, d)| {
            let typed = match d {
                Dtype::Fp16 => String::new(),
                d => format!(
                    "name: \"{}\", dtype: {}, ",
                    CalibrateOptions::key(a, *d),
                    d.name()
                ),
            };
            format!(
                "  - {{ {typed}arch: {a}, max_batch: {max_b}, parallel: {{ tp: {tp}, pp: 1 }} }}\n"
            )
        })
        .collect()
}

/// Rounds of interleaved passes per batch size (9 at the default 5 repetitions).
fn rounds(opts: &CalibrateOptions) -> usize {
    2 * opts.reps.max(1) - 1
}

/// [`refine`]'s one-GPU step for the workload `models` entries, one per
/// entry of `opts.entries()`, in that order; gives the device back.
fn refine_models(
    dev: Box<dyn Device>,
    models: &str,
    opts: &CalibrateOptions,
    profile: &mut HardwareProfile,
    report: &mut String,
) -> Result<Box<dyn Device>> {
    // Rounds per idle gap (3 at the default 5 repetitions).
    let idle_rounds = opts.reps.max(1).div_ceil(2);
    let mut group = Loaded::new(dev, models, profile, 1, opts.graphs, false)?;
    let PacedTimes {
        issued,
        queued,
        issue,
    } = group.paced(&opts.batches, rounds(opts))?;
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
                for (m, per_arch) in issued.iter().enumerate() {
                    idle_until(Instant::now() + Duration::from_secs_f64(gap), opts.idle);
                    extra.push(group.pass(m, opts.batches[bi])?.0 - per_arch[bi]);
                }
            }
        }
        penalty.push((gap, median(&mut extra).max(0.0)));
    }
    // Host stalls: passes at the smallest batch, back to back in turns.
    let b0 = opts.batches[0];
    let budget = Duration::from_secs_f64(0.8 * opts.reps.max(1) as f64);
    let stalls = super::stalls::measure(issued.len(), budget, |m| Ok(group.pass(m, b0)?.0))?;
    profile.jitter.host_stall_rate_per_s = stalls.rate_per_s();
    profile.jitter.host_stall_ms = stalls.quantiles_ms();
    if profile.jitter.host_stall_ms.is_empty() {
        profile.jitter.host_stall_rate_per_s = 0.0;
    }
    let overhead = profile.compute.request_overhead_s;
    *report += "passes through the executor, architectures taking turns (replaces the pass times above):\n";
    for (m, (arch, d)) in opts.entries().iter().enumerate() {
        let a = &CalibrateOptions::key(arch, *d);
        let Some(c) = profile.calibrated.get_mut(a) else {
            bail!("architecture {a} was not calibrated before the paced passes");
        };
        for (bi, row) in c.layer_s.iter_mut().enumerate() {
            let sum: f64 = row.iter().sum();
            let want = (issued[m][bi] - overhead).max(0.0);
            if sum > 0.0 {
                row.iter_mut().for_each(|t| *t *= want / sum);
            }
            *report += &format!(
                "{a} batch {} paced: {:.3} ms, queued behind a copy {:.3} ms, host issuing {:.3} ms (back to back alone: {:.3} ms)\n",
                opts.batches[bi],
                want * 1e3,
                (queued[m][bi] - overhead).max(0.0) * 1e3,
                issue[m][bi] * 1e3,
                sum * 1e3
            );
        }
        c.queued_pass_s = queued[m].iter().map(|t| (t - overhead).max(1e-9)).collect();
        c.issue_pass_s = issue[m].iter().map(|t| t.max(1e-9)).collect();
    }
    profile.compute.idle_penalty = penalty;
    *report += "idle penalty through the executor (replaces the one above):";
    for (gap, extra) in &profile.compute.idle_penalty {
        *report += &format!(" {:.1} ms: {:.1} us", gap * 1e3, extra * 1e6);
    }
    *report += &format!(
        "\nhost stalls (batch-{b0} passes back to back in turns, over {:.1} ms above their median): {} in {} passes, {:.3} s; {:.2} per s; sizes ms {:?}{}\n",
        super::stalls::THRESHOLD_S * 1e3,
        stalls.stalls_s.len(),
        stalls.passes,
        stalls.seconds,
        stalls.rate_per_s(),
        stalls.quantiles_ms(),
        if profile.jitter.host_stalls() {
            ""
        } else {
            " (fewer than two: none kept)"
        }
    );
    Ok(group.ex.dev)
}

/// [`refine`]'s pageable step: every architecture held in pageable memory
/// (as stop-and-start holds it) and reloaded through the executor in turns,
/// in replay's chunks, alone and while another model serves batch-1
/// passes back to back. The profile's pageable beta becomes the median rate
/// alone: on an H200 the executor's loads ran at 6.91 GB/s against 8.99
/// GB/s for the same chunks copied in a bare loop, and replay's copy calls
/// at 6.75 GB/s. The rate while serving (5.67 GB/s there) is reported, not
/// used: the simulator already holds its shared host lane for a pageable
/// copy, so the passes issued between chunks are timed there.
fn pageable_loads(
    dev: Box<dyn Device>,
    models: &str,
    opts: &CalibrateOptions,
    profile: &mut HardwareProfile,
    report: &mut String,
) -> Result<Box<dyn Device>> {
    let mut group = Loaded::new(dev, models, profile, 1, opts.graphs, true)?;
    let n = group.offsets.len();
    // Warm every pass shape the serving model runs.
    for m in 0..n {
        group.pass(m, 1)?;
    }
    let (mut alone, mut serving) = (Vec::new(), Vec::new());
    let (mut alone_calls, mut serving_calls) = (Vec::new(), Vec::new());
    for _ in 0..opts.reps.clamp(1, 3) {
        for m in 0..n {
            let (stream, calls) = group.reload_rate(m, None)?;
            alone.push(stream);
            alone_calls.push(calls);
            let other = (m + 1) % n;
            let (stream, calls) = group.reload_rate(m, (other != m).then_some(other))?;
            serving.push(stream);
            serving_calls.push(calls);
        }
    }
    let (alone, serving) = (median(&mut alone), median(&mut serving));
    *report += &format!(
        "pageable loads through the executor ({} MiB chunks, each architecture in turn): {:.2} GB/s alone (used as beta of the shared path), {:.2} GB/s while another model serves; {:.2} GB/s sustained outside the executor\n",
        crate::exec::PAGEABLE_CHUNK >> 20,
        alone / 1e9,
        serving / 1e9,
        profile.pageable.beta_bytes_per_s / 1e9
    );
    // Reported, not used: the rate of the copy calls alone, which replay's
    // `host_path` also counts, to choose between the two on tune data.
    *report += &format!(
        "pageable loads, the host's copy calls alone (bytes over seconds inside the calls, as replay's host_path): {:.2} GB/s alone, {:.2} GB/s while another model serves\n",
        median(&mut alone_calls) / 1e9,
        median(&mut serving_calls) / 1e9
    );
    profile.pageable.beta_bytes_per_s = alone;
    Ok(group.ex.dev)
}

/// [`refine`]'s tensor-parallel step: for each degree of `opts.tp`, every
/// architecture (the workload `models` entries `entries(tp)`, in the order
/// of `opts.entries()`) split over GPUs `0..tp`, timed as the one-GPU passes are;
/// each pass (less the per-request overhead) goes to `tensor_parallel`.
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
        let mut group = Loaded::new(dev, &entries(tp), profile, tp, opts.graphs, false)?;
        let paced = group.paced(&opts.batches, rounds(opts))?;
        *report += &format!(
            "passes split over {tp} GPUs (tensor parallel), architectures taking turns:\n"
        );
        for (m, (arch, d)) in opts.entries().iter().enumerate() {
            let a = &CalibrateOptions::key(arch, *d);
            let Some(c) = profile.calibrated.get_mut(a) else {
                bail!("architecture {a} was not calibrated before the tensor-parallel passes");
            };
            let less_overhead =
                |v: &[f64]| -> Vec<f64> { v.iter().map(|t| (t - overhead).max(1e-9)).collect() };
            let passes = ParallelPasses {
                pass_s: less_overhead(&paced.issued[m]),
                queued_pass_s: less_overhead(&paced.queued[m]),
                issue_pass_s: paced.issue[m].iter().map(|t| t.max(1e-9)).collect(),
            };
            for (bi, b) in opts.batches.iter().enumerate() {
                *report += &format!(
                    "{a} tp {tp} batch {b}: {:.3} ms, queued behind a copy {:.3} ms, host issuing {:.3} ms (one GPU: {:.3} ms)\n",
                    passes.pass_s[bi] * 1e3,
                    passes.queued_pass_s[bi] * 1e3,
                    passes.issue_pass_s[bi] * 1e3,
                    c.layer_s[bi].iter().sum::<f64>() * 1e3
                );
            }
            c.tensor_parallel.insert(tp, passes);
        }
        dev = group.ex.dev;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu::CpuDevice;

    /// Options calibrating the synthetic `tiny` (batches 1 and 2, tensor
    /// parallelism `tp`) and a profile holding its one-GPU layer times.
    fn tiny(tp: Vec<u32>) -> (CalibrateOptions, HardwareProfile) {
        let opts = CalibrateOptions {
            archs: vec!["tiny".into()],
            batches: vec![1, 2],
            base: HardwareProfile::resolve("h200-pcie5", None).unwrap(),
            name: "t".into(),
            reps: 1,
            tp,
            graphs: false,
            idle: Default::default(),
            dtypes: vec![],
        };
        let mut profile = HardwareProfile::resolve("h200-pcie5", None).unwrap();
        profile.gpu_memory_bytes = 8 << 30;
        profile.calibrated.insert(
            "tiny".into(),
            switchyard_core::hardware::CalibratedTimes {
                batch_sizes: vec![1, 2],
                layer_s: vec![vec![1.0, 3.0], vec![2.0, 6.0]],
                items_per_request: 1,
                ..Default::default()
            },
        );
        (opts, profile)
    }

    #[test]
    fn cpu_paced_passes_rescale_every_calibrated_row() {
        let (opts, mut profile) = tiny(vec![]);
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
        let queued = &profile.calibrated["tiny"].queued_pass_s;
        assert_eq!(queued.len(), 2);
        assert_eq!(profile.calibrated["tiny"].issue_pass_s.len(), 2);
        assert!(queued.iter().all(|&t| t > 0.0 && t < 1.0), "{queued:?}");
        assert_eq!(profile.compute.idle_penalty.len(), IDLE_GAPS_S.len());
        assert!(report.contains("tiny batch 2 paced"), "{report}");
    }

    #[test]
    fn cpu_paced_passes_of_fp32_entries_go_to_their_own_key() {
        let (mut opts, mut profile) = tiny(vec![]);
        opts.dtypes = vec![Dtype::Fp32];
        let fp32 = CalibrateOptions::key("tiny", Dtype::Fp32);
        assert_eq!(
            opts.entries(),
            vec![("tiny".into(), Dtype::Fp16), ("tiny".into(), Dtype::Fp32)]
        );
        let c = profile.calibrated["tiny"].clone();
        profile.calibrated.insert(fp32.clone(), c);
        let mut report = String::new();
        let models = format!(
            "  - {{ name: tiny, layers: 2, layer_mb: 1, layer_ms: 0.05, max_batch: 2 }}\n  \
             - {{ name: \"{fp32}\", dtype: fp32, layers: 2, layer_mb: 1, layer_ms: 0.05, max_batch: 2 }}\n"
        );
        let dev = Box::new(CpuDevice::new(1));
        refine_models(dev, &models, &opts, &mut profile, &mut report).unwrap();
        for key in ["tiny", fp32.as_str()] {
            let c = &profile.calibrated[key];
            assert_eq!(c.queued_pass_s.len(), 2, "{key}");
            assert!(
                c.layer_s.iter().all(|r| r.iter().sum::<f64>() < 1.0),
                "{key}"
            );
        }
        assert!(report.contains("tiny@fp32 batch 2 paced"), "{report}");
    }

    #[test]
    fn cpu_pageable_loads_set_the_shared_beta() {
        let (opts, mut profile) = tiny(vec![]);
        profile.pageable.beta_bytes_per_s = 1.0;
        let mut report = String::new();
        // Two models, so one serves while the other reloads.
        let models = "  - { name: a, layers: 2, layer_mb: 1, layer_ms: 0.05, max_batch: 2 }\n  \
                      - { name: b, layers: 2, layer_mb: 1, layer_ms: 0.05, max_batch: 2 }\n";
        let dev = Box::new(CpuDevice::new(1));
        pageable_loads(dev, models, &opts, &mut profile, &mut report).unwrap();
        // A real rate replaced the 1 B/s put in (CPU memcpy: well over 1 MB/s).
        assert!(profile.pageable.beta_bytes_per_s > 1e6, "{report}");
        assert!(report.contains("while another model serves"), "{report}");
        // The copy calls' own rate is reported, as timed.
        let calls = report
            .lines()
            .find(|l| l.contains("the host's copy calls alone"))
            .unwrap_or_else(|| panic!("{report}"));
        let gbps: f64 = calls
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // Above 10 TB/s would mean no copy call was timed (bytes over ~0 s).
        assert!(gbps > 0.0 && gbps < 1e4, "{calls}");
    }

    #[test]
    fn cpu_tensor_parallel_passes_are_stored_per_degree() {
        let (mut opts, mut profile) = tiny(vec![2]);
        let entries = |tp: u32| {
            format!("  - {{ name: tiny, layers: 2, layer_mb: 1, layer_ms: 0.05, max_batch: 2, parallel: {{ tp: {tp}, pp: 1 }} }}\n")
        };
        let mut report = String::new();
        let dev = Box::new(CpuDevice::new(2));
        tensor_parallel(dev, entries, &opts, &mut profile, &mut report).unwrap();
        let c = &profile.calibrated["tiny"];
        assert_eq!(c.tensor_parallel.len(), 1);
        let passes = &c.tensor_parallel[&2];
        for v in [&passes.pass_s, &passes.queued_pass_s] {
            assert_eq!(v.len(), 2);
            assert!(v.iter().all(|&t| t > 0.0 && t < 1.0), "{v:?}");
        }
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
