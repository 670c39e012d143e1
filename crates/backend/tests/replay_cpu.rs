//! `replay` end to end on the CPU device: a small schedule served in real
//! time through the scheduler, with the same outputs as `sim`.

use std::path::Path;
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::replay;
use switchyard_core::{records, Schedule, Workload};

fn workload(dir: &Path, system: &str, extra_model: &str) -> Workload {
    let text = format!(
        "name: tiny-{system}\nseed: 5\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: 1\n  gpu_memory_gib: {mem}\n\
         models:\n  - name: syn\n    layers: 4\n    layer_mb: 0.1\n    layer_ms: 0.5\n    copies: 3\n    max_batch: 4\n    slo_ms: 1000\n{extra_model}\
         arrivals:\n  process: poisson\n  rate: 40\npolicy:\n  system: {system}\n  eviction: lru\n  grouping: per_layer\n",
        mem = if system == "resident" { 4.01 } else { 4.001 },
    );
    let p = dir.join("w.yaml");
    std::fs::write(&p, &text).unwrap();
    Workload::load(&p).unwrap()
}

fn run(system: &str) {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), system, "");
    replay::check_supported(&w).unwrap();
    // Every model twice, then a burst of same-time arrivals (batching).
    let mut arrivals: Vec<(f64, u32)> = (0..6).map(|i| (0.02 * i as f64, i % 3)).collect();
    arrivals.extend((0..5).map(|_| (0.2, 1)));
    let s = Schedule::from_arrivals(w.model_names(), arrivals);
    let ex = replay::build_executor(
        Box::new(CpuDevice::new(1)),
        &w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    let out = dir.path().join("out");
    let r = replay::replay(ex, &w, &s, &out).unwrap();
    assert_eq!(r.summary.requests, 11);
    assert_eq!(r.system, system);
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert_eq!(recs.len(), 11);
    for (i, rec) in recs.iter().enumerate() {
        assert_eq!(rec.id, i as u64);
        assert_eq!(rec.arrival_s, s.requests[i].arrival_s);
        assert!(rec.start_s >= 0.0 && rec.finish_s >= rec.start_s, "{rec:?}");
        assert!((rec.latency_s - (rec.finish_s - rec.arrival_s)).abs() < 1e-9);
        assert!(rec.latency_s > 0.0 && rec.batch_size >= 1);
    }
    // The first request of each model found it cold (nothing preloaded) unless resident.
    assert_eq!(recs[0].cold, system != "resident");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "p50_s",
        "p99_s",
        "late_dispatches",
        "max_dispatch_delay_s",
        "device",
        "models",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert!(out.join("cdf.svg").exists() && out.join("cdf.png").exists());
}

#[test]
fn pipeswitch_replays_end_to_end() {
    run("pipeswitch");
}

#[test]
fn stop_and_start_uses_pageable_copies() {
    run("stop-and-start");
}

#[test]
fn resident_preloads_before_time_zero() {
    run("resident");
}

#[test]
fn tensor_parallel_models_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = workload(dir.path(), "computron", "");
    w.models[1].tp = 2;
    let e = replay::check_supported(&w).unwrap_err();
    assert_eq!(e.field, "models[1].parallel");
    assert!(e.message.contains("syn-1"), "{e}");
}

#[test]
fn replay_binary_without_schedule_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cuda_without_driver_fails_clearly() {
    if switchyard_backend::device::cuda::driver_present() {
        println!("skipped: a CUDA driver is present");
        return;
    }
    let e = switchyard_backend::device::open("cuda", 1)
        .err()
        .expect("no driver, no device");
    assert!(format!("{e}").contains("no CUDA driver"), "{e}");
}
