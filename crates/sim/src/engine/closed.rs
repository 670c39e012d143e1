//! Closed-loop arrivals in the engine: the next arrival comes from the
//! workload's [`ClosedLoop`] (fed each request's finish in
//! `Engine::finish_batch`) instead of a schedule, and each arrival is
//! written to `schedule.csv` as it is taken.

use super::{Engine, SimOptions};
use crate::sink::RecordSink;
use crate::summary::SimResult;
use std::path::Path;
use switchyard_core::closed_loop::ClosedLoop;
use switchyard_core::schedule::ScheduleWriter;
use switchyard_core::workload::{PolicySpec, Process};
use switchyard_core::{Error, Request, Schedule, Workload};

/// The closed loop an engine draws its arrivals from.
pub(super) struct Closed {
    /// The rule: who sends next, and when.
    pub(super) driver: ClosedLoop,
}

/// How many arrivals the engine draws ahead of the one it serves next, so
/// that their models' state can be fetched into cache while it works.
const AHEAD: usize = 16;

impl Engine<'_> {
    /// The time of the next arrival: the closed loop's, or the schedule's
    /// (drawn once and kept until taken).
    pub(super) fn next_arrival_s(&mut self) -> Option<f64> {
        if let Some(c) = &self.closed {
            return c.driver.peek();
        }
        while self.ahead.len() < AHEAD {
            let Some(r) = self.arrivals.next() else { break };
            self.sched.prefetch_model(r.model);
            if let Some(t) = self.table_of.get(r.model as usize) {
                switchyard_core::prefetch::prefetch(t);
            }
            self.names.prefetch(r.model);
            self.ahead.push_back(r);
        }
        self.ahead.front().map(|r| r.arrival_s)
    }

    /// Takes the arrival [`Engine::next_arrival_s`] announced, writing it
    /// to the arrivals' log if there is one.
    pub(super) fn take_arrival(&mut self) -> Request {
        let r = match &mut self.closed {
            Some(c) => c.driver.pop().expect("announced"),
            None => self.ahead.pop_front().expect("announced"),
        };
        if let Some(log) = &mut self.log {
            if let Err(e) = log.push(&r) {
                self.log_failed.get_or_insert(e);
                self.log = None;
            }
        }
        r
    }
}

/// Simulates `workload`, whose arrivals are a closed loop, served by
/// `policy`: each client's next request arrives when the simulation
/// finishes its previous one (plus the think time). Records go to `out`;
/// the arrivals, as they are produced, to `schedule` (`schedule.csv`) if
/// given. Returns the result, the number of requests and the last arrival.
///
/// Fails with an input error when the workload's arrivals are not a
/// closed loop or the policy needs the future (Belady).
pub fn simulate_closed(
    workload: &Workload,
    policy: PolicySpec,
    opts: &SimOptions,
    out: &mut dyn RecordSink,
    schedule: Option<&Path>,
) -> Result<(SimResult, u64, f64), Error> {
    let Process::ClosedLoop(spec) = &workload.arrivals.process else {
        return Err(switchyard_core::InputError::new(
            &workload.source,
            None,
            "arrivals.process",
            "not `closed_loop`",
        )
        .into());
    };
    if switchyard_scheduler::Scheduler::needs_future(policy) {
        return Err(switchyard_core::arrivals::closed_loop_not_drawn(workload));
    }
    let none = Schedule {
        models: workload.model_names(),
        requests: Vec::new(),
    };
    let mut engine = Engine::with_arrivals(
        workload,
        &none,
        Box::new(std::iter::empty()),
        0,
        policy,
        opts,
    )?;
    if let Some(p) = schedule {
        engine.log = Some(ScheduleWriter::create(p, engine.names.clone())?);
    }
    let n_models = workload.models.len() as u32;
    engine.closed = Some(Closed {
        driver: ClosedLoop::new(spec, n_models, workload.duration_s),
    });
    while let Some(event) = engine.next_event() {
        engine.step(event, out)?;
    }
    engine.progress.finish_and_clear();
    let logged = engine.finish_log()?;
    let closed = engine.closed.take().expect("set above");
    assert!(
        !engine.sched.busy() && closed.driver.outstanding() == 0,
        "the scheduler stalled with work left (a bug): {} of {} requests finished",
        engine.finished,
        closed.driver.arrived()
    );
    let (n, last) = logged.unwrap_or((closed.driver.arrived(), 0.0));
    Ok((engine.result(), n, last))
}
