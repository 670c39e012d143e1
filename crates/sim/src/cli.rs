//! Command line of `sim`: reads the workload and the schedule, checks that
//! every asked-for system can serve them, and only then writes anything.

use clap::builder::TypedValueParser as _;
use clap::Parser;
use std::path::{Path, PathBuf};
use switchyard_core::arrival_stream::ArrivalPlan;
use switchyard_core::latency_sketch::DEFAULT_EXACT_QUANTILES;
use switchyard_core::output_set::OutputSet;
use switchyard_core::overrides::PolicyOverrides;
use switchyard_core::schedule::write_requests_csv;
use switchyard_core::workload::{PolicySpec, Process, System};
use switchyard_core::{arrivals, Error, Schedule, Workload};
use switchyard_report::{cdf_figure, CompareOptions, Run};
use switchyard_scheduler::Scheduler;
use switchyard_sim::{
    simulate_closed, simulate_plan, simulate_plan_logged, simulate_policy, write_comparison,
    write_summary, write_timeline, NullSink, RecordSink, RecordWriter, SimOptions, SimResult,
};

/// Simulate a multi-model GPU serving system on a workload.
///
/// Writes into --out: schedule.csv, requests.csv, summary.json,
/// timeline.json (Chrome trace, opens in Perfetto) and latency_cdf.svg/png.
/// With --compare-systems, one such folder per system plus compare.json,
/// cdf.svg/png, per_model.svg/png and table.md/csv of all systems.
/// `sim sweep --help`: a grid of variables and seeds, in parallel (one
/// slice of it with --shard I/N; `sim sweep-merge --help` joins slices).
///
/// Memory: requests are drawn as the simulation reaches them and
/// schedule.csv is written as it is drawn, so a run holds only the requests
/// in flight, except with `--eviction belady` (it needs the future: the
/// whole schedule is held, about 24 bytes a request) or `--schedule FILE`
/// (read whole). Latencies are kept exactly up to --exact-quantiles
/// requests, then in sketches.
///
/// Closed-loop arrivals (`process: closed_loop`): each client's next
/// request arrives when the simulation finishes its previous one (plus the
/// think time), and schedule.csv holds the arrivals as the run produced
/// them. `sim --schedule` of such a file serves those times as fixed
/// (open-loop) arrivals, no longer tied to completions; `replay` of a
/// closed-loop workload runs the loop itself on its own completions.
/// --schedule-only, --compare-systems, sweeps and Belady's eviction need
/// the arrivals ahead of the run and refuse a closed loop.
#[derive(Debug, Parser)]
#[command(name = "sim", version, about, long_about)]
pub struct Args {
    /// Workload YAML file (cluster, models, arrivals, policy).
    #[arg(long, short = 'w')]
    pub workload: PathBuf,
    /// Serve this schedule CSV (`id,arrival_s,model`) instead of generating one.
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Output folder.
    #[arg(long, short = 'o', default_value = "out")]
    pub out: PathBuf,
    /// Override the workload's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override `cluster.hardware`: a preset name or a profile YAML (e.g. one
    /// written by `replay calibrate`).
    #[arg(long)]
    pub hardware: Option<String>,
    /// Policy overrides (`--system`, `--eviction`, `--grouping`,
    /// `--loading`, `--multipath-grouping`, `--direct-host`, `--offload`),
    /// the same as `replay`'s.
    #[command(flatten)]
    pub policy: PolicyOverrides,
    /// Run every system on the same schedule (skipping `resident` when the
    /// models do not all fit) and draw their CDFs in one figure.
    #[arg(long, conflicts_with = "system")]
    pub compare_systems: bool,
    /// Latency axis of the CDF figures in log scale.
    #[arg(long)]
    pub log_x: bool,
    /// Do not write timeline.json.
    #[arg(long)]
    pub no_timeline: bool,
    /// Do not write requests.csv (a line per request: 66 bytes each, 6.6 GB
    /// at 1e8 requests); summary.json, schedule.csv and the CDF figure are
    /// written as usual. Not with `--compare-systems`, which reads it.
    #[arg(long, conflicts_with = "compare_systems")]
    pub no_requests_csv: bool,
    /// timeline.json: leave out spans that end before this virtual time (seconds).
    #[arg(long, value_name = "SECONDS", value_parser = seconds, default_value_t = 0.0)]
    pub timeline_from: f64,
    /// timeline.json: leave out spans that start after this virtual time (seconds).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub timeline_to: Option<f64>,
    /// timeline.json: keep at most this many spans (in issue order); when
    /// the cap leaves spans out, stderr and summary.json's `timeline_cut`
    /// say how many and up to which time the timeline is complete.
    #[arg(long, value_name = "N", default_value_t = switchyard_sim::DEFAULT_TIMELINE_SPANS,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub timeline_max_spans: usize,
    /// Only write DIR/schedule.csv; simulate nothing.
    #[arg(long)]
    pub schedule_only: bool,
    /// Most requests the generated schedule may hold; a workload expecting
    /// more is refused before it runs.
    #[arg(long, default_value_t = arrivals::DEFAULT_MAX_REQUESTS)]
    pub max_requests: u64,
    /// Keep latencies exactly (8 bytes a request) up to this many requests
    /// for exact percentiles; past it, percentiles and the CDF figure come
    /// from a DDSketch per model within 0.5% relative error, and
    /// summary.json's `quantiles_sketched` says so.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_EXACT_QUANTILES)]
    pub exact_quantiles: u64,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Flags raising the caps on a workload's size (`core::workload::Limits`).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Most models (copies and trace names expanded) a workload may serve;
    /// a larger one is refused while it is parsed.
    #[arg(long, default_value_t = switchyard_core::workload::DEFAULT_MAX_MODELS)]
    pub max_models: u64,
    /// Most GPUs a cluster may have.
    #[arg(long, default_value_t = switchyard_core::workload::DEFAULT_MAX_GPUS)]
    pub max_gpus: u64,
}

impl LimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> switchyard_core::workload::Limits {
        switchyard_core::workload::Limits {
            max_models: self.max_models,
            max_gpus: self.max_gpus,
        }
    }
}

/// Runs `sim` and returns the process exit code.
pub fn run() -> i32 {
    if std::env::args_os().nth(1).is_some_and(|a| a == "sweep") {
        return crate::sweep_cli::run();
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "sweep-merge")
    {
        return crate::sweep_cli::run_merge();
    }
    let args = Args::parse();
    if args.timeline_to.is_some_and(|to| to <= args.timeline_from) {
        use clap::CommandFactory;
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                "--timeline-to must be later than --timeline-from",
            )
            .exit();
    }
    match execute(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn execute(args: &Args) -> Result<(), Error> {
    let mut workload = Workload::load_with(
        &args.workload,
        args.hardware.as_deref(),
        &args.limits.limits(),
    )?;
    if let Some(seed) = args.seed {
        workload.seed = seed;
    }
    args.policy.apply(&mut workload, &args.workload)?;
    let names = workload.model_names();
    let closed = matches!(workload.arrivals.process, Process::ClosedLoop(_));
    let requests = match &args.schedule {
        Some(path) => Requests::Held(Schedule::read_csv(path, &names)?),
        // A closed loop's arrivals come from the run's own completions.
        None if closed => {
            if args.schedule_only || args.compare_systems {
                return Err(arrivals::closed_loop_not_drawn(&workload));
            }
            Requests::Closed
        }
        None => {
            let (plan, notes) = arrivals::plan(&workload, args.max_requests)?;
            for note in notes {
                eprintln!("note: {note}");
            }
            Requests::Planned(plan)
        }
    };
    let policy = workload.policy;
    if matches!(requests, Requests::Closed) && Scheduler::needs_future(policy) {
        return Err(arrivals::closed_loop_not_drawn(&workload));
    }
    // Every check that can fail on the input runs before the first write
    // (none of them reads the requests).
    let no_requests = Schedule {
        models: names.clone(),
        requests: Vec::new(),
    };
    let systems = if args.schedule_only {
        Vec::new()
    } else if args.compare_systems {
        servable_systems(&workload, &no_requests, policy)?
    } else {
        Scheduler::with_policy(&workload, &no_requests, policy)?;
        vec![policy]
    };

    // Every output goes into a fresh folder swapped in at the end, so the
    // folder holds one run's files, all new or all old.
    let set = OutputSet::begin(&args.out)?;
    let out = set.path().to_path_buf();
    // A single run of generated requests writes schedule.csv as it draws
    // them (once); otherwise the schedule is written first.
    let drawn_once =
        matches!(requests, Requests::Planned(_)) && !args.schedule_only && !args.compare_systems;
    let counted = match &requests {
        _ if drawn_once => None,
        Requests::Held(schedule) => {
            schedule.write_csv(&out.join("schedule.csv"))?;
            Some((schedule.requests.len() as u64, schedule.span_s()))
        }
        Requests::Planned(plan) => Some(write_requests_csv(
            &out.join("schedule.csv"),
            &names,
            plan.stream(),
        )?),
        // Written by the run, as the arrivals are produced.
        Requests::Closed => None,
    };
    if let Some((n, span_s)) = counted {
        say_requests(&workload, names.len(), n, span_s);
    }
    if args.schedule_only {
        return set.commit();
    }
    let opts = SimOptions {
        timeline: !args.no_timeline,
        timeline_from_s: args.timeline_from,
        timeline_to_s: args.timeline_to.unwrap_or(f64::INFINITY),
        timeline_max_events: args.timeline_max_spans,
        exact_quantiles: args.exact_quantiles,
        ..SimOptions::default()
    };
    if !args.compare_systems {
        let outputs = RunOutputs {
            log_x: args.log_x,
            log_schedule: drawn_once,
            requests_csv: !args.no_requests_csv,
        };
        let result = run_one(&workload, &requests, policy, &opts, &out, outputs)?;
        if args.no_requests_csv {
            eprintln!("note: requests.csv not written (--no-requests-csv)");
        }
        set.commit()?;
        report(&result, &args.out);
        return Ok(());
    }
    let mut results = Vec::new();
    let mut runs = Vec::new();
    for p in systems {
        let dir = out.join(p.system.name());
        let outputs = RunOutputs {
            log_x: args.log_x,
            log_schedule: false,
            requests_csv: true,
        };
        let result = run_one(&workload, &requests, p, &opts, &dir, outputs)?;
        report(&result, &args.out.join(p.system.name()));
        let mut run = Run::load(&dir.join("requests.csv"))?;
        run.label = p.system.name().to_string();
        // Named where it will be, not in the staging folder (table.csv's
        // `source`: the same bytes on every run).
        run.source = args.out.join(p.system.name()).join("requests.csv");
        results.push(result);
        runs.push(run);
    }
    write_comparison(&out.join("compare.json"), &results)?;
    let title = format!("{}: every system on one schedule", workload.name);
    let table = switchyard_report::write_comparison(
        &runs,
        &out,
        &title,
        args.log_x,
        &CompareOptions::default(),
    )?;
    set.commit()?;
    println!("{}", table.to_markdown());
    Ok(())
}

/// The systems `--compare-systems` runs: all of them, in [`System::ALL`]
/// order, less `resident` when the models do not all fit and `streaming`
/// when `policy.preload` asks for models in memory (said on stderr).
/// Any other refusal is an input error.
fn servable_systems(
    workload: &Workload,
    schedule: &Schedule,
    policy: PolicySpec,
) -> Result<Vec<PolicySpec>, Error> {
    let mut out = Vec::new();
    for system in System::ALL {
        let p = PolicySpec { system, ..policy };
        match Scheduler::with_policy(workload, schedule, p) {
            Ok(_) => out.push(p),
            Err(e) if system == System::Resident => eprintln!("skipping resident: {e}"),
            // Streaming caches nothing, so no model can start in memory.
            Err(e) if system == System::Streaming && e.field == "policy.preload" => {
                eprintln!("skipping streaming: {e}")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The requests a run serves: a schedule file read whole, or generated
/// ones drawn as the simulation reaches them.
enum Requests {
    Held(Schedule),
    Planned(ArrivalPlan),
    /// Closed-loop arrivals, drawn from the run's completions.
    Closed,
}

/// One line on stderr: how many requests over how many models, over what span.
fn say_requests(workload: &Workload, models: usize, n: u64, span_s: f64) {
    eprintln!(
        "{}: {} requests over {} models, {:.1} s",
        workload.name, n, models, span_s
    );
}

/// Which of its files [`run_one`] writes, and how.
#[derive(Debug, Clone, Copy)]
struct RunOutputs {
    /// The CDF figure's latency axis in log scale.
    log_x: bool,
    /// Generated requests go to schedule.csv as the run draws them.
    log_schedule: bool,
    /// requests.csv is written (`--no-requests-csv` turns it off).
    requests_csv: bool,
}

/// Simulates one policy into `dir`: requests.csv (unless
/// `outputs.requests_csv` is off), summary.json, timeline.json and
/// latency_cdf.svg/png; with `outputs.log_schedule`, generated requests
/// also go to schedule.csv as the run draws them.
fn run_one(
    workload: &Workload,
    requests: &Requests,
    policy: PolicySpec,
    opts: &SimOptions,
    dir: &Path,
    outputs: RunOutputs,
) -> Result<SimResult, Error> {
    let RunOutputs {
        log_x,
        log_schedule,
        requests_csv,
    } = outputs;
    let mut writer = match requests_csv {
        true => Some(RecordWriter::create(&dir.join("requests.csv"))?),
        false => None,
    };
    let mut discard = NullSink;
    let file: &mut dyn RecordSink = match writer.as_mut() {
        Some(w) => w,
        None => &mut discard,
    };
    let opts = &SimOptions {
        keep_latencies: true,
        ..opts.clone()
    };
    let mut result = match requests {
        Requests::Held(schedule) => simulate_policy(workload, schedule, policy, opts, file)?,
        Requests::Planned(plan) if log_schedule => {
            let schedule = dir.join("schedule.csv");
            let (result, n, span_s) =
                simulate_plan_logged(workload, plan, policy, opts, file, Some(&schedule))?;
            say_requests(workload, workload.models.len(), n, span_s);
            result
        }
        Requests::Planned(plan) => simulate_plan(workload, plan, policy, opts, file)?,
        Requests::Closed => {
            let schedule = dir.join("schedule.csv");
            let (result, n, span_s) =
                simulate_closed(workload, policy, opts, file, Some(&schedule))?;
            eprintln!(
                "{}: {n} requests over {} models, {span_s:.1} s (closed loop)",
                workload.name,
                workload.models.len()
            );
            result
        }
    };
    if let Some(w) = writer {
        w.finish()?;
    }
    let latencies_s = std::mem::take(&mut result.run.latencies_s);
    write_summary(&dir.join("summary.json"), &result)?;
    if opts.timeline {
        write_timeline(&dir.join("timeline.json"), &result.run.timeline)?;
        if let Some(cut) = &result.run.timeline_cut {
            eprintln!(
                "note: {}: timeline.json holds the first {} spans, complete up to t = {:.3} s of {:.3} s; \
                 {} more left out (narrow it with --timeline-from/--timeline-to or raise --timeline-max-spans)",
                policy.system.name(),
                cut.kept_spans,
                cut.complete_until_s,
                result.run.simulated_s,
                cut.dropped_spans
            );
        }
    }
    let label = policy.system.name();
    cdf_figure(
        &[(label, latencies_s)],
        &format!("{}: {label}", workload.name),
        log_x,
        &dir.join("latency_cdf.svg"),
        &dir.join("latency_cdf.png"),
    )?;
    Ok(result)
}

/// A time in seconds on the command line: finite and not negative.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a time in seconds (a finite number >= 0)"
        )),
    }
}

/// One line per run on stderr: where it went and its headline numbers.
fn report(r: &SimResult, dir: &Path) {
    eprintln!(
        "{} ({}): p50 {:.1} ms, p99 {:.1} ms, SLO {:.1}%, {} loads -> {}",
        r.system,
        r.eviction,
        r.summary.p50_s * 1e3,
        r.summary.p99_s * 1e3,
        r.summary.slo_attainment * 100.0,
        r.loads,
        dir.display()
    );
}
