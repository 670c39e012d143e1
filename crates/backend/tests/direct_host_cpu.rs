//! Direct host access (`policy.direct_host`) through replay on the CPU
//! device: the placement's host layers are mapped at start, every pass
//! reads them in place, requests complete, and `summary.json` says which
//! layers stayed in host memory.

use std::path::Path;
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::replay;
use switchyard_core::{records, Schedule, Workload};

/// Synthetic layers of 0.1 MB that compute for 0.5 ms: their reads hide
/// under compute, so the DP leaves the first layers in host memory.
fn workload(dir: &Path, direct: bool) -> Workload {
    let text = format!(
        "name: dh\nseed: 5\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: 1\n  gpu_memory_gib: 4.001\n\
         models:\n  - name: syn\n    layers: 4\n    layer_mb: 0.1\n    layer_ms: 0.5\n    copies: 3\n    max_batch: 4\n    slo_ms: 1000\n\
         arrivals:\n  process: poisson\n  rate: 40\npolicy:\n  system: pipeswitch\n  eviction: lru\n  grouping: per_layer\n  direct_host: {direct}\n"
    );
    let p = dir.join("w.yaml");
    std::fs::write(&p, &text).unwrap();
    Workload::load(&p).unwrap()
}

#[test]
fn replay_reads_host_layers_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), true);
    let placed = replay::placements(&w);
    let host_layers = placed[0].direct_host().0;
    assert!(
        host_layers >= 1,
        "the DP leaves layers in host memory: {placed:?}"
    );
    replay::check_supported(&w).unwrap();
    let arrivals: Vec<(f64, u32)> = (0..6).map(|i| (0.02 * i as f64, i as u32 % 3)).collect();
    let s = Schedule::from_arrivals(w.model_names(), arrivals);
    let mut ex = replay::build_executor(
        Box::new(CpuDevice::new(1)),
        &w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    // Every model's host layers are mapped: the pool knows them outside
    // its bytes.
    for m in 0..3 {
        let at = ex.pool.addr(0, m, 0).expect("layer 0 mapped");
        assert!(at >= switchyard_backend::device::mapped::MAPPED_BASE);
    }
    assert_eq!(ex.map_direct_layers(&[]).unwrap(), 0);
    let out = dir.path().join("out");
    let r = replay::replay(ex, &w, &s, &out).unwrap();
    assert_eq!(r.summary.requests, 6);
    assert!(r.direct_host);
    assert_eq!(r.models[0].direct_host_layers, host_layers);
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert!(recs.iter().all(|r| r.latency_s > 0.0));
    // The same run without the option copies every layer.
    let off = workload(dir.path(), false);
    assert_eq!(replay::placements(&off)[0].direct_host(), (0, 0));
}
