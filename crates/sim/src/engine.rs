//! The event loop: a virtual clock, a binary heap of completions, and the
//! schedule's arrivals merged in.

use crate::jitter::Noise;
use crate::sink::RecordSink;
use crate::summary::{Latencies, ModelResult, SimResult, SimRun};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use switchyard_core::cost::{activation_bytes, ComputeTable};
use switchyard_core::records::RequestRecord;
use switchyard_core::timeline::{Span, Timeline, Track};
use switchyard_core::workload::{PolicyName, PolicySpec};
use switchyard_core::{Error, Schedule, Workload};
use switchyard_scheduler::{Action, Event, Scheduler, Source};

/// How to run a simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Record spans for `timeline.json`.
    pub timeline: bool,
    /// At most this many spans are kept (the rest are counted as dropped).
    pub timeline_max_events: usize,
    /// Show a progress bar on stderr (drawn only when stderr is a terminal).
    pub progress: bool,
    /// Check the scheduler's memory invariants after every event (slow; tests).
    pub check_invariants: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            timeline: true,
            timeline_max_events: 200_000,
            progress: true,
            check_invariants: false,
        }
    }
}

/// A completion in the heap, ordered by (time, issue sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    /// `f64::to_bits` of a non-negative time: ordered like the time.
    t: u64,
    seq: u64,
    compute: bool,
    id: u32,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap, we want the earliest first.
        other.t.cmp(&self.t).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Simulates `workload` (with its own policy) serving `schedule`.
pub fn simulate(
    workload: &Workload,
    schedule: &Schedule,
    opts: &SimOptions,
    out: &mut dyn RecordSink,
) -> Result<SimResult, Error> {
    simulate_policy(workload, schedule, workload.policy, opts, out)
}

/// Simulates `workload` served by `policy` (any system, eviction, grouping)
/// on `schedule`; one record per request goes to `out` as it finishes.
///
/// Fails with an input error when the policy cannot serve the workload
/// (e.g. `resident` with models that do not fit), or when `out` fails.
pub fn simulate_policy(
    workload: &Workload,
    schedule: &Schedule,
    policy: PolicySpec,
    opts: &SimOptions,
    out: &mut dyn RecordSink,
) -> Result<SimResult, Error> {
    let mut sched = Scheduler::with_policy(workload, schedule, policy)?;
    let hw = &workload.cluster.hardware;
    let n_gpus = sched.gpus() as usize;
    let tables: Vec<ComputeTable> = workload
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| ComputeTable::new(hw, &m.shape, sched.placement(i as u32).tp, m.max_batch))
        .collect();
    let mut timeline = Timeline {
        gpus: n_gpus as u32,
        models: workload.model_names(),
        ..Timeline::default()
    };
    let mut actions = Vec::with_capacity(64);
    // Resident weights are in place before the clock starts.
    sched.preload(&mut actions);
    actions.clear();

    let progress = progress_bar(opts.progress, schedule.requests.len() as u64);
    let mut heap: BinaryHeap<Pending> = BinaryHeap::with_capacity(1024);
    let mut seq = 0u64;
    // One lane per GPU link, and one more: the host path that pageable
    // copies share when the profile says so.
    let mut link_free = vec![0.0f64; n_gpus + 1];
    // When each GPU's compute stream frees up; never used yet: idle since
    // long before the start (replay's warm-up ends before its clock starts).
    let mut stream_free = vec![f64::NEG_INFINITY; n_gpus];
    let mut copy_done: Vec<f64> = Vec::new();
    let mut batch_start: Vec<f64> = Vec::new();
    let mut lat = Latencies::new(workload.models.len());
    let mut record = RequestRecord {
        id: 0,
        model: String::new(),
        arrival_s: 0.0,
        start_s: 0.0,
        finish_s: 0.0,
        latency_s: 0.0,
        batch_size: 0,
        cold: false,
    };
    let mut noise = Noise::new(hw.jitter, workload.seed);
    let overhead_s = hw.compute.request_overhead_s;
    let mut next = 0usize;
    let mut events = 0u64;
    let mut now = 0.0f64;
    let mut finished = 0u64;
    loop {
        let from_heap = match (heap.peek(), schedule.requests.get(next)) {
            (Some(p), Some(r)) => f64::from_bits(p.t) <= r.arrival_s,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let event = if from_heap {
            let p = heap.pop().expect("peeked");
            now = f64::from_bits(p.t);
            if p.compute {
                Event::ComputeDone { task: p.id }
            } else {
                Event::CopyDone { copy: p.id }
            }
        } else {
            let r = &schedule.requests[next];
            now = now.max(r.arrival_s);
            next += 1;
            Event::Arrived {
                request: (next - 1) as u64,
                model: r.model,
            }
        };
        events += 1;
        actions.clear();
        sched.on_event(event, &mut actions);
        for a in &actions {
            match a {
                Action::Copy(c) => {
                    let g = c.gpu as usize;
                    let (link, lane) = match c.source {
                        Source::Pinned => (&hw.pinned, g),
                        Source::Pageable if hw.pageable_shared => (&hw.pageable, n_gpus),
                        Source::Pageable => (&hw.pageable, g),
                    };
                    let start = link_free[lane].max(now);
                    let end = start + link.time(c.bytes) * noise.copy();
                    link_free[lane] = end;
                    let id = c.id as usize;
                    if copy_done.len() <= id {
                        copy_done.resize(id + 1, 0.0);
                    }
                    copy_done[id] = end;
                    seq += 1;
                    heap.push(Pending {
                        t: end.to_bits(),
                        seq,
                        compute: false,
                        id: c.id,
                    });
                    if opts.timeline {
                        timeline.push(
                            opts.timeline_max_events,
                            Span {
                                gpu: c.gpu,
                                track: Track::Copy,
                                model: c.model,
                                stage: c.stage,
                                layers: (c.layers.start, c.layers.end),
                                start_s: start,
                                end_s: end,
                                batch_size: 0,
                                bytes: c.bytes,
                                streamed: c.streamed,
                            },
                        );
                    }
                }
                Action::Compute(id) => {
                    let task = sched.task(*id);
                    let table = &tables[task.model as usize];
                    let b = task.batch_size;
                    let f = noise.compute();
                    let mut t = now;
                    if task.input_from.is_some() {
                        let shape = &workload.models[task.model as usize].shape;
                        t += hw.peer.time(activation_bytes(shape, b));
                    }
                    let idle_since = task
                        .gpus
                        .iter()
                        .map(|&g| stream_free[g as usize])
                        .fold(f64::NEG_INFINITY, f64::max);
                    t = t.max(idle_since);
                    let layers = task.layers.start as usize..task.layers.end as usize;
                    let mut cursor = layers.start;
                    let mut first: Option<f64> = None;
                    // The first layer starts at `t`; a GPU that sat idle
                    // before it pays the profile's idle penalty there (hidden
                    // when later layers wait on their copies anyway).
                    let begin = |first: &mut Option<f64>, t: &mut f64| {
                        if first.is_none() {
                            *first = Some(*t);
                            *t += hw.compute.idle_extra_s(*t - idle_since);
                        }
                    };
                    let mut i = 0;
                    while i < task.waits.len() {
                        let range = task.waits[i].0.clone();
                        let mut ready = 0.0f64;
                        while i < task.waits.len() && task.waits[i].0 == range {
                            ready = ready.max(copy_done[task.waits[i].1 as usize]);
                            i += 1;
                        }
                        let (rs, re) = (range.start as usize, range.end as usize);
                        if rs > cursor {
                            begin(&mut first, &mut t);
                            t += table.time(cursor..rs, b) * f;
                        }
                        t = t.max(ready);
                        begin(&mut first, &mut t);
                        t += table.time(rs..re, b) * f;
                        cursor = re;
                    }
                    begin(&mut first, &mut t);
                    let start = first.expect("set by begin");
                    if cursor < layers.end {
                        t += table.time(cursor..layers.end, b) * f;
                    }
                    for &g in &task.gpus {
                        stream_free[g as usize] = t;
                    }
                    if task.stage == 0 {
                        let bi = task.batch as usize;
                        if batch_start.len() <= bi {
                            batch_start.resize(bi + 1, 0.0);
                        }
                        batch_start[bi] = start;
                    }
                    seq += 1;
                    heap.push(Pending {
                        t: t.to_bits(),
                        seq,
                        compute: true,
                        id: *id,
                    });
                    if opts.timeline {
                        for &g in &task.gpus {
                            timeline.push(
                                opts.timeline_max_events,
                                Span {
                                    gpu: g,
                                    track: Track::Compute,
                                    model: task.model,
                                    stage: task.stage,
                                    layers: (task.layers.start, task.layers.end),
                                    start_s: start,
                                    end_s: t,
                                    batch_size: b,
                                    bytes: 0,
                                    streamed: task.streamed,
                                },
                            );
                        }
                    }
                }
                Action::Evict(_) => {}
                Action::Finish(bid) => {
                    let batch = sched.batch(*bid);
                    let m = batch.model as usize;
                    let spec = &workload.models[m];
                    record.model.clear();
                    record.model.push_str(&spec.name);
                    record.start_s = batch_start[*bid as usize];
                    // The output reaches the host `overhead_s` after the last layer.
                    record.finish_s = now + overhead_s;
                    record.batch_size = batch.requests.len() as u32;
                    record.cold = batch.cold;
                    for &req in &batch.requests {
                        let r = &schedule.requests[req as usize];
                        record.id = r.id;
                        record.arrival_s = r.arrival_s;
                        record.latency_s = record.finish_s - r.arrival_s;
                        out.record(&record)?;
                        lat.per_model[m].push(record.latency_s);
                        if spec.slo_s.is_none_or(|slo| record.latency_s <= slo) {
                            lat.within_slo[m] += 1;
                        }
                    }
                    finished += batch.requests.len() as u64;
                    if finished & 0xffff < batch.requests.len() as u64 {
                        progress.set_position(finished);
                    }
                }
            }
        }
        if opts.check_invariants {
            if let Err(e) = sched.check_invariants() {
                panic!("scheduler invariant broken at t={now}: {e}");
            }
        }
    }
    progress.finish_and_clear();
    assert!(
        !sched.busy(),
        "the scheduler stalled with work left (a bug): {finished} of {} requests finished",
        schedule.requests.len()
    );
    let stats = sched.load_stats();
    let models = workload
        .models
        .iter()
        .enumerate()
        .map(|(m, spec)| ModelResult {
            model: spec.name.clone(),
            summary: lat.model(m),
            loads: stats[m].loads,
            bytes_loaded: stats[m].bytes,
        })
        .collect();
    let overall = lat.overall();
    Ok(SimResult {
        workload: workload.name.clone(),
        system: policy.system.name().to_string(),
        eviction: policy.eviction.name().to_string(),
        grouping: policy.grouping.name().to_string(),
        summary: overall,
        loads: stats.iter().map(|s| s.loads).sum(),
        bytes_loaded: stats.iter().map(|s| s.bytes).sum(),
        events,
        run: SimRun {
            simulated_s: now,
            timeline,
        },
        models,
    })
}

fn progress_bar(show: bool, n: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(Some(n), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} simulating {pos}/{len} requests [{bar:30}] {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
