//! Background jobs in `replay` on the CPU device: iterations of real GEMMs
//! while the scheduler lets the job run, none while it is preempted, and
//! iterations, rate and share in `summary.json` under `sim`'s names.

use std::path::Path;
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::replay;
use switchyard_core::{Schedule, Workload};

fn workload(dir: &Path) -> Workload {
    let text = "name: bg\nseed: 5\nduration_s: 0.6\n\
        cluster: { hardware: h200-pcie5, gpus: 1, gpu_memory_gib: 4.5 }\n\
        models:\n  - { name: syn, layers: 4, layer_mb: 0.1, layer_ms: 0.5, max_batch: 4 }\n\
        arrivals: { process: poisson, rate: 10 }\n\
        policy: { system: pipeswitch, grouping: per_layer }\n\
        background:\n  - { name: train, gpu: 0, iteration_ms: 20, memory_gib: 0.25 }\n";
    let p = dir.join("w.yaml");
    std::fs::write(&p, text).unwrap();
    Workload::load(&p).unwrap()
}

fn executor(w: &Workload) -> switchyard_backend::exec::Executor {
    replay::build_executor(
        Box::new(CpuDevice::new(1)),
        w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap()
}

#[test]
fn preempted_job_issues_no_iterations_and_resumes_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path());
    let mut ex = executor(&w);
    ex.prepare_background(&w).unwrap();
    ex.start_background();
    ex.preempt_background(0).unwrap();
    for _ in 0..5 {
        ex.pump().unwrap();
    }
    let r = ex.finish_background(1.0).unwrap();
    assert_eq!(r[0].iterations, 0, "{r:?}");
    ex.start_background();
    ex.resume_background(0).unwrap();
    // The CPU device runs an iteration as it is issued; the next pump sees
    // it done and issues another.
    for _ in 0..4 {
        ex.pump().unwrap();
    }
    let r = ex.finish_background(1.0).unwrap();
    assert_eq!(r[0].iterations, 3, "{r:?}");
    assert!(r[0].gemms >= 1 && r[0].iteration_ms > 0.0, "{r:?}");
    // A GPU without a job refuses the scheduler's actions by name.
    assert!(ex.preempt_background(1).is_err());
}

#[test]
fn replay_runs_the_job_between_requests_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path());
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.1, 0), (0.3, 0), (0.35, 0)]);
    let out = dir.path().join("out");
    let r = replay::replay(executor(&w), &w, &s, &out).unwrap();
    assert_eq!(r.summary.requests, 3);
    // Run to duration_s at least, as sim counts the job.
    assert!(r.run.wall_s >= w.duration_s, "{}", r.run.wall_s);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let b = &summary["background"][0];
    assert_eq!(b["name"], "train");
    assert_eq!(b["gpu"], 0);
    let iterations = b["iterations"].as_u64().unwrap();
    let per_s = b["iterations_per_s"].as_f64().unwrap();
    let share = b["share"].as_f64().unwrap();
    assert!(iterations >= 1, "{b}");
    assert!(
        (per_s - iterations as f64 / r.run.wall_s).abs() < 1e-9,
        "{b}"
    );
    // The iterations' own GPU time fits in the run (whole ones, back to
    // back at most), and is the share.
    let busy = b["busy_s"].as_f64().unwrap();
    assert!(busy > 0.0 && busy <= r.run.wall_s, "{b}");
    assert!((share - busy / r.run.wall_s).abs() < 1e-9, "{b}");
    assert!(b["iteration_ms"].as_f64().unwrap() > 0.0, "{b}");
}
