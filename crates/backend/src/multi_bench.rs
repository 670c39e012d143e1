//! Computron's swap-in over several GPUs (`swap-bench --multi-gpu N`): the
//! time to bring a model (OPT-13B by default) from pinned host memory into
//! GPU memory
//!
//! - whole, over one GPU's link;
//! - split in `N` pipeline stages, each stage over its own GPU's link at once;
//! - split `N` ways by tensor parallelism, each rank's shard over its own
//!   GPU's link at once (shards and the side tensors every rank keeps whole,
//!   [`crate::model::shard`]);
//!
//! against the limit measured in the same run: every GPU copying 1 GiB of
//! pinned memory at the same time (the sum of the links), and each link
//! alone. Times are host wall clock from issuing the first copy to the last
//! GPU's copy-stream event completing; the median of `reps` runs.

use crate::device::{Device, StreamKind};
use crate::host_store::{HostStore, WeightSource};
use crate::model::shard::ShardLayout;
use crate::model::ModelLayout;
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::time::Instant;
use switchyard_core::model::stage_partition;
use switchyard_core::stats::median;

/// One configuration's swap-in.
#[derive(Debug, Clone, Serialize)]
pub struct MultiRow {
    /// `one GPU`, `pp=N` or `tp=N`.
    pub config: String,
    /// GPUs whose links carry it.
    pub gpus: usize,
    /// Bytes copied, all GPUs (side tensors included).
    pub bytes: u64,
    /// Bytes of the most loaded GPU.
    pub max_gpu_bytes: u64,
    /// Median swap-in time, seconds.
    pub time_s: f64,
    /// `bytes / time`, GB/s.
    pub gb_s: f64,
    /// One-GPU time over this time.
    pub speedup: f64,
    /// Time at the measured limit of the links used (`bytes` at the summed
    /// concurrent 1 GiB rate) over this time: 1.0 is at the limit.
    pub of_limit: f64,
}

/// The multi-GPU swap-in benchmark's results.
#[derive(Debug, Clone, Serialize)]
pub struct MultiResult {
    /// The model.
    pub model: String,
    /// Its bytes.
    pub model_bytes: u64,
    /// Each GPU's 1 GiB pinned copy alone, GB/s.
    pub link_alone_gb_s: Vec<f64>,
    /// All `N` GPUs' 1 GiB pinned copies at once, summed GB/s.
    pub links_together_gb_s: f64,
    /// Size of the limit copies, bytes.
    pub limit_copy_bytes: u64,
    /// Configurations.
    pub rows: Vec<MultiRow>,
}

/// One host-to-device copy: GPU, source model (0: whole/pp, 1: tp), rank
/// image or side image `(stage, rank)`, source offset, destination, bytes.
struct Job<'a> {
    gpu: usize,
    src: &'a crate::device::HostBuffer,
    off: u64,
    dst: u64,
    bytes: u64,
}

/// Issues every job on its GPU's copy stream, then waits for all; seconds.
fn timed(dev: &mut dyn Device, jobs: &[Job]) -> Result<f64> {
    dev.synchronize_all()?;
    let t0 = Instant::now();
    let mut ends = Vec::new();
    let mut gpus: Vec<usize> = jobs.iter().map(|j| j.gpu).collect();
    gpus.dedup();
    for j in jobs {
        dev.copy_h2d(j.gpu, j.src, j.off, j.dst, j.bytes)?;
    }
    for g in gpus {
        ends.push(dev.record(g, StreamKind::Copy)?);
    }
    for &e in &ends {
        dev.synchronize(e)?;
    }
    let t = t0.elapsed().as_secs_f64();
    for e in ends {
        dev.release(e);
    }
    Ok(t)
}

/// Runs the benchmark on GPUs `0 .. n` of `dev` for the built-in `arch`.
pub fn multi_gpu(
    dev: &mut dyn Device,
    arch: &str,
    n: usize,
    reps: usize,
    limit_bytes: u64,
) -> Result<MultiResult> {
    let n = n.max(1);
    if dev.gpus() < n {
        anyhow::bail!("--multi-gpu {n}: the device has {} GPUs", dev.gpus());
    }
    let shape =
        switchyard_core::arch::builtin(arch).ok_or_else(|| anyhow!("unknown arch {arch}"))?;
    let layout = ModelLayout::new(&shape)?;
    let stages = stage_partition(&shape, n);
    let pp = ShardLayout::new(&layout, 1, &stages)?;
    let tp = ShardLayout::new(&layout, n, &[0..layout.layers()])?;
    let total = layout.total_bytes();
    let t = Instant::now();
    let host = HostStore::build(
        dev,
        &[layout.clone(), layout.clone()],
        &[pp.clone(), tp.clone()],
        &[format!("{arch}-pp"), format!("{arch}-tp")],
        true,
        false,
        &WeightSource::Random { seed: 3 },
    )?;
    eprintln!(
        "{arch}: {:.2} GB, pinned whole and {n} rank shards filled in {:.1} s",
        total as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );
    let side_max = (0..stages.len())
        .map(|s| pp.stage_side_bytes(s))
        .chain([tp.stage_side_bytes(0)])
        .max()
        .unwrap_or(0);
    let main_end = total.div_ceil(256) * 256;
    dev.init_arena(main_end + side_max.div_ceil(256) * 256 + 256)?;
    let whole = host.models[0]
        .pinned
        .as_ref()
        .ok_or_else(|| anyhow!("no pinned copy"))?;
    let limit_bytes = limit_bytes.min(total);
    let limit_job = |g: usize| Job {
        gpu: g,
        src: whole,
        off: (g as u64 * limit_bytes) % (total - limit_bytes + 1),
        dst: 0,
        bytes: limit_bytes,
    };
    let reps = reps.max(1);
    let mut alone = Vec::new();
    for g in 0..n {
        let v: Result<Vec<f64>> = (0..reps).map(|_| timed(dev, &[limit_job(g)])).collect();
        alone.push(limit_bytes as f64 / median(&mut v?) / 1e9);
    }
    let all: Vec<Job> = (0..n).map(limit_job).collect();
    let v: Result<Vec<f64>> = (0..reps).map(|_| timed(dev, &all)).collect();
    let together = (n as u64 * limit_bytes) as f64 / median(&mut v?) / 1e9;

    let mut configs: Vec<(String, Vec<Job>)> = vec![(
        "one GPU".into(),
        vec![Job {
            gpu: 0,
            src: whole,
            off: 0,
            dst: 0,
            bytes: total,
        }],
    )];
    let mut jobs = Vec::new();
    for (s, r) in stages.iter().enumerate() {
        let (off, bytes) = pp.main_range(r.clone());
        jobs.push(Job {
            gpu: s,
            src: whole,
            off,
            dst: 0,
            bytes,
        });
        if let Some(side) = host.models[0].side(s, 0) {
            jobs.push(Job {
                gpu: s,
                src: side,
                off: 0,
                dst: main_end,
                bytes: side.len(),
            });
        }
    }
    configs.push((format!("pp={n}"), jobs));
    let mut jobs = Vec::new();
    for r in 0..n {
        jobs.push(Job {
            gpu: r,
            src: host.models[1]
                .source(true, r)
                .ok_or_else(|| anyhow!("no pinned shard of rank {r}"))?,
            off: 0,
            dst: 0,
            bytes: tp.image_bytes(),
        });
        if let Some(side) = host.models[1].side(0, r) {
            jobs.push(Job {
                gpu: r,
                src: side,
                off: 0,
                dst: main_end,
                bytes: side.len(),
            });
        }
    }
    configs.push((format!("tp={n}"), jobs));
    let mut rows: Vec<MultiRow> = Vec::new();
    for (config, jobs) in &configs {
        let v: Result<Vec<f64>> = (0..reps).map(|_| timed(dev, jobs)).collect();
        let time_s = median(&mut v?);
        let bytes: u64 = jobs.iter().map(|j| j.bytes).sum();
        let gpus = jobs.iter().map(|j| j.gpu).max().unwrap_or(0) + 1;
        let max_gpu_bytes = (0..gpus)
            .map(|g| jobs.iter().filter(|j| j.gpu == g).map(|j| j.bytes).sum())
            .max()
            .unwrap_or(0);
        let limit_gb_s = if gpus == 1 { alone[0] } else { together };
        let one = rows.first().map_or(time_s, |r| r.time_s);
        rows.push(MultiRow {
            config: config.clone(),
            gpus,
            bytes,
            max_gpu_bytes,
            time_s,
            gb_s: bytes as f64 / time_s / 1e9,
            speedup: one / time_s,
            of_limit: bytes as f64 / (limit_gb_s * 1e9) / time_s,
        });
    }
    Ok(MultiResult {
        model: arch.to_string(),
        model_bytes: total,
        link_alone_gb_s: alone,
        links_together_gb_s: together,
        limit_copy_bytes: limit_bytes,
        rows,
    })
}

/// The results as CSV (one row per configuration).
pub fn to_csv(r: &MultiResult) -> String {
    let mut s = String::from(
        "model,config,gpus,bytes,max_gpu_bytes,time_s,gb_s,speedup_vs_one_gpu,of_limit,links_together_gb_s\n",
    );
    for row in &r.rows {
        s.push_str(&format!(
            "{},{},{},{},{},{:.6},{:.2},{:.3},{:.3},{:.2}\n",
            r.model,
            row.config,
            row.gpus,
            row.bytes,
            row.max_gpu_bytes,
            row.time_s,
            row.gb_s,
            row.speedup,
            row.of_limit,
            r.links_together_gb_s
        ));
    }
    s
}

/// The results as a markdown section.
pub fn to_markdown(r: &MultiResult, device: &str) -> String {
    let mut s = format!(
        "## Swap-in of {} ({:.2} GB) over several GPUs\n\ndevice: {device}\n\n\
         {:.0} MiB pinned copy, each link alone: {} GB/s; all {} links at once: {:.2} GB/s together.\n\n\
         | config | GPUs | GB copied | most on one GPU (GB) | time (ms) | GB/s | speed-up vs one GPU | of the links' limit |\n\
         |---|---|---|---|---|---|---|---|\n",
        r.model,
        r.model_bytes as f64 / 1e9,
        r.limit_copy_bytes as f64 / (1u64 << 20) as f64,
        r.link_alone_gb_s
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>()
            .join(" / "),
        r.link_alone_gb_s.len(),
        r.links_together_gb_s
    );
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2}x | {:.1}% |\n",
            row.config,
            row.gpus,
            row.bytes as f64 / 1e9,
            row.max_gpu_bytes as f64 / 1e9,
            row.time_s * 1e3,
            row.gb_s,
            row.speedup,
            row.of_limit * 100.0
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu::CpuDevice;

    #[test]
    fn cpu_multi_gpu_swap_in_moves_every_shard() {
        let mut dev = CpuDevice::new(2);
        let r = multi_gpu(&mut dev, "opt-125m", 2, 1, 8 << 20).unwrap();
        assert_eq!(r.rows.len(), 3);
        let total = r.model_bytes;
        assert_eq!(r.rows[0].bytes, total);
        assert_eq!(r.rows[0].gpus, 1);
        // pp: every layer once, plus the tied head's copy of the token embedding.
        assert!(r.rows[1].bytes > total && r.rows[1].gpus == 2);
        // tp: shards of ceil(bytes / 2) per layer plus replicated small tensors.
        assert!(r.rows[2].bytes >= total && r.rows[2].bytes < total + total / 50);
        assert!(r.rows[2].max_gpu_bytes < total * 51 / 100);
        assert!(to_csv(&r).lines().count() == 4);
        assert!(to_markdown(&r, "cpu").contains("tp=2"));
    }

    #[test]
    fn cpu_one_gpu_runs_every_configuration_whole() {
        let mut dev = CpuDevice::new(1);
        let r = multi_gpu(&mut dev, "opt-125m", 1, 1, 8 << 20).unwrap();
        assert_eq!(r.rows.len(), 3);
        for row in &r.rows {
            assert_eq!((row.gpus, row.bytes), (1, r.model_bytes), "{row:?}");
        }
    }
}
