//! `multipath-bench`: whole-model swap-in onto one GPU over its own link
//! (direct) and over its link plus helpers' links (multi-path loading),
//! beside the pinned limit of one link and of all links together, measured
//! in the same run. The copies are the scheduler's: a one-model workload
//! (`pipeswitch`, `loading: direct` or `multipath`) is fed one arrival and
//! the copy actions it returns are carried out by the executor, so the
//! bench times exactly what `replay` would do for a cold request.

use crate::device::{Device, StreamKind};
use crate::exec::{CopyOp, Executor};
use crate::host_store::WeightSource;
use crate::replay::build_executor;
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;
use switchyard_core::stats::median;
use switchyard_core::workload::LoadingSpec;
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::{Action, Event, Scheduler};

/// One model's row.
#[derive(Debug, Clone, Serialize)]
pub struct SwapRow {
    /// Model (the workload's `models` entry).
    pub model: String,
    /// Bytes the scheduler copies for a whole swap-in.
    pub bytes: u64,
    /// Pinned limit of one link (GPU 0): one copy of `bytes`, GB/s.
    pub one_link_gbps: f64,
    /// Pinned limit of all links at once (`bytes` split over them), GB/s.
    pub all_links_gbps: f64,
    /// Swap-in over GPU 0's own link, seconds (median).
    pub direct_s: f64,
    /// Swap-in with multi-path loading, seconds (median).
    pub multipath_s: f64,
    /// Copies the multi-path swap-in was cut into.
    pub multipath_copies: usize,
    /// Bytes that went through helpers.
    pub helper_bytes: u64,
}

impl SwapRow {
    /// Multi-path swap-in rate over one link's pinned limit.
    pub fn multipath_over_one_link(&self) -> f64 {
        self.bytes as f64 / self.multipath_s / 1e9 / self.one_link_gbps
    }
    /// Direct swap-in rate over one link's pinned limit.
    pub fn direct_over_one_link(&self) -> f64 {
        self.bytes as f64 / self.direct_s / 1e9 / self.one_link_gbps
    }
}

/// The bench's options.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// GPUs (the target is GPU 0; the others are helpers).
    pub gpus: u32,
    /// Hardware profile (its grouping cost model and usable memory).
    pub hardware: String,
    /// GPU memory per GPU, GiB (`None`: the profile's).
    pub gpu_memory_gib: Option<f64>,
    /// Staging per GPU, MiB.
    pub staging_mib: f64,
    /// Repetitions (median reported), after one untimed warm-up.
    pub reps: usize,
}

/// The workload YAML of one model (`spec`: a flow mapping's body, e.g.
/// `arch: opt-6.7b`) with multi-path loading over every other GPU.
pub fn workload_text(spec: &str, o: &BenchOptions) -> String {
    let mem = o
        .gpu_memory_gib
        .map(|g| format!(", gpu_memory_gib: {g}"))
        .unwrap_or_default();
    format!(
        "name: multipath-bench\nseed: 1\nduration_s: 1\n\
         cluster: {{ hardware: {}, gpus: {}{mem} }}\n\
         models:\n  - {{ {spec}, max_batch: 1 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\n\
         policy: {{ system: pipeswitch, loading: multipath, multipath_helpers: {}, multipath_staging_mib: {} }}\n",
        o.hardware,
        o.gpus,
        o.gpus.saturating_sub(1).max(1),
        o.staging_mib
    )
}

/// The copies the scheduler issues for a cold request of model 0 under
/// `loading`, as executor operations (keys from 1).
fn scheduler_copies(w: &Workload, loading: LoadingSpec) -> Result<Vec<CopyOp>> {
    let mut w = w.clone();
    w.loading = loading;
    let schedule = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0)]);
    let mut s = Scheduler::new(&w, &schedule)?;
    let mut actions = Vec::new();
    s.on_event(
        Event::Arrived {
            request: 0,
            model: 0,
        },
        &mut actions,
    );
    let mut ops = Vec::new();
    for a in &actions {
        if let Action::Copy(c) = a {
            ops.push(CopyOp::of_action(ops.len() as u64 + 1, c));
        }
    }
    if ops.is_empty() {
        return Err(anyhow!("the scheduler issued no copies for a cold request"));
    }
    Ok(ops)
}

/// Seconds to carry out `ops` (issue to the host seeing the last done),
/// keyed from `*key` on, with their regions forgotten after.
fn time_copies(ex: &mut Executor, ops: &[CopyOp], key: &mut u64) -> Result<f64> {
    let t0 = Instant::now();
    for op in ops {
        *key += 1;
        ex.copy(CopyOp {
            key: *key,
            ..op.clone()
        })?;
    }
    ex.drain()?;
    let t = t0.elapsed().as_secs_f64();
    for op in ops {
        ex.evict(op.gpu, op.model, 0, ex.pool.pool_bytes);
    }
    Ok(t)
}

/// Pinned host-to-device rate of `bytes` split evenly over GPUs `0..links`
/// at once (copy-stream events; host clock for the span), GB/s.
fn pinned_rate(dev: &mut dyn Device, bytes: u64, links: usize, reps: usize) -> Result<f64> {
    let per = (bytes / links as u64) / 256 * 256;
    let host = dev.alloc_host(per, true)?;
    let mut times = Vec::new();
    for r in 0..reps + 1 {
        let t0 = Instant::now();
        let mut ends = Vec::new();
        for g in 0..links {
            dev.copy_h2d(g, &host, 0, 0, per)?;
            ends.push(dev.record(g, StreamKind::Copy)?);
        }
        for e in ends {
            dev.synchronize(e)?;
            dev.release(e);
        }
        if r > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok((per * links as u64) as f64 / median(&mut times) / 1e9)
}

/// Measures one model (`spec`, see [`workload_text`]) on `dev`.
pub fn bench_model(dev: Box<dyn Device>, spec: &str, o: &BenchOptions) -> Result<SwapRow> {
    let text = workload_text(spec, o);
    let w = Workload::parse(Path::new("<multipath-bench>"), &text)?;
    let direct = scheduler_copies(&w, LoadingSpec::default())?;
    let multi = scheduler_copies(&w, w.loading)?;
    let mut ex = build_executor(dev, &w, &WeightSource::Random { seed: 1 })?;
    let bytes: u64 = direct.iter().map(|c| c.bytes).sum();
    let n = o.gpus as usize;
    // The links' limits, on the same bytes, in the same run.
    let one_link_gbps = pinned_rate(ex.dev.as_mut(), bytes, 1, o.reps)?;
    let all_links_gbps = pinned_rate(ex.dev.as_mut(), bytes, n, o.reps)?;
    let mut d = Vec::new();
    let mut m = Vec::new();
    let mut key = 0;
    for r in 0..o.reps + 1 {
        let td = time_copies(&mut ex, &direct, &mut key)?;
        let tm = time_copies(&mut ex, &multi, &mut key)?;
        if r > 0 {
            d.push(td);
            m.push(tm);
        }
    }
    Ok(SwapRow {
        model: w.models[0].name.clone(),
        bytes,
        one_link_gbps,
        all_links_gbps,
        direct_s: median(&mut d),
        multipath_s: median(&mut m),
        multipath_copies: multi.len(),
        helper_bytes: multi
            .iter()
            .filter(|c| c.via.is_some())
            .map(|c| c.bytes)
            .sum(),
    })
}

/// The rows as CSV.
pub fn to_csv(rows: &[SwapRow]) -> String {
    let mut s = String::from(
        "model,bytes,one_link_gbps,all_links_gbps,direct_s,multipath_s,direct_over_one_link,multipath_over_one_link,multipath_copies,helper_bytes\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{:.3},{:.3},{:.6},{:.6},{:.3},{:.3},{},{}",
            r.model,
            r.bytes,
            r.one_link_gbps,
            r.all_links_gbps,
            r.direct_s,
            r.multipath_s,
            r.direct_over_one_link(),
            r.multipath_over_one_link(),
            r.multipath_copies,
            r.helper_bytes
        );
    }
    s
}

/// The rows as a markdown table under a header naming the command and machine.
pub fn to_markdown(rows: &[SwapRow], command: &str, machine: &str) -> String {
    let mut s = format!(
        "# multipath-bench\n\ncommand: `{command}`\n\nmachine: {machine}\n\n\
         | model | GB | one link GB/s | all links GB/s | direct s | multipath s | direct / one link | multipath / one link | copies | via helpers GB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.1} | {:.1} | {:.4} | {:.4} | {:.2}x | {:.2}x | {} | {:.2} |",
            r.model,
            r.bytes as f64 / 1e9,
            r.one_link_gbps,
            r.all_links_gbps,
            r.direct_s,
            r.multipath_s,
            r.direct_over_one_link(),
            r.multipath_over_one_link(),
            r.multipath_copies,
            r.helper_bytes as f64 / 1e9
        );
    }
    s
}
