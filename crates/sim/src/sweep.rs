//! Sweeps: one workload simulated over a grid of rate scale (or a trace's
//! `time_scale`), CV, GPUs, GPU memory, system, eviction and grouping, with
//! several seeds per point.
//!
//! Every (point, seed) pair is an independent job: its own workload copy,
//! its own schedule generated from its seed, its own simulation. Jobs run
//! in parallel on rayon's pool and their rows are collected in grid order,
//! so the result is the same bytes whatever the number of cores.

use crate::engine::{simulate_plan, SimOptions};
use crate::sink::NullSink;
use rayon::prelude::*;
use std::fmt::Write as _;
use switchyard_core::hardware::GIB;
use switchyard_core::workload::{Eviction, Grouping, PolicyName, PolicySpec, Process, System};
use switchyard_core::{arrivals, Error, InputError, Schedule, Workload};
use switchyard_scheduler::Scheduler;

/// The values each swept variable takes; an empty list keeps the workload's own value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grid {
    /// Factors on the arrival rate (a trace: its times divided by the
    /// factor, and `duration_s` with them, so the same requests come faster).
    pub rate_scale: Vec<f64>,
    /// A trace's `time_scale` (its times multiplied by it; `duration_s`
    /// follows by the ratio to the workload's own `time_scale`).
    pub time_scale: Vec<f64>,
    /// Coefficient of variation of Gamma inter-arrivals (a Poisson workload
    /// becomes Gamma at the same rate).
    pub cv: Vec<f64>,
    /// Number of GPUs.
    pub gpus: Vec<u32>,
    /// Memory of each GPU, GiB.
    pub gpu_memory_gib: Vec<f64>,
    /// Serving systems.
    pub system: Vec<System>,
    /// Eviction policies.
    pub eviction: Vec<Eviction>,
    /// Layer groupings.
    pub grouping: Vec<Grouping>,
}

/// One point of the grid: every variable's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Factor on the arrival rate (1: the workload's own).
    pub rate_scale: f64,
    /// A trace's `time_scale`, when the workload replays one.
    pub time_scale: Option<f64>,
    /// Gamma CV, when the process has one.
    pub cv: Option<f64>,
    /// GPUs.
    pub gpus: u32,
    /// GiB of memory per GPU.
    pub gpu_memory_gib: f64,
    /// System, eviction and grouping.
    pub policy: PolicySpec,
}

/// One row of `sweep.csv`: a point, a seed and the run's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    /// The point.
    pub point: Point,
    /// Seed of the run's arrivals (and jitter).
    pub seed: u64,
    /// What the simulation reported.
    pub result: crate::SimResult,
}

/// Names of the variables, as `sweep.csv` columns and `--x` values.
pub const VARIABLES: [&str; 8] = [
    "rate_scale",
    "time_scale",
    "cv",
    "gpus",
    "gpu_memory_gib",
    "system",
    "eviction",
    "grouping",
];

fn flag_error(flag: &str, msg: String) -> Error {
    Error::Input(InputError::new("<flags>", None, flag, msg))
}

/// The points of `grid` over `base`, in a fixed order (system, eviction,
/// grouping, GPUs, memory, CV, then rate or time scale innermost).
pub fn points(base: &Workload, grid: &Grid) -> Result<Vec<Point>, Error> {
    if !grid.rate_scale.is_empty() && !grid.time_scale.is_empty() {
        return Err(flag_error(
            "--time-scale",
            "sweep either the rate scale or the time scale, not both".into(),
        ));
    }
    let or = |v: &[f64], d: f64| if v.is_empty() { vec![d] } else { v.to_vec() };
    let own_ts = match base.arrivals.process {
        Process::Trace { time_scale, .. } => Some(time_scale),
        _ => None,
    };
    let own_cv = match base.arrivals.process {
        Process::Gamma { cv, .. } => Some(cv),
        _ => None,
    };
    let systems = if grid.system.is_empty() {
        vec![base.policy.system]
    } else {
        grid.system.clone()
    };
    let evictions = if grid.eviction.is_empty() {
        vec![base.policy.eviction]
    } else {
        grid.eviction.clone()
    };
    let groupings = if grid.grouping.is_empty() {
        vec![base.policy.grouping]
    } else {
        grid.grouping.clone()
    };
    let gpus = if grid.gpus.is_empty() {
        vec![base.cluster.gpus]
    } else {
        grid.gpus.clone()
    };
    let mems = or(
        &grid.gpu_memory_gib,
        base.cluster.hardware.gpu_memory_bytes as f64 / GIB,
    );
    let cvs: Vec<Option<f64>> = if grid.cv.is_empty() {
        vec![own_cv]
    } else {
        grid.cv.iter().map(|c| Some(*c)).collect()
    };
    let scales: Vec<(f64, Option<f64>)> = if grid.time_scale.is_empty() {
        or(&grid.rate_scale, 1.0)
            .into_iter()
            .map(|r| (r, own_ts.map(|t| t / r)))
            .collect()
    } else {
        let Some(own) = own_ts else {
            return Err(flag_error(
                "--time-scale",
                "the workload replays no trace (`arrivals.process: trace`)".into(),
            ));
        };
        grid.time_scale
            .iter()
            .map(|&t| (own / t, Some(t)))
            .collect()
    };
    let mut out = Vec::new();
    for &system in &systems {
        for &eviction in &evictions {
            for &grouping in &groupings {
                for &g in &gpus {
                    for &mem in &mems {
                        for &cv in &cvs {
                            for &(rate_scale, time_scale) in &scales {
                                out.push(Point {
                                    rate_scale,
                                    time_scale,
                                    cv,
                                    gpus: g,
                                    gpu_memory_gib: mem,
                                    policy: PolicySpec {
                                        system,
                                        eviction,
                                        grouping,
                                        max_loaded: base.policy.max_loaded,
                                        offload: base.policy.offload,
                                    },
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `base` changed to `point` (policy aside), checked: every model fits and
/// the policy can serve it. Errors name the flag and the value.
pub fn apply(base: &Workload, point: &Point) -> Result<Workload, Error> {
    let mut w = base.clone();
    let s = point.rate_scale;
    if !(s.is_finite() && s > 0.0) {
        return Err(flag_error(
            "--rate-scale",
            format!("expected factors > 0, got {s}"),
        ));
    }
    match &mut w.arrivals.process {
        Process::Poisson { rate } | Process::RoundRobin { rate } => *rate *= s,
        Process::Gamma { rate, .. } => *rate *= s,
        Process::OnOff {
            rate_on, rate_off, ..
        } => {
            *rate_on *= s;
            *rate_off *= s;
        }
        Process::Trace { time_scale, .. } => {
            let new = point.time_scale.expect("a trace point has a time scale");
            if !(new.is_finite() && new > 0.0) {
                return Err(flag_error(
                    "--time-scale",
                    format!("expected factors > 0, got {new}"),
                ));
            }
            w.duration_s *= new / *time_scale;
            *time_scale = new;
        }
        // Refused where the run draws its arrivals (`arrivals::plan`).
        Process::ClosedLoop(_) => {}
    }
    if let Some(cv) = point.cv {
        if !(cv.is_finite() && cv > 0.0) {
            return Err(flag_error(
                "--cv",
                format!("expected a coefficient of variation > 0, got {cv}"),
            ));
        }
        w.arrivals.process = match w.arrivals.process {
            Process::Gamma { rate, .. } | Process::Poisson { rate } => Process::Gamma { rate, cv },
            _ => {
                return Err(flag_error(
                    "--cv",
                    "sweeping the CV needs `arrivals.process: gamma` or `poisson`".into(),
                ))
            }
        };
    }
    w.cluster.gpus = point.gpus;
    if point.gpus == 0 {
        return Err(flag_error("--gpus", "expected at least 1 GPU".into()));
    }
    if let Some(m) = w.models.iter().find(|m| m.gpus() > point.gpus) {
        return Err(flag_error(
            "--gpus",
            format!(
                "{} GPUs, but model `{}` spans tp * pp = {}",
                point.gpus,
                m.name,
                m.gpus()
            ),
        ));
    }
    let hw = &mut w.cluster.hardware;
    let bytes = point.gpu_memory_gib * GIB;
    if !(bytes.is_finite() && bytes as u64 > hw.reserved_bytes) {
        return Err(flag_error(
            "--gpu-memory-gib",
            format!(
                "expected more than the profile's reserved {:.2} GiB, got {}",
                hw.reserved_bytes as f64 / GIB,
                point.gpu_memory_gib
            ),
        ));
    }
    hw.gpu_memory_bytes = bytes as u64;
    // The policy's own checks (one-GPU systems hold a model whole; resident
    // holds them all) on a one-request schedule.
    let probe = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0)]);
    Scheduler::with_policy(&w, &probe, point.policy).map_err(|e| {
        flag_error(
            "--system",
            format!(
                "{} at {}: {}",
                point.policy.system.name(),
                describe(point),
                e.message
            ),
        )
    })?;
    Ok(w)
}

/// `rate_scale=2 gpus=4 ...`: a point in words, for errors and labels.
pub fn describe(p: &Point) -> String {
    let mut s = format!(
        "rate_scale={} gpus={} gpu_memory_gib={}",
        p.rate_scale, p.gpus, p.gpu_memory_gib
    );
    if let Some(t) = p.time_scale {
        let _ = write!(s, " time_scale={t}");
    }
    if let Some(c) = p.cv {
        let _ = write!(s, " cv={c}");
    }
    let _ = write!(
        s,
        " system={} eviction={} grouping={}",
        p.policy.system.name(),
        p.policy.eviction.name(),
        p.policy.grouping.name()
    );
    s
}

/// Runs every point with each of `seeds` on rayon's current pool; `tick`
/// is called once per finished job (from any thread). Rows come back in
/// (point, seed) order whatever the number of threads. Every point is
/// checked with [`apply`] before the first job starts.
pub fn run(
    base: &Workload,
    points: &[Point],
    seeds: &[u64],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<SweepRow>, Error> {
    let all: Vec<usize> = (0..points.len() * seeds.len()).collect();
    run_jobs(base, points, seeds, &all, tick)
}

/// Like [`run`] for the jobs `jobs` only: job `j` is point `j / seeds.len()`
/// with seed `seeds[j % seeds.len()]` (the order of [`run`]'s rows); rows
/// come back in the order of `jobs` (a shard of the sweep,
/// [`crate::sweep_shard`]).
pub fn run_jobs(
    base: &Workload,
    points: &[Point],
    seeds: &[u64],
    jobs: &[usize],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<SweepRow>, Error> {
    let workloads: Vec<Workload> = points
        .iter()
        .map(|p| apply(base, p))
        .collect::<Result<_, _>>()?;
    let k = seeds.len().max(1);
    let jobs: Vec<(usize, u64)> = jobs.iter().map(|&j| (j / k, seeds[j % k])).collect();
    let opts = SimOptions {
        timeline: false,
        progress: false,
        ..SimOptions::default()
    };
    jobs.par_iter()
        .map(|&(i, seed)| {
            let mut w = workloads[i].clone();
            w.seed = seed;
            // A point whose seed draws no request is a row of 0 requests
            // (no latencies), not the end of the sweep.
            // Requests are drawn as the run reaches them (see `simulate_plan`).
            let (plan, _) = arrivals::plan_possibly_empty(&w, arrivals::DEFAULT_MAX_REQUESTS)?;
            let result = simulate_plan(&w, &plan, points[i].policy, &opts, &mut NullSink)?;
            tick();
            Ok(SweepRow {
                point: points[i],
                seed,
                result,
            })
        })
        .collect()
}

/// `sweep.csv`: one line per row, the point's variables, the seed and the
/// summary (seconds; SLO attainment as a fraction).
pub fn csv(rows: &[SweepRow]) -> String {
    let mut s = String::from(
        "rate_scale,time_scale,cv,gpus,gpu_memory_gib,system,eviction,grouping,seed,\
         requests,mean_s,p50_s,p90_s,p99_s,max_s,slo_attainment,loads,bytes_loaded,simulated_s\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    // A run of no request has no latency or SLO figure: empty cells.
    let num = |v: f64, digits: usize| {
        if v.is_finite() {
            format!("{v:.digits$}")
        } else {
            String::new()
        }
    };
    for r in rows {
        let (p, m) = (&r.point, &r.result.summary);
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.9}",
            p.rate_scale,
            opt(p.time_scale),
            opt(p.cv),
            p.gpus,
            p.gpu_memory_gib,
            p.policy.system.name(),
            p.policy.eviction.name(),
            p.policy.grouping.name(),
            r.seed,
            m.requests,
            num(m.mean_s, 9),
            num(m.p50_s, 9),
            num(m.p90_s, 9),
            num(m.p99_s, 9),
            num(m.max_s, 9),
            num(m.slo_attainment, 6),
            r.result.loads,
            r.result.bytes_loaded,
            r.result.run.simulated_s
        );
    }
    s
}

/// The value of variable `name` (one of [`VARIABLES`]) at `p`, as a number
/// when it is one.
pub fn numeric(p: &Point, name: &str) -> Option<f64> {
    match name {
        "rate_scale" => Some(p.rate_scale),
        "time_scale" => p.time_scale,
        "cv" => p.cv,
        "gpus" => Some(p.gpus as f64),
        "gpu_memory_gib" => Some(p.gpu_memory_gib),
        _ => None,
    }
}

/// The value of variable `name` at `p` in words (for series labels).
pub fn label(p: &Point, name: &str) -> String {
    match name {
        "system" => p.policy.system.name().to_string(),
        "eviction" => p.policy.eviction.name().to_string(),
        "grouping" => p.policy.grouping.name().to_string(),
        other => numeric(p, other)
            .map(|v| format!("{other}={v}"))
            .unwrap_or_default(),
    }
}
