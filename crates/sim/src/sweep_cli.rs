//! `sim sweep`: one workload over a grid of variables and seeds, in
//! parallel; writes `sweep.csv` and `sweep.svg`/`.png` (SLO attainment,
//! p50 and p99 against the swept variable, one line per system, a band
//! over seeds). With `--shard I/N`, one slice of the grid into
//! `shard-I-of-N.json`; `sim sweep-merge` joins the slices into the same
//! outputs as an unsharded run ([`switchyard_sim::sweep_shard`]).

use clap::Parser;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use switchyard_core::output::{check_writable, write_atomic};
use switchyard_core::workload::{Eviction, Grouping, PolicyName, System};
use switchyard_core::{Error, InputError, Workload};
use switchyard_report::{sweep_figure, SweepPanel, SweepSeries};
use switchyard_sim::sweep::{self, Grid, SweepRow, VARIABLES};
use switchyard_sim::sweep_shard::{self, Shard, SweepHeader};

/// Simulate a workload over a grid of variables, several seeds per point.
///
/// Each list flag is comma-separated; a variable not given keeps the
/// workload's value. Every point and seed is one simulation; they run in
/// parallel on all cores (--jobs to limit) and the output is the same
/// bytes whatever the core count. Writes into --out: sweep.csv (one row
/// per point and seed), sweep.md (means over seeds per point) and
/// sweep.svg/png. With --shard I/N, only every Nth job from job I, into
/// shard-I-of-N.json; `sim sweep-merge -o DIR SHARDS...` then writes the
/// outputs, the same bytes as an unsharded run.
#[derive(Debug, Parser)]
#[command(name = "sim sweep", version, long_about)]
pub struct SweepArgs {
    /// Workload YAML file.
    #[arg(long, short = 'w')]
    pub workload: PathBuf,
    /// Output folder.
    #[arg(long, short = 'o', default_value = "out/sweep")]
    pub out: PathBuf,
    /// Override `cluster.hardware` (a preset or a profile YAML).
    #[arg(long)]
    pub hardware: Option<String>,
    /// Factors on the arrival rate (a trace: times divided, same requests faster).
    #[arg(long, value_delimiter = ',')]
    pub rate_scale: Vec<f64>,
    /// A trace's `time_scale` values (instead of --rate-scale).
    #[arg(long, value_delimiter = ',')]
    pub time_scale: Vec<f64>,
    /// Gamma CVs (a Poisson workload becomes Gamma at the same rate).
    #[arg(long, value_delimiter = ',')]
    pub cv: Vec<f64>,
    /// GPU counts.
    #[arg(long, value_delimiter = ',')]
    pub gpus: Vec<u32>,
    /// GiB of memory per GPU.
    #[arg(long, value_delimiter = ',')]
    pub gpu_memory_gib: Vec<f64>,
    /// Systems (computron, pipeswitch, stop-and-start, resident, streaming).
    #[arg(long, value_delimiter = ',', value_parser = System::from_name)]
    pub system: Vec<System>,
    /// Eviction policies (lru, lfu, belady).
    #[arg(long, value_delimiter = ',', value_parser = Eviction::from_name)]
    pub eviction: Vec<Eviction>,
    /// Layer groupings (optimal, per_layer, one_group).
    #[arg(long, value_delimiter = ',', value_parser = Grouping::from_name)]
    pub grouping: Vec<Grouping>,
    /// Seeds per point: the workload's seed (or --seed) plus 0, 1, ..
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// First seed (default: the workload's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Variable on the figures' x axis (default: the first numeric one
    /// swept over several values, in the order rate_scale, time_scale, cv,
    /// gpus, gpu_memory_gib).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(VARIABLES))]
    pub x: Option<String>,
    /// Log scale for the x axis.
    #[arg(long)]
    pub log_x: bool,
    /// Threads (default: every core). The output does not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub limits: crate::cli::LimitArgs,
    /// Run one slice of the grid: `I/N` (0 <= I < N) runs jobs I, I + N,
    /// I + 2N, .. of the (point, seed) jobs in grid order and writes their
    /// rows to --out/shard-I-of-N.json for `sim sweep-merge`.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
}

/// Join the slices of a sharded sweep (`sim sweep --shard I/N`) into
/// sweep.csv, sweep.md and sweep.svg/png, the same bytes as the sweep run
/// unsharded. Every slice must be given once; slices of another sweep are
/// refused.
#[derive(Debug, Parser)]
#[command(name = "sim sweep-merge", version, long_about)]
pub struct MergeArgs {
    /// Shard files (shard-I-of-N.json), or folders holding them.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Output folder.
    #[arg(long, short = 'o', default_value = "out/sweep")]
    pub out: PathBuf,
}

/// Runs `sim sweep` (arguments after `sweep`) and returns the exit code.
pub fn run() -> i32 {
    let args = SweepArgs::parse_from(std::env::args_os().skip(1));
    exit_code(execute(&args))
}

/// Runs `sim sweep-merge` (arguments after `sweep-merge`) and returns the exit code.
pub fn run_merge() -> i32 {
    let args = MergeArgs::parse_from(std::env::args_os().skip(1));
    exit_code(merge(&args))
}

fn exit_code(r: Result<(), Error>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn merge(args: &MergeArgs) -> Result<(), Error> {
    let mut files = Vec::new();
    for p in sweep_shard::shard_paths(&args.shards)? {
        let f = sweep_shard::read(&p)?;
        files.push((p, f));
    }
    let (header, rows) = sweep_shard::merge(&files)?;
    check_writable(&args.out)?;
    eprintln!(
        "{}: {} shards, {} rows",
        header.workload,
        files.len(),
        rows.len()
    );
    write_outputs(&args.out, &header, &rows)
}

fn execute(args: &SweepArgs) -> Result<(), Error> {
    let limits = args.limits.limits();
    let mut base = Workload::load_with(&args.workload, args.hardware.as_deref(), &limits)?;
    if let Some(s) = args.seed {
        base.seed = s;
    }
    if args.seeds == 0 {
        return Err(InputError::new("<flags>", None, "--seeds", "expected at least 1").into());
    }
    let grid = Grid {
        rate_scale: args.rate_scale.clone(),
        time_scale: args.time_scale.clone(),
        cv: args.cv.clone(),
        gpus: args.gpus.clone(),
        gpu_memory_gib: args.gpu_memory_gib.clone(),
        system: args.system.clone(),
        eviction: args.eviction.clone(),
        grouping: args.grouping.clone(),
    };
    let points = sweep::points(&base, &grid)?;
    // Every point is checked before anything is written.
    for p in &points {
        if u64::from(p.gpus) > limits.max_gpus {
            return Err(InputError::new(
                "<flags>",
                None,
                "--gpus",
                format!(
                    "expected at most {} GPUs, got {} (--max-gpus raises the limit)",
                    limits.max_gpus, p.gpus
                ),
            )
            .into());
        }
        sweep::apply(&base, p)?;
    }
    check_writable(&args.out)?;
    let seeds: Vec<u64> = (0..args.seeds).map(|k| base.seed.wrapping_add(k)).collect();
    let jobs = points.len() * seeds.len();
    eprintln!(
        "{}: {} points x {} seeds = {jobs} runs",
        base.name,
        points.len(),
        seeds.len()
    );
    let header = SweepHeader {
        workload: base.name.clone(),
        seeds: seeds.clone(),
        points: points.iter().map(sweep::describe).collect(),
        x: args.x.clone(),
        log_x: args.log_x,
    };
    let todo: Vec<usize> = match args.shard {
        Some(s) => s.jobs(jobs),
        None => (0..jobs).collect(),
    };
    if let Some(s) = args.shard {
        eprintln!("shard {}/{}: {} of the runs", s.index, s.count, todo.len());
    }
    let bar = progress_bar(todo.len() as u64);
    let tick = || bar.inc(1);
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.jobs {
        builder = builder.num_threads(n.max(1));
    }
    let pool = builder
        .build()
        .map_err(|e| Error::io(&args.out, std::io::Error::other(e.to_string())))?;
    let rows = pool.install(|| sweep::run_jobs(&base, &points, &seeds, &todo, &tick))?;
    bar.finish_and_clear();
    if let Some(s) = args.shard {
        let path = args.out.join(s.file_name());
        sweep_shard::write(&path, &header, s, &todo, &rows)?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    write_outputs(&args.out, &header, &rows)
}

/// sweep.csv, sweep.md and sweep.svg/png of `rows` (every job, grid order).
fn write_outputs(out: &Path, header: &SweepHeader, rows: &[SweepRow]) -> Result<(), Error> {
    let seeds = header.seeds.len();
    let empty: Vec<&SweepRow> = rows
        .iter()
        .filter(|r| r.result.summary.requests == 0)
        .collect();
    if let Some(first) = empty.first() {
        eprintln!(
            "note: {} of {} runs drew no request (first: {} seed {}): their rows hold 0 requests and no latency, and are left out of sweep.md's means and the figures",
            empty.len(),
            rows.len(),
            sweep::describe(&first.point),
            first.seed
        );
    }
    write_atomic(&out.join("sweep.csv"), sweep::csv(rows).as_bytes())?;
    write_atomic(&out.join("sweep.md"), table(rows, seeds).as_bytes())?;
    let x = header.x.clone().unwrap_or_else(|| default_x(rows));
    let panels = panels(rows, &x);
    let title = format!(
        "{}: sweep of {x} ({seeds} seeds per point)",
        header.workload
    );
    sweep_figure(
        &title,
        &x,
        header.log_x,
        &panels,
        &out.join("sweep.svg"),
        &out.join("sweep.png"),
    )?;
    eprintln!("wrote {}", out.join("sweep.csv").display());
    Ok(())
}

/// `sweep.md`: per point, the mean over seeds of SLO attainment, p50 and
/// p99 (and SLO attainment's range), one row per point in grid order.
fn table(rows: &[SweepRow], seeds: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "| point | seeds | SLO attainment (mean) | SLO min..max | p50 ms (mean) | p99 ms (mean) |\n|---|--:|--:|--:|--:|--:|\n",
    );
    for all in rows.chunks(seeds.max(1)) {
        // Seeds that drew no request have no latency: left out of the means.
        let chunk: Vec<&SweepRow> = all
            .iter()
            .filter(|r| r.result.summary.requests > 0)
            .collect();
        if chunk.is_empty() {
            let _ = writeln!(
                s,
                "| {} | {} | no request | | | |",
                sweep::describe(&all[0].point),
                all.len()
            );
            continue;
        }
        let n = chunk.len() as f64;
        let mean = |f: &dyn Fn(&SweepRow) -> f64| chunk.iter().map(|r| f(r)).sum::<f64>() / n;
        let slo: Vec<f64> = chunk
            .iter()
            .map(|r| r.result.summary.slo_attainment * 100.0)
            .collect();
        let (lo, hi) = slo
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let _ = writeln!(
            s,
            "| {} | {} | {:.2}% | {lo:.2}..{hi:.2}% | {:.1} | {:.1} |",
            sweep::describe(&all[0].point),
            if chunk.len() == all.len() {
                chunk.len().to_string()
            } else {
                format!("{} of {} (others: no request)", chunk.len(), all.len())
            },
            slo.iter().sum::<f64>() / n,
            mean(&|r| r.result.summary.p50_s * 1e3),
            mean(&|r| r.result.summary.p99_s * 1e3),
        );
    }
    s
}

fn progress_bar(n: u64) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(Some(n), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "sweep {pos}/{len} runs [{bar:30}] {elapsed} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Distinct labels of variable `v` over the rows.
fn distinct(rows: &[SweepRow], v: &str) -> usize {
    let mut seen: Vec<String> = rows.iter().map(|r| sweep::label(&r.point, v)).collect();
    seen.sort();
    seen.dedup();
    seen.len()
}

fn default_x(rows: &[SweepRow]) -> String {
    ["rate_scale", "time_scale", "cv", "gpus", "gpu_memory_gib"]
        .into_iter()
        .find(|v| distinct(rows, v) > 1)
        .unwrap_or("rate_scale")
        .to_string()
}

fn tied(a: &str, b: &str) -> bool {
    a == "rate_scale" && b == "time_scale"
}

/// A panel's name, whether its y axis is logarithmic, and its value of a row.
type Metric = (&'static str, bool, fn(&SweepRow) -> f64);

/// SLO attainment, p50 and p99 against `x`: one series per combination of
/// the other variables that take several values (the system always named).
fn panels(rows: &[SweepRow], x: &str) -> Vec<SweepPanel> {
    let varying: Vec<&str> = VARIABLES
        .iter()
        .copied()
        // Rate and time scale move together (one is the other's inverse).
        .filter(|v| !(tied(v, x) || tied(x, v)))
        .filter(|v| *v != x && (*v == "system" || distinct(rows, v) > 1))
        .collect();
    let metrics: [Metric; 3] = [
        ("SLO attainment (%)", false, |r| {
            r.result.summary.slo_attainment * 100.0
        }),
        ("p50 latency (ms)", true, |r| r.result.summary.p50_s * 1e3),
        ("p99 latency (ms)", true, |r| r.result.summary.p99_s * 1e3),
    ];
    // Series in first-appearance order; points by x (a BTreeMap on the bits
    // of a non-negative float keeps numeric order).
    let mut order: Vec<String> = Vec::new();
    let mut by_series: BTreeMap<String, BTreeMap<u64, Vec<&SweepRow>>> = BTreeMap::new();
    for r in rows {
        let label: Vec<String> = varying.iter().map(|v| sweep::label(&r.point, v)).collect();
        let label = label.join(" ");
        if !by_series.contains_key(&label) {
            order.push(label.clone());
        }
        let xv = sweep::numeric(&r.point, x).unwrap_or(0.0);
        by_series
            .entry(label)
            .or_default()
            .entry(xv.to_bits())
            .or_default()
            .push(r);
    }
    metrics
        .iter()
        .map(|(name, log_y, f)| SweepPanel {
            y_label: name.to_string(),
            log_y: *log_y,
            series: order
                .iter()
                .map(|label| SweepSeries {
                    label: label.clone(),
                    // Runs of no request have no figure to draw.
                    points: by_series[label]
                        .iter()
                        .map(|(xb, rs)| {
                            let ys: Vec<f64> =
                                rs.iter().map(|r| f(r)).filter(|y| y.is_finite()).collect();
                            (f64::from_bits(*xb), ys)
                        })
                        .filter(|(_, ys)| !ys.is_empty())
                        .collect(),
                })
                .collect(),
        })
        .collect()
}
