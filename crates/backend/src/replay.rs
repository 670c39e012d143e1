//! `replay`: serves a schedule in real time on a device, driven by the same
//! [`Scheduler`] as the simulator, and writes the same outputs as `sim`
//! (`requests.csv`, `summary.json`, `cdf.svg`/`cdf.png`).
//!
//! A dispatcher feeds each request to the scheduler at its scheduled arrival
//! (`t0 + arrival_s`, one start instant for the whole run). Between
//! arrivals the loop pumps the executor and polls CUDA events, feeding
//! `CopyDone` and `ComputeDone` (completions before arrivals). A request's
//! latency runs from its scheduled arrival to the host seeing the event
//! recorded after its batch's output was copied to host memory: the
//! `ComputeDone` of the batch's last stage, which the scheduler answers with
//! `Finish`. Its `start_s` is when the batch's first layer began on the GPU.
//! An arrival fed more than [`LATE_S`] after its time (the host fell behind)
//! is counted and reported, never hidden.
//!
//! Before `t0` every model runs once (weights copied to the pool, then the
//! region is given back) so that kernel and cuBLAS start-up costs stay out
//! of the measured run, and the resident system's preload copies finish.
//! Replay runs models with `tp = pp = 1` (on any number of GPUs).

use crate::device::Device;
use crate::exec::{Completion, ComputeOp, CopyOp, Executor};
use crate::host_store::{HostStore, WeightSource};
use crate::model::ModelLayout;
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use switchyard_core::records::{RecordWriter, RequestRecord};
use switchyard_core::stats::Summary;
use switchyard_core::workload::{Eviction, Grouping, System};
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::{Action, Event, Scheduler, Source, PRELOAD_COPY};

/// Arrivals fed more than this late count as late dispatches, seconds.
pub const LATE_S: f64 = 1e-3;

/// Latency summary and loads of one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    /// Model name.
    pub model: String,
    /// Its latency summary.
    #[serde(flatten)]
    pub summary: Summary,
    /// Stage loads.
    pub loads: u64,
    /// Bytes copied host-to-device.
    pub bytes_loaded: u64,
}

/// `summary.json` of a replay: `sim`'s fields plus what only a real run has.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayResult {
    /// Workload name.
    pub workload: String,
    /// Serving system.
    pub system: String,
    /// Eviction policy.
    pub eviction: String,
    /// Layer grouping.
    pub grouping: String,
    /// Latency summary over all requests.
    #[serde(flatten)]
    pub summary: Summary,
    /// Stage loads over all models.
    pub loads: u64,
    /// Bytes copied host-to-device.
    pub bytes_loaded: u64,
    /// Scheduler events processed.
    pub events: u64,
    /// Wall time from `t0` to the last finish, seconds.
    pub wall_s: f64,
    /// The device (`cuda`/`cpu`) and what it ran on.
    pub device: String,
    /// Measured GEMM rate used to size synthetic layers, TFLOP/s.
    pub gemm_tflops: f64,
    /// Arrivals fed more than `late_threshold_s` after their time.
    pub late_dispatches: u64,
    /// The threshold, seconds.
    pub late_threshold_s: f64,
    /// Largest dispatch delay, seconds.
    pub max_dispatch_delay_s: f64,
    /// Mean dispatch delay, seconds.
    pub mean_dispatch_delay_s: f64,
    /// Per model, in workload order.
    pub models: Vec<ModelResult>,
}

/// Name of an eviction policy as the workload file writes it.
pub fn eviction_name(e: Eviction) -> &'static str {
    match e {
        Eviction::Lru => "lru",
        Eviction::Lfu => "lfu",
        Eviction::Belady => "belady",
    }
}

/// Name of a grouping as the workload file writes it.
pub fn grouping_name(g: Grouping) -> &'static str {
    match g {
        Grouping::Optimal => "optimal",
        Grouping::PerLayer => "per_layer",
        Grouping::OneGroup => "one_group",
    }
}

/// Checks that `replay` can run the workload's models; the error names the model.
pub fn check_supported(w: &Workload) -> Result<(), switchyard_core::InputError> {
    for (i, m) in w.models.iter().enumerate() {
        if m.tp != 1 || m.pp != 1 {
            return Err(switchyard_core::InputError::new(
                &w.source,
                None,
                format!("models[{i}].parallel"),
                format!(
                    "replay runs models with tp = pp = 1; `{}` has tp = {}, pp = {}",
                    m.name, m.tp, m.pp
                ),
            ));
        }
        if m.max_batch as usize > crate::device::MAX_BATCH {
            return Err(switchyard_core::InputError::new(
                &w.source,
                None,
                format!("models[{i}].max_batch"),
                format!(
                    "replay batches at most {} requests",
                    crate::device::MAX_BATCH
                ),
            ));
        }
    }
    Ok(())
}

/// Builds the executor for a workload: layouts, host store and arenas.
pub fn build_executor(
    dev: Box<dyn Device>,
    w: &Workload,
    weights: &WeightSource,
) -> Result<Executor> {
    let mut dev = dev;
    if (w.cluster.gpus as usize) > dev.gpus() {
        bail!(
            "the workload asks for {} GPUs but the {} device has {}",
            w.cluster.gpus,
            dev.kind(),
            dev.gpus()
        );
    }
    let layouts: Vec<ModelLayout> = w
        .models
        .iter()
        .map(|m| ModelLayout::new(&m.shape))
        .collect::<Result<_>>()?;
    let pageable = w.policy.system == System::StopAndStart;
    let host = HostStore::build(
        dev.as_mut(),
        &layouts,
        &w.model_names(),
        !pageable,
        pageable,
        weights,
    )?;
    let max_batch: Vec<usize> = w.models.iter().map(|m| m.max_batch as usize).collect();
    let hw = &w.cluster.hardware;
    Executor::new(
        dev,
        host,
        layouts,
        &max_batch,
        hw.usable_bytes(),
        hw.compute.synthetic_batch_slope,
    )
}

/// Runs every model once at batch sizes 1 and `max_batch` (weights copied to
/// offset 0 of GPU `gpu`'s pool, region given back after).
pub fn warm_up(ex: &mut Executor, w: &Workload) -> Result<()> {
    let pinned = w.policy.system != System::StopAndStart;
    let mut key = u64::MAX / 2;
    for g in 0..w.cluster.gpus as usize {
        for (m, spec) in w.models.iter().enumerate() {
            let n = ex.layouts[m].layers();
            key += 1;
            ex.copy(CopyOp {
                key,
                gpu: g,
                model: m,
                layers: 0..n,
                pool_offset: 0,
                pinned,
            })?;
            let copy = key;
            for b in [1, spec.max_batch as usize] {
                key += 1;
                let requests: Vec<u64> = (0..b as u64).collect();
                ex.compute(ComputeOp {
                    key,
                    gpu: g,
                    model: m,
                    layers: 0..n,
                    requests,
                    waits: vec![(0..n, copy)],
                })?;
            }
            ex.drain()?;
            ex.evict(g, m, 0, ex.layouts[m].total_bytes());
        }
    }
    Ok(())
}

struct Run<'a> {
    w: &'a Workload,
    schedule: &'a Schedule,
    sched: Scheduler,
    ex: Executor,
    actions: Vec<Action>,
    next_key: u64,
    copy_key: HashMap<u32, u64>,
    copy_of_key: HashMap<u64, u32>,
    task_of_key: HashMap<u64, u32>,
    batch_start: HashMap<u32, Instant>,
    records: Vec<RequestRecord>,
    events: u64,
    t0: Instant,
}

impl Run<'_> {
    fn carry_out(&mut self, done_at: Instant) -> Result<()> {
        let actions = std::mem::take(&mut self.actions);
        for a in &actions {
            match a {
                Action::Copy(c) => {
                    self.next_key += 1;
                    let key = self.next_key;
                    if c.id != PRELOAD_COPY {
                        self.copy_key.insert(c.id, key);
                        self.copy_of_key.insert(key, c.id);
                    }
                    self.ex.copy(CopyOp {
                        key,
                        gpu: c.gpu as usize,
                        model: c.model as usize,
                        layers: c.layers.start as usize..c.layers.end as usize,
                        pool_offset: c.pool_offset,
                        pinned: c.source == Source::Pinned,
                    })?;
                }
                Action::Compute(t) => {
                    let task = self.sched.task(*t);
                    if task.gpus.len() != 1 || task.input_from.is_some() {
                        bail!("task {t} spans several GPUs; replay runs tp = pp = 1");
                    }
                    let mut waits = Vec::new();
                    for (r, c) in &task.waits {
                        if *c != PRELOAD_COPY {
                            let key = *self.copy_key.get(c).ok_or_else(|| {
                                anyhow::anyhow!("task {t} waits for unknown copy {c}")
                            })?;
                            waits.push((r.start as usize..r.end as usize, key));
                        }
                    }
                    let batch = self.sched.batch(task.batch);
                    let requests = batch
                        .requests
                        .iter()
                        .map(|&i| self.schedule.requests[i as usize].id)
                        .collect();
                    self.next_key += 1;
                    self.task_of_key.insert(self.next_key, *t);
                    self.ex.compute(ComputeOp {
                        key: self.next_key,
                        gpu: task.gpus[0] as usize,
                        model: task.model as usize,
                        layers: task.layers.start as usize..task.layers.end as usize,
                        requests,
                        waits,
                    })?;
                }
                Action::Evict(e) => {
                    self.ex
                        .evict(e.gpu as usize, e.model as usize, e.pool_offset, e.bytes)
                }
                Action::Finish(b) => {
                    let batch = self.sched.batch(*b);
                    let start = self.batch_start.remove(b).unwrap_or(done_at);
                    for &i in &batch.requests {
                        let r = &self.schedule.requests[i as usize];
                        let finish_s = (done_at - self.t0).as_secs_f64();
                        self.records.push(RequestRecord {
                            id: r.id,
                            model: self.w.models[r.model as usize].name.clone(),
                            arrival_s: r.arrival_s,
                            start_s: (start.max(self.t0) - self.t0).as_secs_f64(),
                            finish_s,
                            latency_s: finish_s - r.arrival_s,
                            batch_size: batch.requests.len() as u32,
                            cold: batch.cold,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn feed(&mut self, e: Event, at: Instant) -> Result<()> {
        self.events += 1;
        self.actions.clear();
        self.sched.on_event(e, &mut self.actions);
        self.carry_out(at)
    }

    fn complete(&mut self, c: Completion) -> Result<()> {
        match c {
            Completion::Copy { key, at } => {
                if let Some(id) = self.copy_of_key.remove(&key) {
                    self.copy_key.remove(&id);
                    self.feed(Event::CopyDone { copy: id }, at)?;
                }
            }
            Completion::Compute { key, start, at } => {
                if let Some(t) = self.task_of_key.remove(&key) {
                    let task = self.sched.task(t);
                    if task.stage == 0 {
                        self.batch_start.insert(task.batch, start);
                    }
                    self.feed(Event::ComputeDone { task: t }, at)?;
                }
            }
        }
        Ok(())
    }
}

/// Replays `schedule` on `ex` in real time; writes `requests.csv`,
/// `summary.json` and `cdf.svg`/`cdf.png` into `out`.
pub fn replay(
    mut ex: Executor,
    w: &Workload,
    schedule: &Schedule,
    out: &Path,
) -> Result<ReplayResult> {
    let mut sched = Scheduler::new(w, schedule)?;
    warm_up(&mut ex, w)?;
    let mut actions = Vec::new();
    sched.preload(&mut actions);
    let device = format!("{}: {}", ex.dev.kind(), ex.dev.describe());
    let gemm_tflops = ex.gemm_rate / 1e12;
    let mut run = Run {
        w,
        schedule,
        sched,
        ex,
        actions,
        next_key: 0,
        copy_key: HashMap::new(),
        copy_of_key: HashMap::new(),
        task_of_key: HashMap::new(),
        batch_start: HashMap::new(),
        records: Vec::new(),
        events: 0,
        t0: Instant::now(),
    };
    run.carry_out(Instant::now())?;
    run.ex.drain()?;
    run.ex.start_clock()?;
    let (mut late, mut max_delay, mut sum_delay) = (0u64, 0f64, 0f64);
    let n = schedule.requests.len();
    let mut next = 0;
    run.t0 = Instant::now();
    let t0 = run.t0;
    loop {
        run.ex.pump()?;
        let mut done = run.ex.poll()?;
        done.sort_by_key(|c| match c {
            Completion::Copy { at, .. } | Completion::Compute { at, .. } => *at,
        });
        for c in done {
            run.complete(c)?;
        }
        let now = Instant::now();
        while next < n && t0 + Duration::from_secs_f64(schedule.requests[next].arrival_s) <= now {
            let r = schedule.requests[next];
            let due = t0 + Duration::from_secs_f64(r.arrival_s);
            let delay = Instant::now().saturating_duration_since(due).as_secs_f64();
            late += (delay > LATE_S) as u64;
            max_delay = max_delay.max(delay);
            sum_delay += delay;
            run.feed(
                Event::Arrived {
                    request: next as u64,
                    model: r.model,
                },
                due,
            )?;
            next += 1;
            run.ex.pump()?;
        }
        if next == n && !run.sched.busy() && !run.ex.busy() {
            break;
        }
        if !run.ex.busy() && next < n {
            let due = t0 + Duration::from_secs_f64(schedule.requests[next].arrival_s);
            let wait = due.saturating_duration_since(Instant::now());
            if wait > Duration::from_micros(1500) {
                std::thread::sleep(wait - Duration::from_micros(1000));
            }
        } else if !run.ex.busy() && run.sched.busy() {
            bail!("the scheduler has work queued but issued nothing: replay cannot progress");
        }
        std::hint::spin_loop();
    }
    let wall_s = t0.elapsed().as_secs_f64();
    if run.records.len() != n {
        bail!("{} of {} requests finished", run.records.len(), n);
    }
    run.records.sort_by_key(|r| r.id);
    let mut writer = RecordWriter::create(&out.join("requests.csv"))?;
    for r in &run.records {
        writer.write(r)?;
    }
    writer.finish()?;
    let result = summarize(
        &run,
        w,
        device,
        gemm_tflops,
        wall_s,
        late,
        max_delay,
        if n > 0 { sum_delay / n as f64 } else { 0.0 },
    );
    let mut bytes = serde_json::to_vec_pretty(&result)?;
    bytes.push(b'\n');
    switchyard_core::output::write_atomic(&out.join("summary.json"), &bytes)?;
    let mut lines: Vec<(String, Vec<f64>)> = vec![(
        "all".into(),
        run.records.iter().map(|r| r.latency_s).collect(),
    )];
    if w.models.len() <= 8 {
        for m in &w.models {
            lines.push((
                m.name.clone(),
                run.records
                    .iter()
                    .filter(|r| r.model == m.name)
                    .map(|r| r.latency_s)
                    .collect(),
            ));
        }
    }
    switchyard_report::cdf_figure(
        &lines,
        &format!("replay: {} ({})", w.name, result.device),
        true,
        &out.join("cdf.svg"),
        &out.join("cdf.png"),
    )?;
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    run: &Run,
    w: &Workload,
    device: String,
    gemm_tflops: f64,
    wall_s: f64,
    late: u64,
    max_delay: f64,
    mean_delay: f64,
) -> ReplayResult {
    let stats = run.sched.load_stats();
    let mut models = Vec::new();
    let (mut all, mut within) = (Vec::new(), 0u64);
    for (i, m) in w.models.iter().enumerate() {
        let lat: Vec<f64> = run
            .records
            .iter()
            .filter(|r| r.model == m.name)
            .map(|r| r.latency_s)
            .collect();
        let ok = lat
            .iter()
            .filter(|l| m.slo_s.is_none_or(|s| **l <= s))
            .count() as u64;
        within += ok;
        all.extend_from_slice(&lat);
        models.push(ModelResult {
            model: m.name.clone(),
            summary: Summary::of(&lat, ok),
            loads: stats[i].loads,
            bytes_loaded: stats[i].bytes,
        });
    }
    ReplayResult {
        workload: w.name.clone(),
        system: w.policy.system.name().to_string(),
        eviction: eviction_name(w.policy.eviction).to_string(),
        grouping: grouping_name(w.policy.grouping).to_string(),
        summary: Summary::of(&all, within),
        loads: stats.iter().map(|s| s.loads).sum(),
        bytes_loaded: stats.iter().map(|s| s.bytes).sum(),
        events: run.events,
        wall_s,
        device,
        gemm_tflops,
        late_dispatches: late,
        late_threshold_s: LATE_S,
        max_dispatch_delay_s: max_delay,
        mean_dispatch_delay_s: mean_delay,
        models,
    }
}
