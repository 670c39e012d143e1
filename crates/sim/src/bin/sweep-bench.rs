//! `sweep-bench`: speed of `sim sweep`. Sweeps a 1,000,000-request workload
//! (64 synthetic models on four GPUs, Zipf-skewed Poisson arrivals, models
//! swapping) over `POINTS` rate scales between 0.5 and 1.5 with one seed,
//! on every core, each point generating its own schedule as `sim sweep`
//! does, and appends one line to `OUT.csv`: threads, points, requests,
//! wall seconds, seconds per point and the wall time 1,000 such points
//! would take on this machine (points / wall time, scaled; not measured).
//!
//! Usage: `cargo run --release -p switchyard-sim --bin sweep-bench [-- OUT.csv [POINTS [REQUESTS]]]`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use switchyard_core::Workload;
use switchyard_sim::sweep::{self, Grid};

fn workload(requests: u64) -> Workload {
    let rate = 1000.0;
    let text = format!(
        "name: sweep-bench\nseed: 1\nduration_s: {}\n\
         cluster: {{ hardware: h200-pcie5, gpus: 4, gpu_memory_gib: 20 }}\n\
         models:\n  - {{ name: m, copies: 64, layers: 24, layer_mb: 50, layer_ms: 0.05, max_batch: 8, slo_ms: 100 }}\n\
         arrivals: {{ process: poisson, rate: {rate}, skew: {{ zipf: 1.0 }} }}\n\
         policy: {{ system: computron, eviction: lru }}\n",
        requests as f64 / rate
    );
    Workload::parse(Path::new("<sweep-bench>"), &text).expect("bench workload is valid")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(
        args.get(1)
            .map_or("results/sweep_speed.csv", String::as_str),
    );
    let points_n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let requests: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let base = workload(requests);
    let grid = Grid {
        rate_scale: (0..points_n)
            .map(|i| 0.5 + i as f64 / points_n.max(2).saturating_sub(1) as f64)
            .collect(),
        ..Grid::default()
    };
    let points = sweep::points(&base, &grid).expect("valid grid");
    let threads = rayon::current_num_threads();
    let t0 = Instant::now();
    let rows = sweep::run(&base, &points, &[base.seed], &|| {}).expect("sweep runs");
    let wall = t0.elapsed().as_secs_f64();
    let served: u64 = rows.iter().map(|r| r.result.summary.requests).sum();
    let per_point = wall / points.len() as f64;
    let line = format!(
        "{threads},{},{},{:.3},{:.4},{:.1}\n",
        points.len(),
        served,
        wall,
        per_point,
        per_point * 1000.0
    );
    let new = !out.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)
        .expect("results file opens");
    if new {
        f.write_all(
            b"threads,points,requests_served,wall_s,wall_s_per_point,wall_s_for_1000_points_here\n",
        )
        .expect("write");
    }
    f.write_all(line.as_bytes()).expect("write");
    eprint!("threads,points,requests_served,wall_s,wall_s_per_point,wall_s_for_1000_points_here\n{line}");
}
