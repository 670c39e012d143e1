//! `multipath-bench`: whole-model swap-in onto GPU 0 with and without
//! multi-path loading, against the pinned limit of one link measured in
//! the same run ([`switchyard_backend::multipath_bench`]); writes
//! `multipath.csv`, `multipath.md` and `multipath.json` to `--out`.

use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use switchyard_backend::device;
use switchyard_backend::multipath_bench::{bench_model, to_csv, to_markdown, BenchOptions};

#[derive(Debug, Parser)]
#[command(
    name = "multipath-bench",
    about = "Whole-model swap-in over one link and over several (multi-path loading)"
)]
struct Args {
    /// Device: `cuda` or `cpu`.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Output folder.
    #[arg(long, short = 'o', default_value = "results/multipath")]
    out: PathBuf,
    /// Models, `;`-separated, each the body of a workload `models` entry
    /// (e.g. `arch: opt-13b`).
    #[arg(
        long,
        value_delimiter = ';',
        default_value = "arch: opt-6.7b;arch: opt-13b"
    )]
    models: Vec<String>,
    /// GPUs: the target is GPU 0, the others lend their links.
    #[arg(long, default_value_t = 2)]
    gpus: u32,
    /// Hardware profile (preset or file): grouping cost model, memory.
    #[arg(long, default_value = "h200-pcie5")]
    hardware: String,
    /// GPU memory per GPU, GiB (default: the profile's).
    #[arg(long)]
    gpu_memory_gib: Option<f64>,
    /// Staging reserved on each helper, MiB.
    #[arg(long, default_value_t = 1024.0)]
    staging_mib: f64,
    /// Repetitions (median reported), after one untimed warm-up.
    #[arg(long, default_value_t = 5)]
    reps: usize,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let o = BenchOptions {
        gpus: a.gpus,
        hardware: a.hardware.clone(),
        gpu_memory_gib: a.gpu_memory_gib,
        staging_mib: a.staging_mib,
        reps: a.reps.max(1),
    };
    let mut rows = Vec::new();
    let mut machine = String::new();
    for spec in &a.models {
        let dev = device::open(&a.device, a.gpus as usize)?;
        machine = format!("{}: {}", dev.kind(), dev.describe());
        let row = bench_model(dev, spec, &o)?;
        eprintln!(
            "{}: direct {:.4} s, multipath {:.4} s ({:.2}x one link's {:.1} GB/s)",
            row.model,
            row.direct_s,
            row.multipath_s,
            row.multipath_over_one_link(),
            row.one_link_gbps
        );
        rows.push(row);
    }
    let command = std::env::args()
        .map(|x| if x.contains(' ') { format!("'{x}'") } else { x })
        .collect::<Vec<_>>()
        .join(" ");
    let md = to_markdown(&rows, &command, &machine);
    print!("{md}");
    std::fs::create_dir_all(&a.out)?;
    switchyard_core::output::write_atomic(&a.out.join("multipath.csv"), to_csv(&rows).as_bytes())?;
    switchyard_core::output::write_atomic(&a.out.join("multipath.md"), md.as_bytes())?;
    let mut json = serde_json::to_vec_pretty(&serde_json::json!({
        "command": command,
        "machine": machine,
        "rows": rows,
    }))?;
    json.push(b'\n');
    switchyard_core::output::write_atomic(&a.out.join("multipath.json"), &json)?;
    Ok(())
}
