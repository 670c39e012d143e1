//! Command line of `sim`: reads the workload and the schedule, checks that
//! every asked-for system can serve them, and only then writes anything.

use clap::builder::TypedValueParser as _;
use clap::Parser;
use std::path::{Path, PathBuf};
use switchyard_core::arrival_stream::ArrivalPlan;
use switchyard_core::latency_sketch::{LatencySketch, DEFAULT_EXACT_QUANTILES};
use switchyard_core::output_set::OutputSet;
use switchyard_core::schedule::write_requests_csv;
use switchyard_core::workload::{
    Eviction, Grouping, Loading, MultipathGrouping, PolicyName, PolicySpec, Process, System,
};
use switchyard_core::{arrivals, Error, InputError, Schedule, Workload};
use switchyard_report::{cdf_figure, CompareOptions, Run};
use switchyard_scheduler::Scheduler;
use switchyard_sim::{
    simulate_closed, simulate_plan, simulate_policy, write_comparison, write_summary,
    write_timeline, RecordSink, RecordWriter, RequestRecord, SimOptions, SimResult,
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
    /// Override `policy.system`.
    #[arg(long, value_parser = System::from_name)]
    pub system: Option<System>,
    /// Override `policy.eviction` (lru, lfu, belady). Belady needs the
    /// future: it holds the whole schedule in memory (about 24 bytes a
    /// request), where the others draw arrivals as the clock reaches them.
    #[arg(long, value_parser = Eviction::from_name)]
    pub eviction: Option<Eviction>,
    /// Override `policy.grouping` (optimal, per_layer, one_group).
    #[arg(long, value_parser = Grouping::from_name)]
    pub grouping: Option<Grouping>,
    /// Override `policy.loading` (direct, multipath).
    #[arg(long, value_parser = Loading::from_name)]
    pub loading: Option<Loading>,
    /// Override `policy.multipath_grouping` (helpers, one_link): what copy
    /// time the grouping DP plans multi-path loads with (multipath only).
    #[arg(long, value_parser = MultipathGrouping::from_name)]
    pub multipath_grouping: Option<MultipathGrouping>,
    /// Override `policy.direct_host` (on, off): the grouping DP may leave
    /// a model's first layers in pinned host memory, read in place.
    #[arg(long, value_parser = ["on", "off"])]
    pub direct_host: Option<String>,
    /// Override `policy.offload` (on, off): an eviction copies the weights
    /// back to host memory, freeing them when that copy is done.
    #[arg(long, value_parser = ["on", "off"])]
    pub offload: Option<String>,
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
    if let Some(mode) = args.loading {
        workload.loading = workload
            .loading
            .with_mode(mode, &workload.cluster)
            .map_err(|e| InputError::new(&args.workload, None, "--loading", e))?;
    }
    if let Some(g) = args.multipath_grouping {
        if !workload.loading.multipath() {
            return Err(InputError::new(
                &args.workload,
                None,
                "--multipath-grouping",
                "only meaningful with multi-path loading (`--loading multipath`)",
            )
            .into());
        }
        workload.loading.grouping = g;
    }
    if let Some(on) = &args.direct_host {
        let system = args.system.unwrap_or(workload.policy.system);
        workload.loading = workload
            .loading
            .with_direct_host(on == "on", system)
            .map_err(|e| InputError::new(&args.workload, None, "--direct-host", e))?;
    }
    if let Some(on) = &args.offload {
        let system = args.system.unwrap_or(workload.policy.system);
        let on = on == "on";
        if let Some(why) = switchyard_core::workload::offload_refusal(system).filter(|_| on) {
            return Err(InputError::new(&args.workload, None, "--offload", why).into());
        }
        workload.policy.offload = on;
    }
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
    let policy = PolicySpec {
        system: args.system.unwrap_or(workload.policy.system),
        eviction: args.eviction.unwrap_or(workload.policy.eviction),
        grouping: args.grouping.unwrap_or(workload.policy.grouping),
        max_loaded: workload.policy.max_loaded,
        offload: workload.policy.offload,
    };
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
    let counted = match &requests {
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
        eprintln!(
            "{}: {} requests over {} models, {:.1} s",
            workload.name,
            n,
            names.len(),
            span_s
        );
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
        let result = run_one(&workload, &requests, policy, &opts, &out, args.log_x)?;
        set.commit()?;
        report(&result, &args.out);
        return Ok(());
    }
    let mut results = Vec::new();
    let mut runs = Vec::new();
    for p in systems {
        let dir = out.join(p.system.name());
        let result = run_one(&workload, &requests, p, &opts, &dir, args.log_x)?;
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

/// Simulates one policy into `dir`: requests.csv, summary.json,
/// timeline.json and latency_cdf.svg/png.
fn run_one(
    workload: &Workload,
    requests: &Requests,
    policy: PolicySpec,
    opts: &SimOptions,
    dir: &Path,
    log_x: bool,
) -> Result<SimResult, Error> {
    let n = match requests {
        Requests::Held(schedule) => schedule.requests.len() as u64,
        Requests::Planned(plan) => plan.len(),
        Requests::Closed => 0,
    };
    let mut sink = LatencyTee {
        file: RecordWriter::create(&dir.join("requests.csv"))?,
        latencies_s: Vec::with_capacity(n.min(opts.exact_quantiles) as usize),
        sketch: None,
        exact_up_to: opts.exact_quantiles,
    };
    let result = match requests {
        Requests::Held(schedule) => simulate_policy(workload, schedule, policy, opts, &mut sink)?,
        Requests::Planned(plan) => simulate_plan(workload, plan, policy, opts, &mut sink)?,
        Requests::Closed => {
            let schedule = dir.join("schedule.csv");
            let (result, n, span_s) =
                simulate_closed(workload, policy, opts, &mut sink, Some(&schedule))?;
            eprintln!(
                "{}: {n} requests over {} models, {span_s:.1} s (closed loop)",
                workload.name,
                workload.models.len()
            );
            result
        }
    };
    let LatencyTee {
        file,
        mut latencies_s,
        sketch,
        ..
    } = sink;
    file.finish()?;
    if let Some(sketch) = sketch {
        latencies_s = sketch.sample(CDF_SAMPLE_POINTS);
    }
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

/// Latencies the CDF figure is drawn from once a run passes
/// `--exact-quantiles` (evenly spaced quantiles of the sketch).
const CDF_SAMPLE_POINTS: usize = 10_000;

/// Streams records to `requests.csv` and keeps each latency for the CDF
/// (8 bytes a request) up to `exact_up_to` requests, then a sketch.
struct LatencyTee {
    file: RecordWriter,
    latencies_s: Vec<f64>,
    sketch: Option<LatencySketch>,
    exact_up_to: u64,
}

impl RecordSink for LatencyTee {
    fn record(&mut self, r: &RequestRecord) -> Result<(), Error> {
        if let Some(s) = &mut self.sketch {
            s.add(r.latency_s);
        } else if self.latencies_s.len() as u64 >= self.exact_up_to {
            let mut s = LatencySketch::new();
            self.latencies_s.iter().for_each(|&x| s.add(x));
            s.add(r.latency_s);
            self.latencies_s = Vec::new();
            self.sketch = Some(s);
        } else {
            self.latencies_s.push(r.latency_s);
        }
        self.file.record(r)
    }
}
