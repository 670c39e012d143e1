//! The ways to run a simulation: a workload's own policy on a schedule,
//! another policy, or requests drawn from a plan as the clock advances.

use super::*;

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
    simulate_plan_drawn(workload, plan, policy, opts, out, &mut |_| {})
}

/// [`simulate_plan`] handing each request to `drawn` as it is drawn, in
/// arrival order (`sim` writes `schedule.csv` from it, so the requests are
/// drawn once, not once for the file and again for the run). A policy
/// that needs the future draws them all before the run.
pub fn simulate_plan_drawn(
    workload: &Workload,
    plan: &ArrivalPlan,
    policy: PolicySpec,
    opts: &SimOptions,
    out: &mut dyn RecordSink,
    drawn: &mut dyn FnMut(&Request),
) -> Result<SimResult, Error> {
    if Scheduler::needs_future(policy) {
        let schedule = switchyard_core::arrivals::schedule_of(workload, plan);
        schedule.requests.iter().for_each(&mut *drawn);
        return simulate_policy(workload, &schedule, policy, opts, out);
    }
    let future = Schedule {
        models: workload.model_names(),
        requests: Vec::new(),
    };
    Engine::with_arrivals(
        workload,
        &future,
        Box::new(plan.stream().inspect(move |r| drawn(r))),
        plan.len(),
        policy,
        opts,
    )?
    .run(out)
}
