//! Arrival processes: turn a workload's `arrivals` section into a request
//! schedule. Every draw comes from the seeded generator passed in.

use crate::arrival_stream::ArrivalPlan;
use crate::error::Result;
use crate::schedule::Schedule;
use crate::traces;
use crate::weighted_pick::WeightedPick;
use crate::workload::{ArrivalSpec, Process, Workload};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Gamma};

/// Most requests a generated schedule may hold unless the caller raises it
/// (`sim --max-requests`): a guard against a rate or duration off by
/// orders of magnitude (`sim` streams requests, but a schedule held whole,
/// as Belady's, costs 24 bytes a request).
pub const DEFAULT_MAX_REQUESTS: u64 = 50_000_000;

/// Generates the schedule of `workload` from its own seed, refusing one of
/// more than [`DEFAULT_MAX_REQUESTS`] requests.
pub fn generate(workload: &Workload) -> Result<Schedule> {
    generate_capped(workload, DEFAULT_MAX_REQUESTS)
}

/// [`generate`] with a limit of `max_requests`: refused before generating
/// when the expected count (mean rate x duration) is above it, and while
/// generating once the count passes it.
pub fn generate_capped(workload: &Workload, max_requests: u64) -> Result<Schedule> {
    generate_with_notes(workload, max_requests).map(|(schedule, _)| schedule)
}

/// [`generate_capped`], with notes for the user on what was left out (a
/// trace's arrivals at or past `duration_s`).
pub fn generate_with_notes(
    workload: &Workload,
    max_requests: u64,
) -> Result<(Schedule, Vec<String>)> {
    let (schedule, notes) = generate_possibly_empty(workload, max_requests)?;
    if schedule.requests.is_empty() {
        return Err(no_request(workload));
    }
    Ok((schedule, notes))
}

/// [`generate_with_notes`] that also returns a schedule with no request
/// (for a sweep, where one point's empty run is a row, not an error).
pub fn generate_possibly_empty(
    workload: &Workload,
    max_requests: u64,
) -> Result<(Schedule, Vec<String>)> {
    let (plan, notes) = plan_possibly_empty(workload, max_requests)?;
    Ok((schedule_of(workload, &plan), notes))
}

/// The schedule a plan's stream yields, held whole.
pub fn schedule_of(workload: &Workload, plan: &ArrivalPlan) -> Schedule {
    let requests = match plan.listed_requests() {
        Some(v) => v.to_vec(),
        None => plan.stream().collect(),
    };
    Schedule {
        models: workload.model_names(),
        requests,
    }
}

/// The arrivals of `workload` as a plan to stream (see [`ArrivalPlan`]):
/// the requests [`generate_with_notes`] would hold, drawn lazily; the same
/// checks and notes. Refuses a workload whose arrivals draw no request.
pub fn plan(workload: &Workload, max_requests: u64) -> Result<(ArrivalPlan, Vec<String>)> {
    let (plan, notes) = plan_possibly_empty(workload, max_requests)?;
    if plan.is_empty() {
        return Err(no_request(workload));
    }
    Ok((plan, notes))
}

/// The error of asking a closed loop's arrivals ahead of the run.
pub fn closed_loop_not_drawn(workload: &Workload) -> crate::Error {
    crate::InputError::new(
        &workload.source,
        None,
        "arrivals.process",
        "`closed_loop` arrivals depend on completions: the run draws them as it goes \
         (`sim` and `replay` of the workload), so they cannot be generated ahead \
         (`--schedule-only`, sweeps, `--compare-systems`, Belady's eviction)",
    )
    .into()
}

fn no_request(workload: &Workload) -> crate::Error {
    crate::InputError::new(
        &workload.source,
        None,
        "arrivals",
        format!(
            "no request arrives within duration_s ({} s): there is nothing to run; raise the rate or duration_s",
            workload.duration_s
        ),
    )
    .into()
}

/// [`plan`] that also returns a plan of no request.
pub fn plan_possibly_empty(
    workload: &Workload,
    max_requests: u64,
) -> Result<(ArrivalPlan, Vec<String>)> {
    if let Process::ClosedLoop(_) = workload.arrivals.process {
        return Err(closed_loop_not_drawn(workload));
    }
    let mut rng = StdRng::seed_from_u64(workload.seed);
    let names = workload.model_names();
    let too_many = |what: String| {
        crate::InputError::new(
            &workload.source,
            None,
            "arrivals",
            format!("{what}, more than the limit of {max_requests} requests (sim --max-requests raises it)"),
        )
    };
    if let Some(rate) = workload.arrivals.process.mean_rate() {
        let expected = rate * workload.duration_s;
        if expected > max_requests as f64 {
            return Err(too_many(format!(
                "rate x duration_s expects about {expected:.3e} requests"
            ))
            .into());
        }
    }
    if let Process::OnOff {
        mean_on_s,
        mean_off_s,
        ..
    } = workload.arrivals.process
    {
        // Periods are drawn one by one, requests or not.
        let periods = 2.0 * workload.duration_s / (mean_on_s + mean_off_s);
        if periods > 10.0 * max_requests as f64 {
            return Err(too_many(format!(
                "on/off periods this short over duration_s draw about {periods:.3e} periods"
            ))
            .into());
        }
    }
    let spec = &workload.arrivals;
    let duration_s = workload.duration_s;
    let cap = max_requests.saturating_add(1);
    let mut notes = Vec::new();
    let plan = match &spec.process {
        Process::RoundRobin { rate } => ArrivalPlan::round_robin(*rate, names.len(), duration_s),
        Process::Trace { .. } => {
            let mut arrivals = arrivals_capped(spec, &names, duration_s, &mut rng, max_requests)?;
            let before = arrivals.len();
            arrivals.retain(|(t, _)| *t < duration_s);
            if arrivals.len() < before {
                notes.push(format!(
                    "{}: {} of the trace's {before} arrivals are at or past duration_s ({} s) and were left out",
                    workload.source.display(),
                    before - arrivals.len(),
                    duration_s
                ));
            }
            ArrivalPlan::listed(Schedule::from_arrivals(Vec::new(), arrivals).requests)
        }
        process if spec.per_model => {
            let shares = spec.skew.shares(names.len());
            ArrivalPlan::per_model(process, &shares, duration_s, &mut rng, cap)
        }
        process => {
            let shares = spec.skew.shares(names.len());
            ArrivalPlan::pooled(process, shares, duration_s, &mut rng, cap)
        }
    };
    if plan.len() > max_requests {
        return Err(too_many(format!("the arrivals hold {}", plan.len())).into());
    }
    Ok((plan, notes))
}

/// `(arrival_s, model)` pairs in `[0, duration_s)` for the named models.
pub fn arrivals(
    spec: &ArrivalSpec,
    models: &[String],
    duration_s: f64,
    rng: &mut StdRng,
) -> Result<Vec<(f64, u32)>> {
    let mut v = arrivals_capped(spec, models, duration_s, rng, u64::MAX)?;
    v.retain(|(t, _)| *t < duration_s);
    Ok(v)
}

/// [`arrivals`], stopping soon after `max_requests` (the caller refuses a
/// result longer than that).
fn arrivals_capped(
    spec: &ArrivalSpec,
    models: &[String],
    duration_s: f64,
    rng: &mut StdRng,
    max_requests: u64,
) -> Result<Vec<(f64, u32)>> {
    let cap = usize::try_from(max_requests.saturating_add(1)).unwrap_or(usize::MAX);
    let n_models = models.len();
    let shares = spec.skew.shares(n_models);
    let mut out = match &spec.process {
        Process::RoundRobin { rate } => {
            let n = (duration_s * rate).ceil() as u64;
            (0..n)
                .map(|k| (k as f64 / rate, (k % n_models as u64) as u32))
                .filter(|(t, _)| *t < duration_s)
                .collect()
        }
        Process::Trace {
            path,
            format,
            time_scale,
        } => {
            let v = traces::load(
                path,
                *format,
                *time_scale,
                models,
                &shares,
                rng,
                max_requests,
            )?;
            // Arrivals at or past `duration_s` are left out by the caller.
            v
        }
        Process::ClosedLoop(_) => {
            return Err(crate::InputError::new(
                "",
                None,
                "arrivals.process",
                "`closed_loop` arrivals depend on completions: the run draws them",
            )
            .into())
        }
        process if spec.per_model => {
            let mut v = Vec::new();
            for (m, share) in shares.iter().enumerate() {
                if *share <= 0.0 {
                    continue;
                }
                let mut stream_rng = StdRng::seed_from_u64(rng.random());
                let times = capped_times(&process.scaled(*share), duration_s, &mut stream_rng, cap);
                v.extend(times.into_iter().map(|t| (t, m as u32)));
                if v.len() >= cap {
                    break;
                }
            }
            v
        }
        process => {
            let times = capped_times(process, duration_s, rng, cap);
            let pick = WeightedPick::new(&shares).expect("shares are validated positive");
            times
                .into_iter()
                .map(|t| (t, pick.sample(rng) as u32))
                .collect()
        }
    };
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

impl Process {
    /// The same process at `factor` times the rate (a model's share of it).
    pub fn scaled(&self, factor: f64) -> Process {
        match self.clone() {
            Process::Poisson { rate } => Process::Poisson {
                rate: rate * factor,
            },
            Process::Gamma { rate, cv } => Process::Gamma {
                rate: rate * factor,
                cv,
            },
            Process::RoundRobin { rate } => Process::RoundRobin {
                rate: rate * factor,
            },
            Process::OnOff {
                rate_on,
                rate_off,
                mean_on_s,
                mean_off_s,
            } => Process::OnOff {
                rate_on: rate_on * factor,
                rate_off: rate_off * factor,
                mean_on_s,
                mean_off_s,
            },
            fixed @ (Process::Trace { .. } | Process::ClosedLoop(_)) => fixed,
        }
    }

    /// Long-run mean rate, requests/s (`None` for traces).
    pub fn mean_rate(&self) -> Option<f64> {
        match self {
            Process::Poisson { rate }
            | Process::Gamma { rate, .. }
            | Process::RoundRobin { rate } => Some(*rate),
            Process::OnOff {
                rate_on,
                rate_off,
                mean_on_s,
                mean_off_s,
            } => Some((rate_on * mean_on_s + rate_off * mean_off_s) / (mean_on_s + mean_off_s)),
            Process::Trace { .. } | Process::ClosedLoop(_) => None,
        }
    }
}

/// Arrival times in `[0, duration_s)` of one renewal or modulated stream.
///
/// Panics for `Trace` and `RoundRobin`, which are not random streams.
pub fn arrival_times(process: &Process, duration_s: f64, rng: &mut StdRng) -> Vec<f64> {
    capped_times(process, duration_s, rng, usize::MAX)
}

/// [`arrival_times`], stopping at `cap` times.
fn capped_times(process: &Process, duration_s: f64, rng: &mut StdRng, cap: usize) -> Vec<f64> {
    let mut times = Vec::new();
    match *process {
        Process::Poisson { rate } => renewal(
            &Exp::new(rate).expect("rate > 0"),
            duration_s,
            rng,
            &mut times,
            cap,
        ),
        Process::Gamma { rate, cv } => renewal(
            &gamma_interarrival(rate, cv),
            duration_s,
            rng,
            &mut times,
            cap,
        ),
        Process::OnOff {
            rate_on,
            rate_off,
            mean_on_s,
            mean_off_s,
        } => {
            let on_len = Exp::new(1.0 / mean_on_s).expect("mean_on_s > 0");
            let off_len = Exp::new(1.0 / mean_off_s).expect("mean_off_s > 0");
            let (mut start, mut on) = (0.0, true);
            while start < duration_s && times.len() < cap {
                let len = if on {
                    on_len.sample(rng)
                } else {
                    off_len.sample(rng)
                };
                let end = (start + len).min(duration_s);
                let rate = if on { rate_on } else { rate_off };
                if rate > 0.0 {
                    let gap = Exp::new(rate).expect("rate > 0");
                    let mut t = start + gap.sample(rng);
                    while t < end && times.len() < cap {
                        times.push(t);
                        t += gap.sample(rng);
                    }
                }
                start = end;
                on = !on;
            }
        }
        Process::RoundRobin { .. } | Process::Trace { .. } | Process::ClosedLoop(_) => {
            panic!("not a random stream: {process:?}")
        }
    }
    times
}

/// Gamma inter-arrival law with mean `1/rate` and CV `cv`: shape `1/cv^2`,
/// scale `cv^2/rate` (as AlpaServe does).
pub fn gamma_interarrival(rate: f64, cv: f64) -> Gamma<f64> {
    Gamma::new(1.0 / (cv * cv), cv * cv / rate).expect("rate > 0 and cv > 0")
}

fn renewal<D: Distribution<f64>>(
    gap: &D,
    duration_s: f64,
    rng: &mut StdRng,
    out: &mut Vec<f64>,
    cap: usize,
) {
    let mut t = gap.sample(rng);
    while t < duration_s && out.len() < cap {
        out.push(t);
        t += gap.sample(rng);
    }
}
