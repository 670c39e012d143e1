//! `replay`: serves a schedule in real time on a device, driven by the same
//! [`Scheduler`] as the simulator, and writes the same outputs as `sim`
//! (`requests.csv`, `summary.json`, `timeline.json`, `latency_cdf.svg`/`.png`).
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
//!
//! Model parallelism (`parallel: {tp, pp}` of a model, used by `computron`
//! and `resident`): the scheduler's placement puts each stage's `tp` shards
//! on distinct GPUs; each shard is held pinned per rank and loaded over its
//! own GPU's link; a stage's compute runs on its tensor-parallel group
//! (NCCL all-reduces on CUDA); whole batches pass stage to stage (peer
//! copies, or through pinned host memory where GPUs lack peer access: the
//! counts are in `summary.json` under `handoffs`).

use crate::exec::{Completion, ComputeOp, CopyOp, Executor, OffloadOp};
use crate::model::ModelLayout;
use crate::span_log::SpanLog;
use anyhow::{bail, Result};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use switchyard_core::closed_loop::ClosedLoop;
use switchyard_core::records::RequestRecord;
use switchyard_core::summary::Offloads;
use switchyard_core::workload::Process;
use switchyard_core::{Request, Schedule, Workload};
use switchyard_scheduler::placement::Placement;
use switchyard_scheduler::{copy_source, Action, Event, Scheduler, Source, PRELOAD_COPY};

/// Arrivals fed more than this late count as late dispatches, seconds.
pub const LATE_S: f64 = 1e-3;

mod outputs;
pub use crate::exec::workload::{build_executor, placements, shard_layout};
use outputs::{summarize, write_outputs, Dispatch};
pub use outputs::{ModelResult, ReplayResult, ReplayRun};

/// Checks that `replay` can run the workload's models (batch size, and a
/// tensor-parallel split their dimensions allow; weights of every
/// [`switchyard_core::model::Dtype`] run, in that type); the error names
/// the model.
pub fn check_supported(w: &Workload) -> Result<(), switchyard_core::InputError> {
    let placed = placements(w);
    for (i, m) in w.models.iter().enumerate() {
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
        let p = &placed[i];
        let split = ModelLayout::typed(&m.shape, w.dtype(i)).and_then(|l| shard_layout(&l, p));
        if let Err(e) = split {
            return Err(switchyard_core::InputError::new(
                &w.source,
                None,
                format!("models[{i}].parallel"),
                format!(
                    "`{}` cannot run with tp = {}, pp = {}: {e:#}",
                    m.name, p.tp, p.pp
                ),
            ));
        }
    }
    Ok(())
}

/// Runs every model once at every batch size up to `max_batch`: a whole model
/// (`tp = pp = 1`) on every GPU, a split model on its placed GPUs (`placed`,
/// the scheduler's placements) through all its stages; weights copied from
/// the system's host memory to offset 0 of each pool (all but the layers
/// left in host memory), given back after.
pub fn warm_up(ex: &mut Executor, w: &Workload, placed: &[Placement]) -> Result<()> {
    let pinned = copy_source(w.policy.system) == Source::Pinned;
    let mut key = u64::MAX / 2;
    for (m, spec) in w.models.iter().enumerate() {
        let p = &placed[m];
        let (tp, pp) = (p.tp as usize, p.pp as usize);
        let homes: Vec<Vec<usize>> = if tp * pp == 1 {
            (0..w.cluster.gpus as usize).map(|g| vec![g]).collect()
        } else {
            vec![p.gpus.iter().map(|&g| g as usize).collect()]
        };
        for home in homes {
            let stage_gpus = |s: usize| home[s * tp..(s + 1) * tp].to_vec();
            let mut copies = vec![Vec::new(); pp];
            // Layers left in host memory (`policy.direct_host`) are read
            // where they are mapped, never copied.
            let copied = |ex: &Executor, s: usize| {
                let stage = ex.shards[m].stages[s].clone();
                (p.direct[s].end as usize).max(stage.start)..stage.end
            };
            for s in 0..pp {
                let layers = copied(ex, s);
                for r in 0..tp {
                    key += 1;
                    ex.copy(CopyOp {
                        key,
                        gpu: home[s * tp + r],
                        model: m,
                        stage: s,
                        shard: r,
                        layers: layers.clone(),
                        pool_offset: 0,
                        pinned,
                        ..CopyOp::default()
                    })?;
                    copies[s].push((layers.clone(), key));
                }
            }
            // Every batch size the run can form: with only 1 and
            // `max_batch` warmed, a layer's launches blocked the host for up
            // to 62 ms mid-run on an H100 (4.4 ms with all warmed); lazy
            // kernel loading on a new shape is the likely mechanism.
            for b in 1..=spec.max_batch as usize {
                let requests: Vec<u64> = (0..b as u64).collect();
                let mut input = None;
                for (s, stage_copies) in copies.iter().enumerate() {
                    key += 1;
                    ex.compute(ComputeOp {
                        key,
                        gpus: stage_gpus(s),
                        model: m,
                        stage: s,
                        layers: ex.shards[m].stages[s].clone(),
                        requests: requests.clone(),
                        waits: stage_copies.clone(),
                        input,
                        handoff_to: if s + 1 < pp {
                            stage_gpus(s + 1)
                        } else {
                            vec![]
                        },
                    })?;
                    input = Some(key);
                }
            }
            ex.drain()?;
            for s in 0..pp {
                let bytes = ex.shards[m].main_range(copied(ex, s)).1;
                for r in 0..tp {
                    ex.evict(home[s * tp + r], m, 0, bytes);
                }
            }
        }
    }
    Ok(())
}

struct Run<'a> {
    w: &'a Workload,
    /// The requests fed so far and to come (a closed loop's grow as its
    /// arrivals are taken).
    schedule: Cow<'a, Schedule>,
    /// Closed-loop arrivals, drawn from this run's completions.
    closed: Option<ClosedLoop>,
    sched: Scheduler,
    ex: Executor,
    actions: Vec<Action>,
    next_key: u64,
    copy_key: HashMap<u32, u64>,
    copy_of_key: HashMap<u64, u32>,
    task_of_key: HashMap<u64, u32>,
    stage_key: HashMap<(u32, u32), u64>,
    batch_start: HashMap<u32, Instant>,
    records: Vec<RequestRecord>,
    spans: SpanLog,
    events: u64,
    t0: Instant,
    /// The background jobs' results, once the run is over.
    background: Vec<crate::exec::background::BackgroundResult>,
    /// Offloads in flight (by the executor's key): the scheduler's bytes.
    offload_bytes: HashMap<u64, u64>,
    /// Offloads done (`policy.offload`).
    offloads: Offloads,
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
                        self.spans.copy_issued(key, c);
                    }
                    self.ex.copy(CopyOp::of_action(key, c))?;
                }
                Action::Compute(t) => {
                    let task = self.sched.task(*t);
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
                    let key = self.next_key;
                    self.task_of_key.insert(key, *t);
                    let p = self.sched.placement(task.model);
                    let input = match task.input_from {
                        Some(_) => Some(
                            self.stage_key
                                .remove(&(task.batch, task.stage - 1))
                                .ok_or_else(|| {
                                    anyhow::anyhow!(
                                        "task {t}: stage {} of batch {} was never run",
                                        task.stage - 1,
                                        task.batch
                                    )
                                })?,
                        ),
                        None => None,
                    };
                    let handoff_to: Vec<usize> = if task.stage + 1 < p.pp {
                        self.stage_key.insert((task.batch, task.stage), key);
                        p.stage_gpus(task.stage + 1)
                            .iter()
                            .map(|&g| g as usize)
                            .collect()
                    } else {
                        Vec::new()
                    };
                    self.ex.compute(ComputeOp {
                        key,
                        gpus: task.gpus.iter().map(|&g| g as usize).collect(),
                        model: task.model as usize,
                        stage: task.stage as usize,
                        layers: task.layers.start as usize..task.layers.end as usize,
                        requests,
                        waits,
                        input,
                        handoff_to,
                    })?;
                }
                Action::Preempt(g) => self.ex.preempt_background(*g as usize)?,
                Action::Resume(g) => self.ex.resume_background(*g as usize)?,
                Action::Offload(o) => {
                    self.next_key += 1;
                    let key = self.next_key;
                    self.copy_key.insert(o.id, key);
                    self.copy_of_key.insert(key, o.id);
                    self.offload_bytes.insert(key, o.bytes);
                    self.spans.offload_issued(key, o);
                    self.ex.offload(OffloadOp::of_action(key, o))?;
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
                        if let Some(c) = &mut self.closed {
                            c.finished(r.id, finish_s);
                        }
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

    /// When the next arrival is due (seconds from `t0`): the closed
    /// loop's, or the schedule's `next`.
    fn next_due_s(&self, next: usize) -> Option<f64> {
        match &self.closed {
            Some(c) => c.peek(),
            None => self.schedule.requests.get(next).map(|r| r.arrival_s),
        }
    }

    /// Takes arrival number `next` (a closed loop's joins the schedule).
    fn take_arrival(&mut self, next: usize) -> Request {
        match &mut self.closed {
            Some(c) => {
                let r = c.pop().expect("due");
                self.schedule.to_mut().requests.push(r);
                r
            }
            None => self.schedule.requests[next],
        }
    }

    fn feed(&mut self, e: Event, at: Instant) -> Result<()> {
        self.events += 1;
        self.actions.clear();
        self.sched.on_event(e, &mut self.actions);
        self.carry_out(at)
    }

    fn complete(&mut self, c: Completion) -> Result<()> {
        match c {
            Completion::Copy {
                key,
                start,
                at,
                staged_s,
            } => {
                self.spans.copy_done(key, start, at, staged_s);
                if let Some(bytes) = self.offload_bytes.remove(&key) {
                    let secs = at.saturating_duration_since(start).as_secs_f64();
                    self.offloads.add(bytes, secs);
                }
                if let Some(id) = self.copy_of_key.remove(&key) {
                    self.copy_key.remove(&id);
                    self.feed(Event::CopyDone { copy: id }, at)?;
                }
            }
            Completion::Compute {
                key,
                start,
                at,
                host_s,
            } => {
                if let Some(t) = self.task_of_key.remove(&key) {
                    let task = self.sched.task(t);
                    self.spans.compute_done(task, start, at, host_s);
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
/// `summary.json`, `timeline.json` and `latency_cdf.svg`/`.png` into `out`.
pub fn replay(ex: Executor, w: &Workload, schedule: &Schedule, out: &Path) -> Result<ReplayResult> {
    replay_until(ex, w, schedule, out, &AtomicBool::new(false))
}

/// Runs `w`'s closed loop (`arrivals: { process: closed_loop }`) on `ex`
/// in real time: each client's next request is due when this run sees its
/// previous one finished (plus the think time), by the rule `sim` follows
/// ([`ClosedLoop`]). Writes what [`replay`] writes and `schedule.csv`, the
/// arrivals as they were produced; ends early once `stop` is set.
pub fn replay_closed_until(
    ex: Executor,
    w: &Workload,
    out: &Path,
    stop: &AtomicBool,
) -> Result<ReplayResult> {
    let Process::ClosedLoop(spec) = &w.arrivals.process else {
        bail!("the workload's arrivals are not a closed loop");
    };
    let driver = ClosedLoop::new(spec, w.models.len() as u32, w.duration_s);
    let none = Schedule {
        models: w.model_names(),
        requests: Vec::new(),
    };
    let (result, served) = run_arrivals(ex, w, Cow::Owned(none), Some(driver), out, stop)?;
    switchyard_core::schedule::write_requests_csv(
        &out.join("schedule.csv"),
        &served.models,
        served.requests.iter().copied(),
    )?;
    Ok(result)
}

/// [`replay`], ending early once `stop` is set (Ctrl-C): no arrival is fed
/// after it, and the outputs hold the requests finished by then, the
/// summary marked `partial`.
pub fn replay_until(
    ex: Executor,
    w: &Workload,
    schedule: &Schedule,
    out: &Path,
    stop: &AtomicBool,
) -> Result<ReplayResult> {
    run_arrivals(ex, w, Cow::Borrowed(schedule), None, out, stop).map(|(r, _)| r)
}

/// The run of [`replay_until`] and [`replay_closed_until`]: arrivals from
/// `schedule`, or from `closed` (appended to `schedule` as they are
/// taken); returns the requests served too.
fn run_arrivals<'a>(
    mut ex: Executor,
    w: &'a Workload,
    schedule: Cow<'a, Schedule>,
    closed: Option<ClosedLoop>,
    out: &Path,
    stop: &AtomicBool,
) -> Result<(ReplayResult, Cow<'a, Schedule>)> {
    let mut sched = Scheduler::new(w, &schedule)?;
    warm_up(&mut ex, w, sched.placements())?;
    let mut actions = Vec::new();
    sched.preload(&mut actions);
    let device = format!("{}: {}", ex.dev.kind(), ex.dev.describe());
    let gemm_tflops = ex.gemm_rate / 1e12;
    let mut run = Run {
        w,
        schedule,
        closed,
        sched,
        ex,
        actions,
        next_key: 0,
        copy_key: HashMap::new(),
        copy_of_key: HashMap::new(),
        task_of_key: HashMap::new(),
        stage_key: HashMap::new(),
        batch_start: HashMap::new(),
        records: Vec::new(),
        spans: SpanLog::new(w.cluster.gpus, w.model_names()),
        events: 0,
        t0: Instant::now(),
        background: Vec::new(),
        offload_bytes: HashMap::new(),
        offloads: Offloads::default(),
    };
    run.carry_out(Instant::now())?;
    run.ex.drain()?;
    run.ex.prepare_background(w)?;
    let (mut late, mut max_delay, mut sum_delay) = (0u64, 0f64, 0f64);
    let mut next = 0;
    run.t0 = Instant::now();
    run.spans.start(run.t0);
    run.ex.issue = Default::default();
    run.ex.start_background();
    let t0 = run.t0;
    // Background jobs run (and are counted) to `duration_s` at least.
    let jobs_until = (!w.background.is_empty()).then(|| t0 + Duration::from_secs_f64(w.duration_s));
    let mut partial = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            partial = true;
            break;
        }
        run.ex.pump()?;
        let mut done = run.ex.poll()?;
        done.sort_by_key(|c| match c {
            Completion::Copy { at, .. } | Completion::Compute { at, .. } => *at,
        });
        for c in done {
            run.complete(c)?;
        }
        let now = Instant::now();
        while run
            .next_due_s(next)
            .is_some_and(|t| t0 + Duration::from_secs_f64(t) <= now)
        {
            let r = run.take_arrival(next);
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
        }
        let due_s = run.next_due_s(next);
        let open = run.closed.as_ref().is_some_and(|c| c.outstanding() > 0);
        if due_s.is_none()
            && !open
            && !run.sched.busy()
            && !run.ex.busy()
            && jobs_until.is_none_or(|u| now >= u)
        {
            break;
        }
        // With background jobs the loop keeps issuing their iterations.
        if let Some(due_s) = due_s.filter(|_| !run.ex.busy() && jobs_until.is_none()) {
            run.ex.idle.doze_until(t0 + Duration::from_secs_f64(due_s));
        } else if !run.ex.busy() && run.sched.busy() {
            bail!("the scheduler has work queued but issued nothing: replay cannot progress");
        }
        std::hint::spin_loop();
    }
    let wall_s = t0.elapsed().as_secs_f64();
    run.background = run.ex.finish_background(wall_s)?;
    if partial {
        // Let what is in flight finish on the device; nothing more is fed.
        run.ex.drain()?;
    } else if run.records.len() != run.schedule.requests.len() {
        bail!(
            "{} of {} requests finished",
            run.records.len(),
            run.schedule.requests.len()
        );
    }
    run.records.sort_by_key(|r| r.id);
    let result = summarize(
        &run,
        w,
        device,
        gemm_tflops,
        wall_s,
        Dispatch {
            late,
            max_delay_s: max_delay,
            mean_delay_s: if next > 0 {
                sum_delay / next as f64
            } else {
                0.0
            },
        },
        partial,
    );
    write_outputs(&run, w, &result, out)?;
    Ok((result, run.schedule))
}
