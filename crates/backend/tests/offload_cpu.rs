//! Offload (`policy.offload`) through replay on the CPU device: every
//! eviction is copied back to host memory on the offload stream and
//! reported done, loads wait for it, requests complete, and
//! `summary.json` and `timeline.json` show the offloads.

use std::path::Path;
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::replay;
use switchyard_core::{records, Schedule, Workload};

/// Three synthetic models of 0.4 MB taking turns on one GPU whose pool
/// (0.0005 GiB past the reserve) holds one at a time: each load waits
/// for the previous model's offload.
fn workload(dir: &Path, offload: bool) -> Workload {
    let text = format!(
        "name: off\nseed: 5\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: 1\n  gpu_memory_gib: 4.0005\n\
         models:\n  - name: syn\n    layers: 4\n    layer_mb: 0.1\n    layer_ms: 0.5\n    copies: 3\n    max_batch: 4\n\
         arrivals:\n  process: poisson\n  rate: 40\npolicy:\n  system: computron\n  offload: {offload}\n"
    );
    let p = dir.join(format!("w-{offload}.yaml"));
    std::fs::write(&p, &text).unwrap();
    Workload::load(&p).unwrap()
}

fn run(dir: &Path, offload: bool) -> (replay::ReplayResult, serde_json::Value) {
    let w = workload(dir, offload);
    replay::check_supported(&w).unwrap();
    let arrivals: Vec<(f64, u32)> = (0..6).map(|i| (0.02 * i as f64, i as u32 % 3)).collect();
    let s = Schedule::from_arrivals(w.model_names(), arrivals);
    let ex = replay::build_executor(
        Box::new(CpuDevice::new(1)),
        &w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    let out = dir.join(format!("out-{offload}"));
    let r = replay::replay(ex, &w, &s, &out).unwrap();
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert_eq!(recs.len(), 6);
    assert!(recs.iter().all(|r| r.latency_s > 0.0));
    let timeline = std::fs::read_to_string(out.join("timeline.json")).unwrap();
    (r, serde_json::from_str(&timeline).unwrap())
}

#[test]
fn replay_offloads_every_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let (r, timeline) = run(dir.path(), true);
    assert_eq!(r.summary.requests, 6);
    // Six requests taking turns: six loads, five evictions before the
    // next load (the last model stays).
    assert_eq!(r.loads, 6);
    let off = r.offloads.expect("summary.json counts offloads");
    assert_eq!(off.count, 5, "{off:?}");
    assert_eq!(off.bytes, 5 * r.bytes_loaded / 6);
    assert!(off.mean_s > 0.0 && off.max_s >= off.mean_s, "{off:?}");
    let spans = timeline["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cat"] == "offload")
        .count();
    assert_eq!(spans, 5, "one offload span per eviction");
    // Without the option nothing is copied back, and the summary says nothing.
    let (r, timeline) = run(dir.path(), false);
    assert!(r.offloads.is_none());
    assert!(!timeline.to_string().contains("\"offload\""));
}
