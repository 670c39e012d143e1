//! `replay --device cpu` of fp32 and bf16 models end to end: each model's
//! weights are held, copied and run in its own type beside an fp16 model,
//! an fp32 model's bytes (host store, layout, every load) are twice the
//! fp16 model's, and a bf16 model's the same; numerics of the typed passes
//! against the reference are checked in `forward.rs` and `parallel.rs`.

use std::path::Path;
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::device::Dtype;
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::replay;
use switchyard_core::{records, Schedule, Workload};

/// Two synthetic models of equal shape, `a` fp16 and `b` of `dtype`, on
/// one GPU with room for one of them at a time, so every turn swaps.
fn workload(dir: &Path, system: &str, dtype: &str) -> Workload {
    let text = format!(
        "name: typed\nseed: 5\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: 1\n  gpu_memory_gib: 4.0015\n\
         models:\n  - {{ name: a, layers: 4, layer_mb: 0.1, layer_ms: 0.5, max_batch: 4 }}\n\
         \x20 - {{ name: b, layers: 4, layer_mb: 0.1, layer_ms: 0.5, max_batch: 4, dtype: {dtype} }}\n\
         arrivals: {{ process: poisson, rate: 40 }}\npolicy: {{ system: {system}, eviction: lru }}\n"
    );
    let p = dir.join("w.yaml");
    std::fs::write(&p, &text).unwrap();
    Workload::load(&p).unwrap()
}

fn replay_typed(system: &str, dtype: Dtype) {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), system, dtype.name());
    assert_eq!(w.dtype(1), dtype);
    replay::check_supported(&w).unwrap();
    let ex = replay::build_executor(
        Box::new(CpuDevice::new(1)),
        &w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    // The layout, host copy and arena of `b` are in its type.
    let (a, b) = (&ex.layouts[0], &ex.layouts[1]);
    assert_eq!((a.dtype, b.dtype), (Dtype::Fp16, dtype));
    let scale = dtype.bytes() / 2;
    assert_eq!(b.total_bytes(), a.total_bytes() * scale);
    assert_eq!(b.total_bytes(), w.models[1].shape.total_bytes());
    let held = |m: usize| {
        let h = &ex.host.models[m];
        h.pinned.as_ref().or(h.pageable.as_ref()).unwrap().len()
    };
    assert_eq!(held(1), held(0) * scale);
    assert!(ex.gemm_rate_for(dtype) > 0.0);
    // Turns a, b, a, b, ... then a burst of `b` (batching).
    let mut arrivals: Vec<(f64, u32)> = (0..8).map(|i| (0.02 * i as f64, i as u32 % 2)).collect();
    arrivals.extend((0..4).map(|_| (0.3, 1)));
    let s = Schedule::from_arrivals(w.model_names(), arrivals);
    let out = dir.path().join("out");
    let r = replay::replay(ex, &w, &s, &out).unwrap();
    assert_eq!(r.summary.requests, 12);
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert_eq!(recs.len(), 12);
    assert!(recs
        .iter()
        .all(|r| r.latency_s > 0.0 && r.finish_s >= r.start_s));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let per_load = |m: usize| {
        let s = &summary["models"][m];
        let (loads, bytes) = (
            s["loads"].as_u64().unwrap(),
            s["bytes_loaded"].as_u64().unwrap(),
        );
        assert!(loads >= 1, "model {m} never loaded: {s}");
        bytes / loads
    };
    // Whole-model loads (one stage): b's are `scale` times a's.
    assert_eq!(per_load(1), per_load(0) * scale, "{summary}");
}

#[test]
fn fp32_model_replays_with_doubled_bytes() {
    replay_typed("pipeswitch", Dtype::Fp32);
}

#[test]
fn bf16_model_replays_with_fp16_bytes() {
    replay_typed("pipeswitch", Dtype::Bf16);
}

#[test]
fn fp32_model_replays_under_stop_and_start() {
    replay_typed("stop-and-start", Dtype::Fp32);
}

/// The `replay` binary serves an fp32 and a bf16 model beside an fp16 one
/// on the CPU device (exit 0, every request in `requests.csv`).
#[test]
fn replay_binary_runs_typed_models_on_the_cpu_device() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "name: typed-cli\nseed: 5\nduration_s: 1\ncluster: { hardware: h200-pcie5, gpus: 1 }\n\
         models:\n  - { name: a, layers: 3, layer_mb: 0.1, layer_ms: 0.5 }\n\
         \x20 - { name: b, layers: 3, layer_mb: 0.1, layer_ms: 0.5, dtype: fp32 }\n\
         \x20 - { name: c, layers: 3, layer_mb: 0.1, layer_ms: 0.5, dtype: bf16 }\n\
         arrivals: { process: poisson, rate: 40 }\npolicy: { system: pipeswitch }\n";
    let wp = dir.path().join("w.yaml");
    std::fs::write(&wp, text).unwrap();
    let w = Workload::load(&wp).unwrap();
    let s = Schedule::from_arrivals(
        w.model_names(),
        (0..9).map(|i| (0.02 * i as f64, i as u32 % 3)).collect(),
    );
    let sp = dir.path().join("schedule.csv");
    s.write_csv(&sp).unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(["--device", "cpu", "-w"])
        .arg(&wp)
        .arg("--schedule")
        .arg(&sp)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert_eq!(recs.len(), 9);
    for m in ["a", "b", "c"] {
        assert_eq!(recs.iter().filter(|r| r.model == m).count(), 3, "{m}");
    }
}

/// PipeSwitch's paper workloads declare fp32 models: replay accepts them
/// and lays each out in fp32, twice the fp16 bytes.
#[test]
fn pipeswitch_paper_workloads_pass_replays_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/papers/pipeswitch");
    for name in ["fig5_ready", "fig5_switch", "preempt_training"] {
        let w = Workload::load(&dir.join(format!("{name}.yaml"))).unwrap();
        replay::check_supported(&w).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, m) in w.models.iter().enumerate() {
            assert_eq!(w.dtype(i), Dtype::Fp32, "{name} {}", m.name);
            let l = switchyard_backend::model::ModelLayout::typed(&m.shape, Dtype::Fp32).unwrap();
            let fp16 = switchyard_core::arch::builtin(&m.shape.arch).unwrap();
            assert_eq!(l.total_bytes(), 2 * fp16.total_bytes(), "{name} {}", m.name);
        }
    }
}
