//! `sim-bench`: simulator speed. Serves 1,000,000 requests over 64 models on
//! four GPUs (Zipf-skewed Poisson arrivals, models swapping) under several
//! systems, with `requests.csv` streamed to disk, and writes
//! `results/sim_speed.csv`: events per second, wall time and peak memory.
//!
//! Usage: `cargo run --release -p switchyard-sim --bin sim-bench [-- OUT.csv [REQUESTS]]`

use std::path::{Path, PathBuf};
use std::time::Instant;
use switchyard_core::workload::{Eviction, Grouping, PolicySpec, System};
use switchyard_core::{arrivals, Workload};
use switchyard_sim::RecordFile;
use switchyard_sim::{simulate_policy, SimOptions};

fn workload(requests: u64) -> Workload {
    // 64 models of 24 x 50 MB; 16 GiB for weights per GPU holds about 13 of them.
    let rate = 1000.0;
    let text = format!(
        "name: bench\nseed: 1\nduration_s: {}\n\
         cluster: {{ hardware: h200-pcie5, gpus: 4, gpu_memory_gib: 20 }}\n\
         models:\n  - {{ name: m, copies: 64, layers: 24, layer_mb: 50, layer_ms: 0.05, max_batch: 8, slo_ms: 100 }}\n\
         arrivals: {{ process: poisson, rate: {rate}, skew: {{ zipf: 1.0 }} }}\n\
         policy: {{ system: computron, eviction: lru }}\n",
        requests as f64 / rate
    );
    Workload::parse(Path::new("<sim-bench>"), &text).expect("bench workload is valid")
}

/// Peak resident memory of this process so far, MiB (Linux; 0 elsewhere).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map_or("results/sim_speed.csv", String::as_str));
    let full: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = std::env::temp_dir().join(format!("sim-bench-{}", std::process::id()));
    let opts = SimOptions {
        progress: false,
        timeline: false,
        ..SimOptions::default()
    };
    let mut rows = vec![
        "system,eviction,requests,models,gpus,events,wall_s,events_per_s,simulated_s,mean_s,p99_s,loads,peak_rss_mib"
            .to_string(),
    ];
    // Smaller runs first: the peak-memory column then shows growth with requests.
    let runs = [
        (full / 4, System::Computron, Eviction::Lru),
        (full, System::Computron, Eviction::Lru),
        (full, System::Pipeswitch, Eviction::Lru),
        (full, System::Computron, Eviction::Belady),
        (full, System::Streaming, Eviction::Lru),
    ];
    for (n, system, eviction) in runs {
        let w = workload(n);
        let schedule = arrivals::generate(&w).expect("arrivals");
        let policy = PolicySpec {
            system,
            eviction,
            grouping: Grouping::Optimal,
        };
        let mut sink = RecordFile::create(&tmp.join("requests.csv")).expect("temp file");
        let t0 = Instant::now();
        let r = simulate_policy(&w, &schedule, policy, &opts, &mut sink).expect("simulation");
        sink.finish().expect("records");
        let wall = t0.elapsed().as_secs_f64();
        let row = format!(
            "{},{},{},{},{},{},{:.3},{:.0},{:.1},{:.6},{:.6},{},{:.1}",
            r.system,
            r.eviction,
            schedule.requests.len(),
            w.models.len(),
            w.cluster.gpus,
            r.events,
            wall,
            r.events as f64 / wall,
            r.simulated_s,
            r.summary.mean_s,
            r.summary.p99_s,
            r.loads,
            peak_rss_mib()
        );
        eprintln!("{row}");
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let mut text = rows.join("\n");
    text.push('\n');
    switchyard_core::output::write_atomic(&out, text.as_bytes()).expect("write results");
    eprintln!("wrote {}", out.display());
}
