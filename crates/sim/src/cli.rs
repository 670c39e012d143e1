//! Command line of `sim`.

use clap::Parser;
use std::path::PathBuf;
use switchyard_core::{arrivals, Error, Schedule, Workload};

/// Simulate a multi-model GPU serving system on a workload.
#[derive(Debug, Parser)]
#[command(name = "sim", version, about)]
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
    /// Only write DIR/schedule.csv; simulate nothing.
    #[arg(long)]
    pub schedule_only: bool,
}

/// Runs `sim` and returns the process exit code.
pub fn run() -> i32 {
    let args = Args::parse();
    match execute(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn execute(args: &Args) -> Result<(), Error> {
    let mut workload = Workload::load_with_hardware(&args.workload, args.hardware.as_deref())?;
    if let Some(seed) = args.seed {
        workload.seed = seed;
    }
    let schedule = match &args.schedule {
        Some(path) => Schedule::read_csv(path, &workload.model_names())?,
        None => arrivals::generate(&workload)?,
    };
    schedule.write_csv(&args.out.join("schedule.csv"))?;
    eprintln!(
        "{}: {} requests over {} models, {:.1} s",
        workload.name,
        schedule.requests.len(),
        schedule.models.len(),
        schedule.span_s()
    );
    if args.schedule_only {
        return Ok(());
    }
    Ok(())
}
