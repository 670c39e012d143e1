//! `plot`: latency CDF figures and sim-vs-real comparison tables.
//!
//! ```text
//! plot compare A B [C ...] --out DIR [--log-x] [--labels a,b,c] [--join]
//!              [--slo-ms MS] [--title T] [--arrival-tol-ms MS]
//! plot cdf RUN [RUN ...] --out DIR [--log-x] [--labels a,b] [--title T]
//! ```
//!
//! Each run is a `requests.csv` or a folder holding one. `compare` writes
//! `cdf.svg/.png`, `per_model.svg/.png`, `table.md` and `table.csv`; errors
//! are against the first run. Per-request errors join runs by request id;
//! when a run's schedule differs from the first run's, that error is left
//! out with a note, or with `--join` the command fails (exit 2) naming both
//! files and the first differing id. SLO attainment comes from `--slo-ms`
//! (one SLO for every request) or else from the `slo_attainment` number of
//! a `summary.json` beside the CSV; otherwise it is shown as `n/a`.

use clap::{Args, Parser, Subcommand};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use switchyard_core::output_set::OutputSet;
use switchyard_core::{Error, InputError, Result};
use switchyard_report::join::DEFAULT_ARRIVAL_TOL_S;
use switchyard_report::{write_cdf, write_comparison, CompareOptions, Run};

#[derive(Parser)]
#[command(
    name = "plot",
    about = "Latency CDF figures and sim-vs-real comparison tables"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compare runs against the first: CDF, per-model CDFs, table.md, table.csv.
    Compare {
        /// Runs: requests.csv files or folders holding one (at least two).
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// Fail (exit 2) when a run's request ids or arrival times differ from the first run's.
        #[arg(long)]
        join: bool,
        /// One latency SLO in milliseconds for every request (else summary.json's slo_attainment).
        #[arg(long, value_name = "MS")]
        slo_ms: Option<f64>,
        /// Arrival-time tolerance when matching schedules, milliseconds.
        #[arg(long, value_name = "MS", default_value_t = DEFAULT_ARRIVAL_TOL_S * 1e3)]
        arrival_tol_ms: f64,
    },
    /// Draw the latency CDF of one or more runs: cdf.svg and cdf.png.
    Cdf {
        /// Runs: requests.csv files or folders holding one.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Logarithmic latency axis.
    #[arg(long)]
    log_x: bool,
    /// Comma-separated labels, one per run (default: folder or file names).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Figure title.
    #[arg(long, default_value = "Latency CDF")]
    title: String,
}

fn flag_error(field: &str, message: String) -> Error {
    Error::Input(InputError::new("<flags>", None, field, message))
}

/// Loads the runs and applies `--labels`, or makes default labels unique.
fn load(paths: &[PathBuf], labels: Option<Vec<String>>) -> Result<Vec<Run>> {
    let mut runs = paths
        .iter()
        .map(|p| Run::load(p))
        .collect::<Result<Vec<_>>>()?;
    match labels {
        Some(labels) if labels.len() != runs.len() => {
            return Err(flag_error(
                "--labels",
                format!("{} labels for {} runs", labels.len(), runs.len()),
            ))
        }
        Some(labels) => {
            for (run, label) in runs.iter_mut().zip(labels) {
                run.label = label;
            }
        }
        None => {
            let distinct: HashSet<&str> = runs.iter().map(|r| r.label.as_str()).collect();
            if distinct.len() != runs.len() {
                for (run, path) in runs.iter_mut().zip(paths) {
                    run.label = path.display().to_string();
                }
            }
        }
    }
    Ok(runs)
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Compare {
            runs,
            common,
            join,
            slo_ms,
            arrival_tol_ms,
        } => {
            if !(arrival_tol_ms.is_finite() && arrival_tol_ms >= 0.0) {
                let msg = format!("expected a number >= 0, found {arrival_tol_ms}");
                return Err(flag_error("--arrival-tol-ms", msg));
            }
            let runs = load(&runs, common.labels)?;
            let opts = CompareOptions {
                slo_s: slo_ms.map(|ms| ms / 1e3),
                require_join: join,
                arrival_tol_s: arrival_tol_ms / 1e3,
            };
            let set = OutputSet::begin(&common.out)?;
            let cmp = write_comparison(&runs, set.path(), &common.title, common.log_x, &opts)?;
            set.commit()?;
            for note in &cmp.notes {
                eprintln!("note: {note}");
            }
            print!("{}", cmp.to_markdown());
            Ok(())
        }
        Cmd::Cdf { runs, common } => {
            let runs = load(&runs, common.labels)?;
            let set = OutputSet::begin(&common.out)?;
            write_cdf(&runs, set.path(), &common.title, common.log_x)?;
            set.commit()
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plot: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
