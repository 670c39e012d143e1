//! `sim-bench`: simulator speed. Serves 1,000,000 requests over 64 models (or MODELS) on
//! four GPUs (Zipf-skewed Poisson arrivals, models swapping) under several
//! systems, with `requests.csv` streamed to disk, and writes
//! `results/sim_speed.csv`: events per second, wall time and peak memory.
//!
//! Usage: `cargo run --release -p switchyard-sim --bin sim-bench [-- OUT.csv [REQUESTS [MODELS]]]`
//! (each configuration runs in a child process, so its memory figure is its own;
//! MODELS, default 64, copies of the model template share the four GPUs).

use std::path::{Path, PathBuf};
use std::time::Instant;
use switchyard_core::workload::{Eviction, Grouping, PolicySpec, System};
use switchyard_core::{arrivals, Workload};
use switchyard_sim::RecordWriter;
use switchyard_sim::{simulate_policy, NullSink, SimOptions};

fn workload(requests: u64, models: u64) -> Workload {
    // `models` (64 by default) of 24 x 50 MB; 16 GiB for weights per GPU holds about 13 of them.
    let rate = 1000.0;
    let text = format!(
        "name: bench\nseed: 1\nduration_s: {}\n\
         cluster: {{ hardware: h200-pcie5, gpus: 4, gpu_memory_gib: 20 }}\n\
         models:\n  - {{ name: m, copies: {models}, layers: 24, layer_mb: 50, layer_ms: 0.05, max_batch: 8, slo_ms: 100 }}\n\
         arrivals: {{ process: poisson, rate: {rate}, skew: {{ zipf: 1.0 }} }}\n\
         policy: {{ system: computron, eviction: lru }}\n",
        requests as f64 / rate
    );
    Workload::parse(Path::new("<sim-bench>"), &text).expect("bench workload is valid")
}

/// Resident memory now, MiB (Linux; 0 elsewhere).
fn rss_mib() -> f64 {
    status_kb("VmRSS:") / 1024.0
}

fn status_kb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// Resets the peak-RSS counter (Linux >= 4.0), so the next peak is the simulation's own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map_or("results/sim_speed.csv", String::as_str));

    let child = args.get(1).map(String::as_str) == Some("--one");
    let full: u64 = args
        .get(if child { 3 } else { 2 })
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let models: u64 = args
        .get(if child { 4 } else { 3 })
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let tmp = std::env::temp_dir().join(format!("sim-bench-{}", std::process::id()));
    let opts = SimOptions {
        progress: false,
        timeline: false,
        ..SimOptions::default()
    };
    let mut rows = vec![
        "system,eviction,records,requests,models,gpus,events,wall_s,events_per_s,simulated_s,mean_s,p99_s,loads,sim_memory_mib"
            .to_string(),
    ];
    // `records`: csv = requests.csv streamed to disk; none = engine only.
    // wall_s: best of three runs on a shared machine. sim_memory_mib: growth
    // of peak resident memory during the first of them, above what the process
    // held before (the schedule, the input, is already in memory).
    let runs = [
        (full / 4, System::Computron, Eviction::Lru, true),
        (full, System::Computron, Eviction::Lru, true),
        (full, System::Computron, Eviction::Lru, false),
        (full, System::Pipeswitch, Eviction::Lru, true),
        (full, System::Computron, Eviction::Belady, true),
        (full, System::Streaming, Eviction::Lru, true),
    ];
    if child {
        // Child: run configuration `i` and print its row on stdout.
        let i: usize = args[2].parse().expect("index");
        println!("{}", run_one(runs[i], models, &tmp, &opts));
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    // Each configuration runs in a fresh process, so memory figures are its own.
    let exe = std::env::current_exe().expect("own path");
    for i in 0..runs.len() {
        let o = std::process::Command::new(&exe)
            .args([
                "--one",
                &i.to_string(),
                &full.to_string(),
                &models.to_string(),
            ])
            .output()
            .expect("run child");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let row = String::from_utf8(o.stdout)
            .expect("utf-8")
            .trim()
            .to_string();
        eprintln!("{row}");
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let mut text = rows.join("\n");
    text.push('\n');
    switchyard_core::output::write_atomic(&out, text.as_bytes()).expect("write results");
    eprintln!("wrote {}", out.display());
}

fn run_one(
    (n, system, eviction, csv): (u64, System, Eviction, bool),
    models: u64,
    tmp: &Path,
    opts: &SimOptions,
) -> String {
    let w = workload(n, models);
    let schedule = arrivals::generate(&w).expect("arrivals");
    let policy = PolicySpec {
        system,
        eviction,
        grouping: Grouping::Optimal,
        max_loaded: None,
        offload: false,
    };
    let mut best = f64::INFINITY;
    let mut mem = 0.0f64;
    let mut result = None;
    for rep in 0..3 {
        let before = rss_mib();
        reset_peak();
        let t0 = Instant::now();
        let r = if csv {
            let mut sink = RecordWriter::create(&tmp.join("requests.csv")).expect("temp file");
            let r = simulate_policy(&w, &schedule, policy, opts, &mut sink).expect("simulation");
            sink.finish().expect("records");
            r
        } else {
            simulate_policy(&w, &schedule, policy, opts, &mut NullSink).expect("simulation")
        };
        best = best.min(t0.elapsed().as_secs_f64());
        if rep == 0 {
            mem = status_kb("VmHWM:") / 1024.0 - before;
        }
        result = Some(r);
    }
    let r = result.expect("ran");
    format!(
        "{},{},{},{},{},{},{},{:.3},{:.0},{:.1},{:.6},{:.6},{},{:.1}",
        r.system,
        r.eviction,
        if csv { "csv" } else { "none" },
        schedule.requests.len(),
        w.models.len(),
        w.cluster.gpus,
        r.events,
        best,
        r.events as f64 / best,
        r.run.simulated_s,
        r.summary.mean_s,
        r.summary.p99_s,
        r.loads,
        mem
    )
}
