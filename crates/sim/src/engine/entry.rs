//! The ways to run a simulation: a workload's own policy on a schedule,
//! another policy, or requests drawn from a plan as the clock advances.

use super::*;
use std::path::Path;

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
    Engine::new(workload, schedule, policy, opts)?.run(out)
}

/// [`simulate_policy`] on the requests of `plan`, drawn as the clock
/// advances: the schedule is never held whole, unless the policy needs
/// the future (Belady), which reads it all before the run.
pub fn simulate_plan(
    workload: &Workload,
    plan: &ArrivalPlan,
    policy: PolicySpec,
    opts: &SimOptions,
    out: &mut dyn RecordSink,
) -> Result<SimResult, Error> {
    simulate_plan_logged(workload, plan, policy, opts, out, None).map(|(r, ..)| r)
}

/// [`simulate_plan`] writing the requests to `schedule` (`schedule.csv`),
/// if given, as the engine draws them, so they are drawn once, not once
/// for the file and again for the run (a policy that needs the future
/// draws them all first, and the file is written then). Returns also the
/// requests and the last arrival (without a file: the plan's count and 0).
pub fn simulate_plan_logged(
    workload: &Workload,
    plan: &ArrivalPlan,
    policy: PolicySpec,
    opts: &SimOptions,
    out: &mut dyn RecordSink,
    schedule: Option<&Path>,
) -> Result<(SimResult, u64, f64), Error> {
    if Scheduler::needs_future(policy) {
        let held = switchyard_core::arrivals::schedule_of(workload, plan);
        if let Some(path) = schedule {
            held.write_csv(path)?;
        }
        let result = simulate_policy(workload, &held, policy, opts, out)?;
        return Ok((result, held.requests.len() as u64, held.span_s()));
    }
    let future = Schedule {
        models: workload.model_names(),
        requests: Vec::new(),
    };
    let engine = Engine::with_arrivals(
        workload,
        &future,
        Box::new(plan.stream()),
        plan.len(),
        policy,
        opts,
    )?;
    match schedule {
        Some(path) => {
            let log = ScheduleWriter::create(path, engine.names.clone())?;
            engine.run_logged(out, log)
        }
        None => Ok((engine.run(out)?, plan.len(), 0.0)),
    }
}
