//! The event loop: a virtual clock, a binary heap of completions, and the
//! schedule's arrivals merged in.

use crate::background::Background;
use crate::jitter::Noise;
use crate::sink::RecordSink;
use crate::summary::{Latencies, ModelResult, SimResult, SimRun, TimelineCut};
use dary_heap::QuaternaryHeap;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use switchyard_core::arrival_stream::ArrivalPlan;
use switchyard_core::cost::{activation_bytes, ComputeTable};
use switchyard_core::model::Dtype;
use switchyard_core::names::NameTable;
use switchyard_core::records::RequestRecord;
use switchyard_core::schedule::ScheduleWriter;
use switchyard_core::summary::Offloads;
use switchyard_core::timeline::{Span, Timeline, Track};
use switchyard_core::workload::{PolicyName, PolicySpec};
use switchyard_core::HardwareProfile;
use switchyard_core::{Error, Request, Schedule, Workload};
use switchyard_scheduler::{Action, BatchId, CopyOp, Event, OffloadOp, Scheduler, Source, TaskId};

/// One layer's reads of pinned host memory in a pass (`policy.direct_host`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct HostRead {
    /// The layer (absolute index).
    layer: u32,
    /// Bytes it reads over the link.
    bytes: u64,
    /// When its reads start, seconds.
    start_s: f64,
    /// When they end, seconds.
    end_s: f64,
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
        // Reversed: the heap is a max-heap, we want the earliest first.
        other.t.cmp(&self.t).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The simulator: the scheduler driven by a virtual clock. Each step takes
/// the next event ([`Engine::next_event`]: completions and arrivals merged
/// in time order), feeds it to the scheduler and carries out the actions:
/// copies timed on their link ([`Engine::time_copy`]), computes on their
/// GPUs' streams ([`Engine::time_compute`]), finished batches recorded
/// ([`Engine::finish_batch`]).
pub struct Engine<'a> {
    workload: &'a Workload,
    /// Requests still to arrive, in arrival order.
    arrivals: Box<dyn Iterator<Item = Request> + 'a>,
    /// The next arrivals, drawn ahead (`closed.rs`: `AHEAD`), in order.
    ahead: VecDeque<Request>,
    /// Closed-loop arrivals (`closed.rs`), drawn from completions instead.
    closed: Option<closed::Closed>,
    /// Where arrivals go as they are taken (`schedule.csv`), if anywhere.
    log: Option<ScheduleWriter>,
    /// The first failure writing `log` (reported when the run ends).
    log_failed: Option<Error>,
    /// Requests the run serves in all.
    total: u64,
    /// `(id, arrival_s)` of every request from the oldest unfinished one
    /// to the latest arrived (finished ones: arrival `NaN`).
    in_flight: VecDeque<(u64, f64)>,
    /// Arrival index (the scheduler's request number) of `in_flight[0]`.
    in_flight_base: u64,
    policy: PolicySpec,
    opts: &'a SimOptions,
    sched: Scheduler,
    /// Compute times by batch size: the distinct tables ([`ComputeTable::dedup`]).
    tables: Vec<ComputeTable>,
    /// Per model: its compute table, `tables[table_of[m]]`; empty when
    /// every model reads the one table (`tables[0]`), so that a compute
    /// reads no per-model entry ([`Engine::table`]).
    table_of: Vec<u32>,
    /// Every model's name, by index (shared with the arrivals' log).
    names: Arc<NameTable>,
    heap: QuaternaryHeap<Pending>,
    /// Issue sequence of the last completion pushed (ties in time go in issue order).
    seq: u64,
    /// When each lane frees up: one per GPU link, and one more: the host
    /// path that pageable copies share when the profile says so.
    link_free: Vec<f64>,
    /// Multi-path loading: when each GPU's peer-link ingress frees up
    /// ([`Engine::time_piece`]).
    peer_free: Vec<f64>,
    /// Multi-path loading: per helper, the staged pieces `(offset, bytes,
    /// forward done)` whose staging bytes a later piece may reuse.
    staged: Vec<std::collections::VecDeque<(u64, u64, f64)>>,
    /// Per GPU: when its device-to-host lane (offloads) frees up.
    d2h_free: Vec<f64>,
    /// Offloads timed so far (`policy.offload`).
    offloads: Offloads,
    /// Per GPU: when the last copy into it ends (what the profile's `host`
    /// topology shares is split among the GPUs copying at once).
    copy_busy: Vec<f64>,
    /// GPUs copying in the current step: busy before it, or sent a copy by
    /// its actions (only with a `host` topology).
    copying: Vec<u32>,
    /// When each GPU's compute stream frees up; never used yet: idle since
    /// long before the start (replay's warm-up ends before its clock starts).
    stream_free: Vec<f64>,
    /// Per copy id: when it completes.
    copy_done: Vec<f64>,
    /// Per copy id: the lane it took into its GPU (`u32::MAX`: a piece
    /// forwarded from a helper, landing over the peer link).
    copy_lane: Vec<u32>,
    /// Per copy id: when the host has issued it (replay issues a pinned
    /// copy at once, a pageable one in chunks that hold the host to the end).
    copy_issued: Vec<f64>,
    /// When the host issues the latest pass: from, to (replay's one host
    /// thread issues every GPU's passes).
    host_issuing: (f64, f64),
    /// Per batch id: when its first stage started.
    batch_start: Vec<f64>,
    /// Direct host access: the host reads of the compute timed last
    /// ([`Engine::time_compute`]), for the timeline.
    host_reads: Vec<HostRead>,
    lat: Latencies,
    /// The record written for each request (reused).
    record: RequestRecord,
    noise: Noise,
    /// The workload's background jobs, per GPU.
    background: Background,
    events: u64,
    /// The virtual clock, seconds.
    now: f64,
    finished: u64,
    timeline: Timeline,
    /// Virtual time when the span cap first left a span out.
    timeline_cut_at: Option<f64>,
    actions: Vec<Action>,
    progress: indicatif::ProgressBar,
}

impl<'a> Engine<'a> {
    /// An engine at time 0 with `policy`'s scheduler for `workload` (resident
    /// weights already in place) and nothing fed yet.
    pub fn new(
        workload: &'a Workload,
        schedule: &'a Schedule,
        policy: PolicySpec,
        opts: &'a SimOptions,
    ) -> Result<Engine<'a>, Error> {
        let arrivals = Box::new(schedule.requests.iter().copied());
        let total = schedule.requests.len() as u64;
        Engine::with_arrivals(workload, schedule, arrivals, total, policy, opts)
    }

    /// An engine serving `total` requests drawn from `arrivals` (in arrival
    /// order) as the clock reaches them; `future` is what a policy that
    /// needs the future (Belady) reads: the same requests, held whole
    /// (others take an empty schedule).
    pub fn with_arrivals(
        workload: &'a Workload,
        future: &Schedule,
        arrivals: Box<dyn Iterator<Item = Request> + 'a>,
        total: u64,
        policy: PolicySpec,
        opts: &'a SimOptions,
    ) -> Result<Engine<'a>, Error> {
        let mut sched = Scheduler::with_policy(workload, future, policy)?;
        let hw = &workload.cluster.hardware;
        let n_gpus = sched.gpus() as usize;
        // The profile each weight type sees, made once (fp16 is `hw` itself).
        let typed: Vec<(Dtype, HardwareProfile)> = Dtype::ALL
            .into_iter()
            .filter(|&d| d != Dtype::Fp16 && workload.dtypes.contains(&d))
            .map(|d| (d, hw.for_dtype(d)))
            .collect();
        let models = &workload.models;
        let tp = |i: usize| sched.placement(i as u32).tp;
        let (tables, table_of) = ComputeTable::dedup(
            models.len(),
            |i| {
                let (a, b) = (&models[i - 1], &models[i]);
                a.shape == b.shape
                    && a.max_batch == b.max_batch
                    && tp(i - 1) == tp(i)
                    && workload.dtype(i - 1) == workload.dtype(i)
            },
            |i| {
                let d = workload.dtype(i);
                let hw = typed.iter().find(|(t, _)| *t == d).map_or(hw, |(_, p)| p);
                ComputeTable::new(hw, &models[i].shape, tp(i), models[i].max_batch)
            },
        );
        let table_of = if tables.len() == 1 {
            Vec::new()
        } else {
            table_of
        };
        let names: Vec<&str> = workload.models.iter().map(|m| m.name.as_str()).collect();
        let names = Arc::new(NameTable::new(&names));
        let mut actions = Vec::with_capacity(64);
        // Resident weights are in place before the clock starts.
        sched.preload(&mut actions);
        actions.clear();
        Ok(Engine {
            workload,
            arrivals,
            ahead: VecDeque::new(),
            closed: None,
            log: None,
            log_failed: None,
            total,
            in_flight: VecDeque::new(),
            in_flight_base: 0,
            policy,
            opts,
            sched,
            tables,
            table_of,
            names,
            heap: QuaternaryHeap::with_capacity(1024),
            seq: 0,
            link_free: vec![0.0; n_gpus + 1],
            peer_free: vec![0.0; n_gpus],
            staged: vec![std::collections::VecDeque::new(); n_gpus],
            d2h_free: vec![0.0; n_gpus],
            offloads: Offloads::default(),
            copy_busy: vec![0.0; n_gpus],
            copying: Vec::new(),
            stream_free: vec![f64::NEG_INFINITY; n_gpus],
            copy_done: Vec::new(),
            copy_lane: Vec::new(),
            copy_issued: Vec::new(),
            host_issuing: (0.0, 0.0),
            batch_start: Vec::new(),
            host_reads: Vec::new(),
            lat: Latencies::new(
                workload.models.iter().map(|m| m.slo_s).collect(),
                opts.exact_quantiles,
                total,
            ),
            record: RequestRecord {
                id: 0,
                model: String::new(),
                arrival_s: 0.0,
                start_s: 0.0,
                finish_s: 0.0,
                latency_s: 0.0,
                batch_size: 0,
                cold: false,
            },
            noise: Noise::new(&hw.jitter, workload.seed),
            background: Background::new(workload, n_gpus),
            events: 0,
            now: 0.0,
            finished: 0,
            timeline: Timeline {
                gpus: n_gpus as u32,
                models: workload.model_names(),
                ..Timeline::default()
            },
            timeline_cut_at: None,
            actions,
            progress: progress_bar(opts.progress, total),
        })
    }

    /// Runs to the end: every event fed, every request recorded into `out`.
    pub fn run(mut self, out: &mut dyn RecordSink) -> Result<SimResult, Error> {
        self.drive(out)?;
        Ok(self.result())
    }

    /// [`Engine::run`] writing each arrival to `log` (`schedule.csv`) as it
    /// is taken, so the requests are drawn once, not once for the file and
    /// again for the run; returns also the requests written and the last
    /// arrival.
    pub fn run_logged(
        mut self,
        out: &mut dyn RecordSink,
        log: ScheduleWriter,
    ) -> Result<(SimResult, u64, f64), Error> {
        self.log = Some(log);
        self.drive(out)?;
        let (n, last) = self.finish_log()?.expect("set above");
        Ok((self.result(), n, last))
    }

    /// Feeds every event to the end.
    /// Index in `tables` of model `m`'s compute table (0, reading no
    /// per-model entry, when every model shares it).
    fn table(&self, m: u32) -> usize {
        self.table_of.get(m as usize).map_or(0, |&t| t as usize)
    }

    fn drive(&mut self, out: &mut dyn RecordSink) -> Result<(), Error> {
        while let Some(event) = self.next_event() {
            self.step(event, out)?;
        }
        self.progress.finish_and_clear();
        assert!(
            !self.sched.busy(),
            "the scheduler stalled with work left (a bug): {} of {} requests finished",
            self.finished,
            self.total
        );
        Ok(())
    }

    /// Ends the arrivals' log: the first write failure, or the requests
    /// written and the last arrival (`None` without a log).
    fn finish_log(&mut self) -> Result<Option<(u64, f64)>, Error> {
        if let Some(e) = self.log_failed.take() {
            return Err(e);
        }
        self.log.take().map(ScheduleWriter::finish).transpose()
    }

    /// The virtual clock, seconds.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// The scheduler being driven.
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// Arrival merge: the next event, earliest first (a completion before an
    /// arrival at the same time; completions at one time in issue order),
    /// with the clock moved to it. `None` once nothing is left.
    pub fn next_event(&mut self) -> Option<Event> {
        let arrival_s = self.next_arrival_s();
        let from_heap = match (self.heap.peek(), arrival_s) {
            (Some(p), Some(t)) => f64::from_bits(p.t) <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        Some(if from_heap {
            let p = self.heap.pop().expect("peeked");
            self.now = f64::from_bits(p.t);
            if p.compute {
                Event::ComputeDone { task: p.id }
            } else {
                Event::CopyDone { copy: p.id }
            }
        } else {
            let r = self.take_arrival();
            self.now = self.now.max(r.arrival_s);
            let request = self.in_flight_base + self.in_flight.len() as u64;
            self.in_flight.push_back((r.id, r.arrival_s));
            Event::Arrived {
                request,
                model: r.model,
            }
        })
    }

    /// Feeds `event` to the scheduler and carries out its actions at the
    /// current time; finished requests go to `out`.
    pub fn step(&mut self, event: Event, out: &mut dyn RecordSink) -> Result<(), Error> {
        self.events += 1;
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        self.sched.on_event(event, &mut actions);
        if !self.workload.cluster.hardware.host.is_empty() {
            self.note_copying(&actions);
        }
        let mut result = Ok(());
        for a in &actions {
            match a {
                Action::Copy(c) if c.via.is_some() => self.time_piece(c),
                Action::Copy(c) => {
                    let (start, end) = self.time_copy(c);
                    self.complete_at(end, false, c.id);
                    if self.opts.timeline {
                        self.span(Span {
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
                            host_s: None,
                        });
                    }
                }
                Action::Compute(id) => {
                    let (start, end) = self.time_compute(*id);
                    self.complete_at(end, true, *id);
                    if self.opts.timeline {
                        let task = self.sched.task(*id);
                        for r in &self.host_reads {
                            keep_span(
                                &mut self.timeline,
                                &mut self.timeline_cut_at,
                                self.opts,
                                self.now,
                                Span {
                                    gpu: task.gpus[0],
                                    track: Track::HostRead,
                                    model: task.model,
                                    stage: task.stage,
                                    layers: (r.layer, r.layer + 1),
                                    start_s: r.start_s,
                                    end_s: r.end_s,
                                    batch_size: task.batch_size,
                                    bytes: r.bytes,
                                    streamed: task.streamed,
                                    host_s: None,
                                },
                            );
                        }
                        for &g in &task.gpus {
                            keep_span(
                                &mut self.timeline,
                                &mut self.timeline_cut_at,
                                self.opts,
                                self.now,
                                Span {
                                    gpu: g,
                                    track: Track::Compute,
                                    model: task.model,
                                    stage: task.stage,
                                    layers: (task.layers.start, task.layers.end),
                                    start_s: start,
                                    end_s: end,
                                    batch_size: task.batch_size,
                                    bytes: 0,
                                    streamed: task.streamed,
                                    host_s: None,
                                },
                            );
                        }
                    }
                }
                Action::Offload(o) => {
                    let (start, end) = self.time_offload(o);
                    self.complete_at(end, false, o.id);
                    self.offloads.add(o.bytes, end - start);
                    if self.opts.timeline {
                        self.span(offload_span(o, start, end));
                    }
                }
                // The background job's preemption is timed where the
                // compute that causes it is (`time_compute`, the same rule).
                Action::Evict(_) | Action::Preempt(_) | Action::Resume(_) => {}
                Action::Finish(bid) => {
                    result = self.finish_batch(*bid, out);
                    if result.is_err() {
                        break;
                    }
                }
            }
        }
        self.actions = actions;
        result?;
        if self.opts.check_invariants {
            if let Err(e) = self.sched.check_invariants() {
                panic!("scheduler invariant broken at t={}: {e}", self.now);
            }
        }
        Ok(())
    }

    /// The GPUs copying while `actions` are carried out: those whose copies
    /// run past now, and those the actions send a copy to (ascending).
    fn note_copying(&mut self, actions: &[Action]) {
        self.copying.clear();
        for (g, &busy) in self.copy_busy.iter().enumerate() {
            if busy > self.now {
                self.copying.push(g as u32);
            }
        }
        for a in actions {
            let g = match a {
                // A multi-path piece's host copy runs on its helper's link.
                Action::Copy(c) => c.via.map_or(c.gpu, |v| v.helper),
                // An offload's bytes cross host memory too.
                Action::Offload(o) => o.gpu,
                _ => continue,
            };
            if let Err(i) = self.copying.binary_search(&g) {
                self.copying.insert(i, g);
            }
        }
    }

    /// Batch finish: records every request of batch `bid` as finished now
    /// plus the profile's request overhead (the output's trip to the host),
    /// into `out` and the latency statistics.
    pub fn finish_batch(&mut self, bid: BatchId, out: &mut dyn RecordSink) -> Result<(), Error> {
        let batch = self.sched.batch(bid);
        let m = batch.model as usize;
        let record = &mut self.record;
        record.model.clear();
        record.model.push_str(self.names.get(m as u32));
        record.start_s = self.batch_start[bid as usize];
        // The output reaches the host `overhead_s` after the last layer.
        record.finish_s = self.now + self.workload.cluster.hardware.compute.request_overhead_s;
        record.batch_size = batch.requests.len() as u32;
        record.cold = batch.cold;
        for &req in &batch.requests {
            let slot = &mut self.in_flight[(req - self.in_flight_base) as usize];
            (record.id, record.arrival_s) = *slot;
            slot.1 = f64::NAN;
            record.latency_s = record.finish_s - record.arrival_s;
            out.record(record)?;
            self.lat.push(m, record.latency_s);
            if let Some(c) = &mut self.closed {
                c.driver.finished(record.id, record.finish_s);
            }
        }
        while self.in_flight.front().is_some_and(|r| r.1.is_nan()) {
            self.in_flight.pop_front();
            self.in_flight_base += 1;
        }
        let n = batch.requests.len() as u64;
        self.finished += n;
        if self.finished & 0xffff < n {
            self.progress.set_position(self.finished);
        }
        Ok(())
    }

    /// Schedules the completion of copy or compute `id` at time `t`.
    fn complete_at(&mut self, t: f64, compute: bool, id: u32) {
        self.seq += 1;
        self.heap.push(Pending {
            t: t.to_bits(),
            seq: self.seq,
            compute,
            id,
        });
    }
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

mod closed;
pub use closed::simulate_closed;
mod entry;
pub use entry::{simulate, simulate_plan, simulate_plan_logged, simulate_policy};
mod multipath;
mod options;
pub use options::{SimOptions, DEFAULT_TIMELINE_SPANS};
mod result;
use result::{keep_span, offload_span};
#[cfg(test)]
mod tests;
mod timing;
