//! `replay` end to end on the CPU device: a small schedule served in real
//! time through the scheduler, with the same outputs as `sim`.

mod replay_cli;

use replay_cli::replay_cpu;
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

/// Replays, on `gpus` emulated GPUs, each model in turn (`rounds` arrivals
/// 20 ms apart) and then a burst of five same-time arrivals for model 1 at
/// `burst_s` (batching); outputs go to `out`. Returns the result and the
/// schedule served.
fn replay_turns_and_burst(
    w: &Workload,
    gpus: usize,
    rounds: usize,
    burst_s: f64,
    out: &Path,
) -> (replay::ReplayResult, Schedule) {
    replay::check_supported(w).unwrap();
    let n = w.models.len() as u32;
    let mut arrivals: Vec<(f64, u32)> = (0..rounds)
        .map(|i| (0.02 * i as f64, i as u32 % n))
        .collect();
    arrivals.extend((0..5).map(|_| (burst_s, 1)));
    let s = Schedule::from_arrivals(w.model_names(), arrivals);
    let ex = replay::build_executor(
        Box::new(CpuDevice::new(gpus)),
        w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    (replay::replay(ex, w, &s, out).unwrap(), s)
}

fn run(system: &str) {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), system, "");
    // Every model twice, then a burst of same-time arrivals (batching).
    let out = dir.path().join("out");
    let (r, s) = replay_turns_and_burst(&w, 1, 6, 0.2, &out);
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
    assert!(out.join("latency_cdf.svg").exists() && out.join("latency_cdf.png").exists());
    // timeline.json: the same Chrome trace `sim` writes, with measured spans
    // of both kinds (every request here is served, so computes ran; the
    // first of each model was cold, so copies ran unless resident).
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("timeline.json")).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let count = |cat: &str| events.iter().filter(|e| e["cat"] == cat).count();
    assert!(count("compute") >= 1, "no compute spans");
    if system != "resident" {
        assert!(count("copy") >= 1, "no copy spans");
    }
    for e in events.iter().filter(|e| e["ph"] == "X") {
        assert!(
            e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0,
            "{e}"
        );
    }
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
fn tensor_parallel_split_that_does_not_divide_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"name: bad
seed: 5
duration_s: 1
cluster:
  hardware: h200-pcie5
  gpus: 5
models:
  - name: b
    arch: bert-base
    parallel: { tp: 5, pp: 1 }
arrivals:
  process: poisson
  rate: 4
policy:
  system: computron
  eviction: lru
"#;
    let p = dir.path().join("w.yaml");
    std::fs::write(&p, text).unwrap();
    let w = Workload::load(&p).unwrap();
    let e = replay::check_supported(&w).unwrap_err();
    assert_eq!(e.field, "models[0].parallel");
    assert!(e.message.contains("heads"), "{e}");
}

/// Computron with models split tp = 2 and pp = 2 over four emulated GPUs:
/// every request finishes, loads go shard by shard, activations are handed
/// over between stages in micro-batches, and a one-GPU model beside them
/// still runs.
#[test]
fn computron_replays_tensor_and_pipeline_parallel_models() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"name: par
seed: 5
duration_s: 1
cluster:
  hardware: h200-pcie5
  gpus: 4
  gpu_memory_gib: 4.001
models:
  - name: syn
    layers: 6
    layer_mb: 0.2
    layer_ms: 0.5
    copies: 3
    max_batch: 4
    micro_batch: 2
    parallel: { tp: 2, pp: 2 }
  - name: one
    layers: 4
    layer_mb: 0.1
    layer_ms: 0.5
    max_batch: 4
arrivals:
  process: poisson
  rate: 40
policy:
  system: computron
  eviction: lru
"#;
    let p = dir.path().join("w.yaml");
    std::fs::write(&p, text).unwrap();
    let w = Workload::load(&p).unwrap();
    let out = dir.path().join("out");
    let (r, _) = replay_turns_and_burst(&w, 4, 8, 0.25, &out);
    assert_eq!(r.summary.requests, 13);
    assert_eq!(r.run.parallel[0], "2x2");
    assert_eq!(r.run.parallel[3], "1x1");
    assert!(r.run.handoffs.peer >= 2 * 7, "{:?}", r.run.handoffs);
    // Each split model's first load moved all 4 shards.
    assert!(r.models[0].loads >= 2, "{:?}", r.models[0]);
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert_eq!(recs.len(), 13);
    assert!(recs
        .iter()
        .all(|r| r.latency_s > 0.0 && r.finish_s >= r.start_s));
    // The burst of five on `syn-1` was cut into micro-batches of at most two.
    let syn: Vec<_> = recs.iter().filter(|r| r.model.starts_with("syn")).collect();
    assert!(syn.iter().all(|r| r.batch_size <= 2), "{syn:?}");
    assert!(syn.iter().any(|r| r.batch_size == 2), "{syn:?}");
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
fn unknown_device_and_missing_workload_exit_2() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_replay"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--device", "tpu", "-w", "x.yaml", "--schedule", "x.csv"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tpu"), "{err}");
    let (code, err) = run(&[
        "--device",
        "cpu",
        "-w",
        "/nonexistent/w.yaml",
        "--schedule",
        "x.csv",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/w.yaml"), "{err}");
}

#[test]
fn bad_weights_folder_and_unwritable_out_fail_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let workload = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../experiments/validation/tune/poisson.yaml"
    );
    let schedule = dir.path().join("schedule.csv");
    std::fs::write(&schedule, "id,arrival_s,model\n0,0.5,gpt2-0\n").unwrap();
    let run = |extra: &[&str], out: &std::path::Path| {
        let mut args = vec!["--device", "cpu", "-w", workload, "--schedule"];
        args.push(schedule.to_str().unwrap());
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(extra);
        let started = std::time::Instant::now();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_replay"))
            .args(&args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            started.elapsed(),
        )
    };
    let out = dir.path().join("out");
    let (code, err, _) = run(&["--weights", "/nonexistent/weights"], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--weights") && err.contains("/nonexistent/weights"),
        "{err}"
    );
    assert!(!out.exists());
    // An --out that cannot be a folder: refused at once, not after the run.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let (code, err, took) = run(&[], &file.join("out"));
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("file/out"), "{err}");
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
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

#[test]
fn an_interrupted_replay_writes_what_it_measured_marked_partial() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), "pipeswitch", "");
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0), (0.5, 1), (1.0, 2)]);
    let ex = replay::build_executor(
        Box::new(CpuDevice::new(1)),
        &w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    let out = dir.path().join("out");
    // Stopped before the first arrival is fed: nothing finished.
    let stop = std::sync::atomic::AtomicBool::new(true);
    let r = replay::replay_until(ex, &w, &s, &out, &stop).unwrap();
    assert!(r.run.partial);
    assert_eq!(r.summary.requests, 0);
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"partial\": true"), "{summary}");
    assert!(records::read(&out.join("requests.csv")).unwrap().is_empty());
}

#[test]
fn pin_cpus_pins_the_host_thread_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    workload(dir.path(), "pipeswitch", "");
    let schedule = dir.path().join("schedule.csv");
    std::fs::write(
        &schedule,
        "id,arrival_s,model\n0,0.01,syn-0\n1,0.02,syn-1\n",
    )
    .unwrap();
    let cpu = switchyard_backend::host_cpus::allowed_cpus().unwrap()[0];
    let run = |pin: &str, out: &Path| {
        replay_cpu(
            &dir.path().join("w.yaml"),
            &schedule,
            out,
            &["--pin-cpus", pin],
        )
    };
    let out = dir.path().join("pinned");
    let (code, err) = run(&cpu.to_string(), &out);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("pinned to CPUs {cpu}")), "{err}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        summary.contains(&format!("\"host_cpus\": \"{cpu}\"")),
        "{summary}"
    );
    // Every measured compute span says how long its issuing held the host.
    let timeline = std::fs::read_to_string(out.join("timeline.json")).unwrap();
    let computes = timeline.matches("\"cat\":\"compute\"").count();
    assert!(computes >= 2, "{timeline}");
    assert_eq!(
        timeline.matches("\"host_ms\":").count(),
        computes,
        "{timeline}"
    );
    // The CPU device has no PCI address: `auto` says so and runs unpinned.
    let out = dir.path().join("auto");
    let (code, err) = run("auto", &out);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("left unpinned"), "{err}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"host_cpus\": null"), "{summary}");
    // A bad list is bad input, before any run.
    let out = dir.path().join("bad");
    let (code, err) = run("3-1", &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--pin-cpus") && err.contains("backwards"),
        "{err}"
    );
    assert!(!out.exists());
    // CPUs the process may not use: refused by name.
    let (code, err) = run("100000", &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("none of CPUs 100000"), "{err}");
}

#[test]
fn idle_spin_replays_the_schedule_and_says_how_it_waited() {
    let dir = tempfile::tempdir().unwrap();
    workload(dir.path(), "pipeswitch", "");
    let schedule = dir.path().join("schedule.csv");
    // Arrivals 20 ms apart: the default mode sleeps between them.
    std::fs::write(
        &schedule,
        "id,arrival_s,model\n0,0.01,syn-0\n1,0.03,syn-1\n2,0.05,syn-0\n",
    )
    .unwrap();
    let run = |idle: &str, out: &Path| {
        replay_cpu(
            &dir.path().join("w.yaml"),
            &schedule,
            out,
            &["--idle", idle],
        )
    };
    for idle in ["sleep", "spin"] {
        let out = dir.path().join(idle);
        let (code, err) = run(idle, &out);
        assert_eq!(code, Some(0), "{err}");
        let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
        assert!(
            summary.contains(&format!("\"idle\": \"{idle}\"")),
            "{summary}"
        );
        assert_eq!(records::read(&out.join("requests.csv")).unwrap().len(), 3);
    }
    let out = dir.path().join("bad");
    let (code, err) = run("nap", &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--idle") && err.contains("`nap`"), "{err}");
    assert!(!out.exists());
}
