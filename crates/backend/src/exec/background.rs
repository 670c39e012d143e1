//! The workload's background jobs on the device: per GPU, a best-effort
//! training loop of real GPU work (square fp16 GEMMs, as many per iteration
//! as take the job's `iteration_ms` on the device, counted at start) in the
//! memory the scheduler's pool leaves it (the top `memory_gib` of the
//! pool). Iterations go on the GPU's compute stream one at a time while the
//! job runs; the scheduler's [`Action::Preempt`] stops issuing them, so the
//! request work issued next waits (stream order) for the iteration in
//! progress, and [`Action::Resume`] issues them again. The executor decides
//! nothing: it starts, stops and counts.
//!
//! [`Action::Preempt`]: switchyard_scheduler::Action::Preempt
//! [`Action::Resume`]: switchyard_scheduler::Action::Resume

use super::Executor;
use crate::device::{Device, Dtype, Event, Gemm, Mat, StreamKind};
use anyhow::{bail, Result};
use serde::Serialize;
use switchyard_core::Workload;

/// Side of the square GEMMs of an iteration on CUDA (the CPU device uses
/// [`CPU_SIDE`]), shrunk to fit the job's memory.
pub const CUDA_SIDE: usize = 8192;
/// Side of the square GEMMs of an iteration on the CPU device.
pub const CPU_SIDE: usize = 128;
/// GEMMs timed to count how many make an iteration.
const PROBE_GEMMS: usize = 4;
/// Timings of the probe and of the iteration (the fastest counts: the
/// device alone).
const PROBE_RUNS: usize = 3;

/// What a background job got done in a replay (`summary.json`, the fields
/// of `sim`'s, plus the iteration time measured at start).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackgroundResult {
    /// The job's name.
    pub name: String,
    /// Its GPU.
    pub gpu: u32,
    /// Iterations completed by the end of the run.
    pub iterations: u64,
    /// Iterations per second over the run.
    pub iterations_per_s: f64,
    /// The GPU time its iterations ran over the run's span (`busy_s /
    /// span`): the share of the GPU the job kept, as `sim`'s (iterations
    /// times their time over the span) with each iteration's time measured.
    pub share: f64,
    /// One iteration alone on the GPU, measured at start, ms (the workload
    /// asks for `iteration_ms`).
    pub iteration_ms: f64,
    /// Time the iterations counted ran on the GPU (events around each),
    /// seconds.
    pub busy_s: f64,
    /// Square GEMMs per iteration.
    pub gemms: usize,
    /// The GEMMs' side.
    pub side: usize,
}

/// One GPU's job.
struct Job {
    name: String,
    gpu: usize,
    gemm: Gemm,
    gemms: usize,
    side: usize,
    iteration_s: f64,
    preempted: bool,
    /// The iteration on the stream now: its start and done events.
    issued: Option<(Event, Event)>,
    iterations: u64,
    busy_s: f64,
}

/// The workload's background jobs, per GPU (none until started).
#[derive(Default)]
pub struct Jobs {
    jobs: Vec<Job>,
    started: bool,
}

impl Jobs {
    fn on(&mut self, gpu: usize) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.gpu == gpu)
    }
}

/// Issues one iteration of `job` on its compute stream.
fn issue(dev: &mut dyn Device, job: &mut Job) -> Result<()> {
    let start = dev.record(job.gpu, StreamKind::Compute)?;
    for _ in 0..job.gemms {
        dev.gemm(job.gpu, &job.gemm)?;
    }
    let done = dev.record(job.gpu, StreamKind::Compute)?;
    job.issued = Some((start, done));
    Ok(())
}

impl Executor {
    /// Sets up the workload's background jobs (not yet running): each
    /// job's GEMM operands at the top of its GPU's pool, inside the memory
    /// the scheduler keeps out of it, and the GEMMs per iteration counted
    /// on the device. Fails when a job's memory cannot hold its operands.
    pub fn prepare_background(&mut self, w: &Workload) -> Result<()> {
        let pool_bytes = w.cluster.hardware.usable_bytes();
        let cuda = self.dev.kind() == "cuda";
        for b in &w.background {
            let g = b.gpu as usize;
            if g >= self.dev.gpus() {
                bail!(
                    "background job `{}` is on GPU {g}, but the device has {}",
                    b.name,
                    self.dev.gpus()
                );
            }
            let mut side = if cuda { CUDA_SIDE } else { CPU_SIDE };
            while side > 64 && 3 * side * side * 2 > b.memory_bytes as usize {
                side /= 2;
            }
            let operands = (3 * side * side * 2) as u64;
            if operands > b.memory_bytes || b.memory_bytes > pool_bytes {
                bail!(
                    "background job `{}`: {} bytes of memory cannot hold its GEMM operands ({operands} bytes) inside the pool",
                    b.name,
                    b.memory_bytes
                );
            }
            let base = pool_bytes - b.memory_bytes;
            let el = (side * side * 2) as u64;
            let (a, bm, c) = (base, base + el, base + 2 * el);
            self.dev
                .fill_random(g, a, side * side, 0xB6 + g as u64, 0.03, Dtype::Fp16)?;
            self.dev
                .fill_random(g, bm, side * side, 0xB7 + g as u64, 0.03, Dtype::Fp16)?;
            let gemm = Gemm::plain(
                side,
                side,
                side,
                Mat::n(a, side),
                Mat::n(bm, side),
                Mat::n(c, side),
            );
            // Untimed first run (start-up costs), then the probe.
            self.dev.gemm(g, &gemm)?;
            let per_gemm = fastest(self.dev.as_mut(), g, &gemm, PROBE_GEMMS)? / PROBE_GEMMS as f64;
            let count = |per: f64| ((b.iteration_s / per.max(1e-9)).round() as usize).max(1);
            let mut gemms = count(per_gemm);
            let mut iteration_s = fastest(self.dev.as_mut(), g, &gemm, gemms)?;
            // Once more, from the whole iteration's time (a short probe
            // can be off where launches or caches weigh).
            let again = count(iteration_s / gemms as f64);
            if again != gemms {
                gemms = again;
                iteration_s = fastest(self.dev.as_mut(), g, &gemm, gemms)?;
            }
            self.background.jobs.push(Job {
                name: b.name.clone(),
                gpu: g,
                gemm,
                gemms,
                side,
                iteration_s,
                preempted: false,
                issued: None,
                iterations: 0,
                busy_s: 0.0,
            });
        }
        Ok(())
    }

    /// Starts every prepared job (replay's `t0`): iterations from now on.
    pub fn start_background(&mut self) {
        self.background.started = true;
    }

    /// The scheduler's [`switchyard_scheduler::Action::Preempt`]: stops
    /// issuing `gpu`'s iterations (the one in progress runs to its end).
    pub fn preempt_background(&mut self, gpu: usize) -> Result<()> {
        match self.background.on(gpu) {
            Some(j) => j.preempted = true,
            None => bail!("preempt: GPU {gpu} has no background job"),
        }
        Ok(())
    }

    /// The scheduler's [`switchyard_scheduler::Action::Resume`]: issues
    /// `gpu`'s iterations again.
    pub fn resume_background(&mut self, gpu: usize) -> Result<()> {
        match self.background.on(gpu) {
            Some(j) => j.preempted = false,
            None => bail!("resume: GPU {gpu} has no background job"),
        }
        Ok(())
    }

    /// Counts the iterations seen done and issues the next one of every
    /// running job with none on its stream (called by [`Executor::pump`]).
    pub(super) fn pump_background(&mut self) -> Result<()> {
        if !self.background.started {
            return Ok(());
        }
        for j in &mut self.background.jobs {
            if let Some((start, done)) = j.issued {
                if !self.dev.query(done)? {
                    continue;
                }
                j.iterations += 1;
                j.busy_s += self.dev.elapsed_s(start, done)?;
                self.dev.release(start);
                self.dev.release(done);
                j.issued = None;
            }
            if !j.preempted {
                issue(self.dev.as_mut(), j)?;
            }
        }
        Ok(())
    }

    /// Stops the jobs at the end of a run of `span_s` seconds: the
    /// iteration in progress is not counted (as `sim` counts whole ones).
    pub fn finish_background(&mut self, span_s: f64) -> Result<Vec<BackgroundResult>> {
        self.background.started = false;
        let mut out = Vec::new();
        for j in &mut self.background.jobs {
            if let Some((start, done)) = j.issued.take() {
                self.dev.synchronize(done)?;
                self.dev.release(start);
                self.dev.release(done);
            }
            let per_s = if span_s > 0.0 {
                j.iterations as f64 / span_s
            } else {
                0.0
            };
            out.push(BackgroundResult {
                name: j.name.clone(),
                gpu: j.gpu as u32,
                iterations: j.iterations,
                iterations_per_s: per_s,
                share: if span_s > 0.0 { j.busy_s / span_s } else { 0.0 },
                iteration_ms: j.iteration_s * 1e3,
                busy_s: j.busy_s,
                gemms: j.gemms,
                side: j.side,
            });
        }
        Ok(out)
    }
}

/// The fastest of [`PROBE_RUNS`] timings of [`time_gemms`].
fn fastest(dev: &mut dyn Device, gpu: usize, gemm: &Gemm, n: usize) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..PROBE_RUNS {
        best = best.min(time_gemms(dev, gpu, gemm, n)?);
    }
    Ok(best)
}

/// Seconds `n` back-to-back runs of `gemm` take on `gpu`'s compute stream.
fn time_gemms(dev: &mut dyn Device, gpu: usize, gemm: &Gemm, n: usize) -> Result<f64> {
    let a = dev.record(gpu, StreamKind::Compute)?;
    for _ in 0..n {
        dev.gemm(gpu, gemm)?;
    }
    let b = dev.record(gpu, StreamKind::Compute)?;
    dev.synchronize(b)?;
    let s = dev.elapsed_s(a, b)?;
    dev.release(a);
    dev.release(b);
    Ok(s)
}
