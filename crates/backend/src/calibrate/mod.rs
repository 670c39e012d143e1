//! `replay calibrate`: measures a device and writes a hardware profile in the
//! YAML format `core::hardware` reads.
//!
//! - Links: host-to-device copies of a sweep of sizes, pinned and pageable
//!   (and peer copies when there are two GPUs), each size timed several
//!   times (median); `alpha` and `beta` are the least-squares fit of
//!   `time = alpha + bytes / beta`. Pinned beta is then replaced by the
//!   rate of back-to-back copies (what a swap of many groups sees) and
//!   pageable beta by the rate of a large copy moved in replay's pageable
//!   chunks (what stop-and-start's whole-model copies see), and at the end
//!   by the rate of whole-model pageable loads through the executor
//!   ([`paced`]), which is what replay sees. Pageable copies
//!   of all GPUs are marked as sharing one host path (`pageable_shared`):
//!   replay's one host thread stages them one at a time.
//! - Direct host reads (`links.direct_host_gbps`): a matrix product reading
//!   its weight from mapped pinned host memory ([`direct_read`]).
//! - Compute: the fp16 GEMM rate (8192^3 through cuBLAS), and per-layer
//!   compute times of each architecture asked for at each batch size
//!   (median of several passes, CUDA events around every layer, scaled to
//!   the median whole pass: see [`crate::calibrate::passes`]), written to
//!   the profile's `calibrated` map. With `--dtypes fp32,bf16` the same
//!   for models whose weights are of those types: the fp32 GEMM rate goes
//!   to `compute.fp32_flops_per_s`, and each architecture's passes in the
//!   type to `calibrated` under `arch@fp32` / `arch@bf16`
//!   ([`switchyard_core::hardware::calibrated_key`]), which the simulator
//!   uses for models of that type
//!   ([`switchyard_core::hardware::HardwareProfile::for_dtype`]).
//! - Host overhead per request (`compute.request_overhead_us`) and the
//!   variation of copies and passes (`jitter`, robust CVs).
//!
//! Fields not measured (HBM bandwidth, launch overhead, reserved memory,
//! synthetic slope, and peer link on one GPU) come from a base profile.

mod direct_read;
pub mod layer_times;
mod loaded;
pub mod options;
pub mod paced;
pub mod passes;
pub mod stalls;

pub use options::CalibrateOptions;

use crate::device::{el_bytes, Device, Dtype, Gemm, Mat, StreamKind};
use crate::forward;
use crate::model::ModelLayout;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::time::Instant;
use switchyard_core::hardware::{CalibratedTimes, HardwareProfile, LinkCost, GIB_BYTES};
use switchyard_core::stats::median;

/// One fitted link with its samples.
#[derive(Debug, Clone)]
pub struct LinkFit {
    /// The fit.
    pub cost: LinkCost,
    /// `(bytes, median seconds)` samples.
    pub samples: Vec<(u64, f64)>,
}

/// Least-squares fit of `t = alpha + bytes / beta` in relative error
/// (each sample weighted by `1 / t^2`), so the small copies fix `alpha` and
/// the large ones `beta`; alpha is clamped at 0.
pub fn fit(samples: &[(u64, f64)]) -> LinkCost {
    // Weighted normal equations for t = a + s * x.
    let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (b, t) in samples {
        let (x, w) = (*b as f64, 1.0 / (t * t).max(1e-30));
        sw += w;
        sx += w * x;
        sy += w * t;
        sxx += w * x * x;
        sxy += w * x * t;
    }
    let det = sw * sxx - sx * sx;
    let (mut a, mut slope) = if det.abs() > 0.0 {
        ((sxx * sy - sx * sxy) / det, (sw * sxy - sx * sy) / det)
    } else {
        (0.0, sy / sx.max(1.0))
    };
    if a < 0.0 {
        // Refit through the origin.
        a = 0.0;
        slope = sxy / sxx.max(1e-300);
    }
    LinkCost {
        alpha_s: a,
        beta_bytes_per_s: 1.0 / slope.max(1e-15),
    }
}

/// Copy sizes of the sweep: 256 KiB to `max` by factors of 4.
pub fn sweep_sizes(max: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut s = 256u64 << 10;
    while s <= max {
        v.push(s);
        s *= 4;
    }
    v
}

/// Times host-to-device copies of each size (copy-stream events for pinned
/// memory; host clock around a synchronized copy for pageable memory).
pub fn measure_h2d(
    dev: &mut dyn Device,
    pinned: bool,
    sizes: &[u64],
    reps: usize,
) -> Result<LinkFit> {
    let max = *sizes.iter().max().unwrap_or(&1);
    let mut host = dev.alloc_host(max, pinned)?;
    for (i, b) in host.as_mut_slice().iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31);
    }
    let mut samples = Vec::new();
    for &s in sizes {
        let mut times = Vec::new();
        for r in 0..reps + 1 {
            let t = if pinned {
                let a = dev.record(0, StreamKind::Copy)?;
                dev.copy_h2d(0, &host, 0, 0, s)?;
                let b = dev.record(0, StreamKind::Copy)?;
                dev.synchronize(b)?;
                let t = dev.elapsed_s(a, b)?;
                dev.release(a);
                dev.release(b);
                t
            } else {
                let t0 = Instant::now();
                dev.copy_h2d(0, &host, 0, 0, s)?;
                let b = dev.record(0, StreamKind::Copy)?;
                dev.synchronize(b)?;
                dev.release(b);
                t0.elapsed().as_secs_f64()
            };
            if r > 0 {
                times.push(t);
            }
        }
        samples.push((s, median(&mut times)));
    }
    Ok(LinkFit {
        cost: fit(&samples),
        samples,
    })
}

/// Sustained pinned host-to-device copying, as a swap of several layer
/// groups does it: `reps` copies of `bytes` issued back to back, an event
/// between each two. Returns the bandwidth over the whole run (bytes/s) and
/// the robust CV of the single copies' times (see [`passes::robust_cv`]).
pub fn sustained_copies(dev: &mut dyn Device, bytes: u64, reps: usize) -> Result<(f64, f64)> {
    let host = dev.alloc_host(bytes, true)?;
    // One untimed copy first: the link is warm when the run starts.
    dev.copy_h2d(0, &host, 0, 0, bytes)?;
    let mut events = vec![dev.record(0, StreamKind::Copy)?];
    for _ in 0..reps.max(1) {
        dev.copy_h2d(0, &host, 0, 0, bytes)?;
        events.push(dev.record(0, StreamKind::Copy)?);
    }
    dev.synchronize(*events.last().expect("at least two events"))?;
    let mut times = Vec::with_capacity(reps);
    for w in events.windows(2) {
        times.push(dev.elapsed_s(w[0], w[1])?);
    }
    let total: f64 = times.iter().sum();
    for e in events {
        dev.release(e);
    }
    let mid = median(&mut times.clone());
    let relative: Vec<f64> = times.iter().map(|t| t / mid.max(1e-12)).collect();
    Ok((
        (bytes * times.len() as u64) as f64 / total.max(1e-12),
        passes::robust_cv(&relative),
    ))
}

/// Pageable host-to-device copying as `replay` does it: on every GPU of the
/// device at once, `bytes` each, moved in `chunk`-sized copies issued in
/// turn (one chunk per GPU, then the next), from a filled buffer; host
/// clock from the first issue to every copy stream being done. Returns the
/// median rate of `reps` runs over all GPUs together, bytes/s: the rate of
/// the one host path the profile's `pageable_shared` describes.
pub fn pageable_chunked(dev: &mut dyn Device, bytes: u64, chunk: u64, reps: usize) -> Result<f64> {
    let mut host = dev.alloc_host(bytes, false)?;
    for (i, b) in host.as_mut_slice().iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31);
    }
    let chunk = chunk.clamp(1, bytes.max(1));
    let gpus = dev.gpus().max(1);
    let mut rates = Vec::new();
    for r in 0..reps.max(1) + 1 {
        let t0 = Instant::now();
        let mut off = 0;
        while off < bytes {
            let n = chunk.min(bytes - off);
            for g in 0..gpus {
                dev.copy_h2d(g, &host, off, off, n)?;
            }
            off += n;
        }
        for g in 0..gpus {
            let e = dev.record(g, StreamKind::Copy)?;
            dev.synchronize(e)?;
            dev.release(e);
        }
        if r > 0 {
            rates.push((bytes * gpus as u64) as f64 / t0.elapsed().as_secs_f64().max(1e-12));
        }
    }
    Ok(median(&mut rates))
}

/// Times peer copies from GPU 1 to GPU 0.
pub fn measure_peer(
    dev: &mut dyn Device,
    sizes: &[u64],
    reps: usize,
    src_at: u64,
) -> Result<LinkFit> {
    let mut samples = Vec::new();
    for &s in sizes {
        let mut times = Vec::new();
        for r in 0..reps + 1 {
            let a = dev.record(0, StreamKind::Compute)?;
            dev.copy_peer(0, 0, 1, src_at, s)?;
            let b = dev.record(0, StreamKind::Compute)?;
            dev.synchronize(b)?;
            if r > 0 {
                times.push(dev.elapsed_s(a, b)?);
            }
            dev.release(a);
            dev.release(b);
        }
        samples.push((s, median(&mut times)));
    }
    Ok(LinkFit {
        cost: fit(&samples),
        samples,
    })
}

/// GEMM rate of an `n^3` product of elements of `dtype` at arena offset 0, FLOP/s.
pub fn gemm_rate(dev: &mut dyn Device, n: usize, reps: usize, dtype: Dtype) -> Result<f64> {
    let el = (n * n * el_bytes(dtype)) as u64;
    for i in 0..3u64 {
        dev.fill_random(0, i * el, n * n, 11 + i, 0.05, dtype)?;
    }
    let g = Gemm::plain(n, n, n, Mat::n(0, n), Mat::n(el, n), Mat::n(2 * el, n)).typed(dtype);
    Ok(crate::device::gemm_rate_of(dev, 0, &g, reps)?)
}

/// Measures `dev` and returns the profile (plus a report of the samples).
pub fn calibrate(
    dev: &mut dyn Device,
    opts: &CalibrateOptions,
) -> Result<(HardwareProfile, String)> {
    let mut profile = opts.base.clone();
    profile.name = opts.name.clone();
    if let Some(t) = dev.total_memory(0) {
        profile.gpu_memory_bytes = t;
        if profile.reserved_bytes >= t {
            profile.reserved_bytes = t / 10;
        }
    }
    let entries = opts.entries();
    let mut layouts = Vec::new();
    for (a, d) in &entries {
        let Some(shape) = switchyard_core::arch::builtin(a) else {
            bail!(
                "unknown architecture `{a}`; expected one of: {}",
                switchyard_core::arch::NAMES.join(", ")
            );
        };
        layouts.push(ModelLayout::typed(&shape.with_dtype(*d), *d)?);
    }
    let widest = opts
        .dtypes()
        .iter()
        .map(|&d| el_bytes(d))
        .max()
        .unwrap_or(2);
    let cuda = dev.kind() == "cuda";
    let max_copy: u64 = if cuda { GIB_BYTES } else { 16 << 20 };
    let weights: u64 = layouts
        .iter()
        .map(|l| l.total_bytes().div_ceil(256) * 256)
        .sum();
    let max_b = *opts.batches.iter().max().unwrap_or(&1) as usize;
    let ws = layouts
        .iter()
        .map(|l| forward::workspace_bytes(l, max_b))
        .max()
        .unwrap_or(0);
    let gemm_n = if cuda { 8192 } else { 128 };
    let region = weights
        .max(max_copy)
        .max(3 * (gemm_n * gemm_n * widest) as u64);
    dev.init_arena(region + ws + (64 << 20))?;
    let mut report = String::new();
    let sizes = sweep_sizes(max_copy);
    let pinned = measure_h2d(dev, true, &sizes, opts.reps)?;
    let pageable = measure_h2d(dev, false, &sizes, opts.reps.min(3))?;
    for (name, f) in [("pinned", &pinned), ("pageable", &pageable)] {
        report += &format!(
            "{name}: alpha {:.2} us, beta {:.2} GB/s;",
            f.cost.alpha_s * 1e6,
            f.cost.beta_bytes_per_s / 1e9
        );
        for (b, t) in &f.samples {
            report += &format!(" {}KiB:{:.2}GB/s", b >> 10, *b as f64 / t / 1e9);
        }
        report += "\n";
    }
    profile.pinned = pinned.cost;
    profile.pageable = pageable.cost;
    // Pageable throughput is not linear in size (it peaks near 16 MiB and
    // falls for larger copies), and replay moves a pageable group as chunks
    // issued one after another: take beta from exactly that.
    let chunked = pageable_chunked(dev, max_copy, crate::exec::PAGEABLE_CHUNK, opts.reps.min(3))?;
    report += &format!(
        "pageable sustained ({} MiB to each of {} GPUs in {} MiB chunks, as replay copies): {:.2} GB/s together (used as beta of the shared path)\n",
        max_copy >> 20,
        dev.gpus().max(1),
        crate::exec::PAGEABLE_CHUNK >> 20,
        chunked / 1e9
    );
    profile.pageable.beta_bytes_per_s = chunked;
    // replay's one host thread issues every copy and a pageable copy holds
    // it until staged: pageable copies of all GPUs share one host path,
    // whose rate is the one just measured over all GPUs together.
    profile.pageable_shared = true;
    // The fit's beta comes from copies timed one at a time; a swap streams
    // its groups back to back, which the sustained rate describes better.
    let (beta, cv) = sustained_copies(dev, max_copy / 4, opts.reps.max(15))?;
    report += &format!(
        "pinned sustained ({} MiB copies back to back): {:.2} GB/s, cv {:.4} (used as beta)\n",
        max_copy >> 22,
        beta / 1e9,
        cv
    );
    profile.pinned.beta_bytes_per_s = beta;
    profile.jitter.copy_cv = cv;
    // Kernels reading weights in place from mapped pinned memory
    // (`policy.direct_host`): a product over a `max_copy / 4` weight.
    let direct = direct_read::direct_read_rate(dev, max_copy / 4, region, opts.reps.max(5))?;
    report += &format!(
        "direct host reads ({} MiB weight in mapped pinned memory, {} tokens): {:.2} GB/s (links.direct_host_gbps)\n",
        max_copy >> 22,
        8,
        direct / 1e9
    );
    profile.direct_host = Some(direct);
    if dev.gpus() > 1 {
        let peer = measure_peer(dev, &sizes, opts.reps, 0)?;
        report += &format!(
            "peer: alpha {:.2} us, beta {:.2} GB/s\n",
            peer.cost.alpha_s * 1e6,
            peer.cost.beta_bytes_per_s / 1e9
        );
        profile.peer = peer.cost;
    }
    let mut rates = Vec::new();
    for d in opts.dtypes() {
        let rate = gemm_rate(dev, gemm_n, if cuda { 20 } else { 2 }, d)?;
        report += &format!("{} gemm {gemm_n}^3: {:.1} TFLOP/s\n", d.name(), rate / 1e12);
        if cuda {
            match d {
                Dtype::Fp16 => profile.compute.flops_per_s = rate,
                Dtype::Fp32 => profile.compute.fp32_flops_per_s = Some(rate),
                // bf16 runs at the fp16 rate in the cost model: reported only.
                Dtype::Bf16 => {}
            }
        }
        rates.push((d, rate));
    }
    let rate_of = |d: Dtype| rates.iter().find(|r| r.0 == d).map_or(0.0, |r| r.1);
    // Weights of every architecture, back to back, then the workspace.
    let mut at = 0u64;
    let mut calibrated = BTreeMap::new();
    let (mut overhead, mut relative) = (Vec::new(), Vec::new());
    let mut idle: Vec<Vec<f64>> = vec![Vec::new(); passes::IDLE_GAPS_S.len()];
    let ws_base = region.div_ceil(256) * 256;
    forward::init_workspace(dev, 0, ws_base, &opts.dtypes())?;
    for ((arch, d), layout) in entries.iter().zip(&layouts) {
        let a = &CalibrateOptions::key(arch, *d);
        let mut host = dev.alloc_host(layout.total_bytes(), true)?;
        crate::model::weights::fill_random(layout, 7, host.as_mut_slice());
        dev.copy_h2d(0, &host, 0, at, layout.total_bytes())?;
        let e = dev.record(0, StreamKind::Copy)?;
        dev.synchronize(e)?;
        dev.release(e);
        let passes = passes::measure(
            dev,
            layout,
            at,
            ws_base,
            &passes::Plan {
                batches: &opts.batches,
                reps: opts.reps,
                gemm_rate: rate_of(*d),
                graphs: opts.graphs,
                idle: opts.idle,
            },
        )?;
        // Host overhead, jitter and idle penalty: of the fp16 passes.
        if *d == Dtype::Fp16 {
            overhead.extend_from_slice(&passes.overhead_s);
            relative.extend_from_slice(&passes.relative);
            for per_batch in &passes.idle_extra_s {
                for (i, &x) in per_batch.iter().enumerate() {
                    idle[i].push(x);
                }
            }
        }
        let g = passes.graphs;
        report += &format!(
            "{a} graphs: {} launches, {} captures ({} updated in place)\n",
            g.launches, g.captures, g.updates
        );
        let rows = passes.rows;
        for (b, row) in opts.batches.iter().zip(&rows) {
            report += &format!(
                "{a} batch {b}: {:.3} ms over {} layers\n",
                row.iter().sum::<f64>() * 1e3,
                row.len()
            );
        }
        calibrated.insert(
            a.clone(),
            CalibratedTimes {
                batch_sizes: opts.batches.clone(),
                layer_s: rows,
                items_per_request: layout.shape.items_per_request,
                ..Default::default()
            },
        );
        at += layout.total_bytes().div_ceil(256) * 256;
    }
    profile.calibrated = calibrated;
    if !overhead.is_empty() {
        profile.compute.request_overhead_s = median(&mut overhead);
        profile.jitter.compute_cv = passes::robust_cv(&relative);
    }
    if idle.iter().all(|v| !v.is_empty()) {
        profile.compute.idle_penalty = passes::IDLE_GAPS_S
            .iter()
            .zip(&mut idle)
            .map(|(&gap, v)| (gap, median(v).max(0.0)))
            .collect();
        report += "idle penalty (gap: extra, median over architectures and batch sizes):";
        for (gap, extra) in &profile.compute.idle_penalty {
            report += &format!(" {:.1} ms: {:.1} us", gap * 1e3, extra * 1e6);
        }
        report += "\n";
    }
    report += &format!(
        "request overhead {:.1} us; jitter: copy cv {:.4}, compute cv {:.4}\n",
        profile.compute.request_overhead_s * 1e6,
        profile.jitter.copy_cv,
        profile.jitter.compute_cv
    );
    Ok((profile, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_alpha_and_beta() {
        let (alpha, beta) = (3e-6, 50e9);
        let samples: Vec<(u64, f64)> = sweep_sizes(GIB_BYTES)
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    b,
                    (alpha + b as f64 / beta) * if i % 2 == 0 { 1.01 } else { 0.99 },
                )
            })
            .collect();
        let f = fit(&samples);
        assert!((f.alpha_s - alpha).abs() < 0.5e-6, "{f:?}");
        assert!((f.beta_bytes_per_s / beta - 1.0).abs() < 0.02, "{f:?}");
    }

    #[test]
    fn cpu_calibration_writes_a_readable_profile() {
        let mut dev = crate::device::cpu::CpuDevice::new(1);
        let opts = CalibrateOptions {
            archs: vec![],
            batches: vec![1],
            base: HardwareProfile::resolve("h200-pcie5", None).unwrap(),
            name: "cpu-test".into(),
            reps: 1,
            tp: vec![],
            graphs: false,
            idle: Default::default(),
            dtypes: vec![Dtype::Fp32],
        };
        let (p, report) = calibrate(&mut dev, &opts).unwrap();
        assert!(report.contains("pinned"));
        let q =
            switchyard_core::hardware::parse(std::path::Path::new("x.yaml"), &p.to_yaml()).unwrap();
        assert_eq!(q.name, "cpu-test");
        assert!(q.pinned.beta_bytes_per_s > 0.0);
        assert!(report.contains("fp32 gemm"), "{report}");
        assert!(report.contains("direct host reads"), "{report}");
        assert!(q.direct_host.is_some_and(|r| r > 0.0));
    }
}
