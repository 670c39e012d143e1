//! Schedules are a pure function of the workload and its seed.

use std::path::Path;
use switchyard_core::{arrivals, Workload};

fn bytes_for(seed: u64, dir: &Path) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/bursty.yaml");
    let mut w = Workload::load(&root).unwrap();
    w.seed = seed;
    let path = dir.join(format!("schedule-{seed}.csv"));
    arrivals::generate(&w).unwrap().write_csv(&path).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = bytes_for(42, a.path());
    assert_eq!(first, bytes_for(42, b.path()));
    assert_ne!(first, bytes_for(43, b.path()));
    assert!(first.starts_with(b"id,arrival_s,model\n"));
}

#[test]
fn every_bundled_workload_loads_and_generates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let w = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let s = arrivals::generate(&w).unwrap();
            assert!(!s.requests.is_empty(), "{}", path.display());
            assert!(s
                .requests
                .windows(2)
                .all(|p| p[0].arrival_s <= p[1].arrival_s));
            n += 1;
        }
    }
    assert!(n >= 3);
}

/// The validation set: two halves (`tune/`, calibrated and tuned on, and
/// `holdout/`, only reported), each workload short enough to replay in real
/// time on a borrowed GPU (at most 40 s) yet with at least 1,000 requests;
/// together they cover every arrival process, system and eviction policy,
/// computron with tensor and with pipeline parallelism, one and two GPUs.
#[test]
fn validation_set_is_split_in_two_and_covers_every_process_system_and_policy() {
    use std::collections::BTreeSet;
    use switchyard_core::workload::Process;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/validation");
    let mut covered = BTreeSet::new();
    for half in ["tune", "holdout"] {
        let mut n = 0;
        for entry in std::fs::read_dir(root.join(half)).unwrap() {
            let path = entry.unwrap().path();
            let w = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let count = arrivals::generate(&w).unwrap().requests.len();
            assert!(count >= 1000, "{}: {count} requests", path.display());
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            // The four tuned on before the split keep their length.
            let legacy = [
                "bursty.yaml",
                "poisson.yaml",
                "round_robin.yaml",
                "two_gpus.yaml",
            ];
            if half == "holdout" || !legacy.contains(&name.as_str()) {
                assert!(
                    w.duration_s <= 40.0,
                    "{}: {} s",
                    path.display(),
                    w.duration_s
                );
            }
            let process = match w.arrivals.process {
                Process::Poisson { .. } => "poisson",
                Process::Gamma { .. } => "gamma",
                Process::RoundRobin { .. } => "round_robin",
                Process::OnOff { .. } if w.arrivals.per_model => "on_off per_model",
                Process::OnOff { .. } => "on_off",
                Process::Trace { .. } => "trace",
                Process::ClosedLoop(_) => "closed_loop",
            };
            covered.insert(format!("process {process}"));
            covered.insert(format!("system {:?}", w.policy.system));
            covered.insert(format!("eviction {:?}", w.policy.eviction));
            covered.insert(format!("gpus {}", w.cluster.gpus));
            if w.policy.system == switchyard_core::workload::System::Computron {
                for m in &w.models {
                    covered.insert(format!("computron tp {} pp {}", m.tp, m.pp));
                }
            }
            n += 1;
        }
        assert!(n >= 5, "{half}: {n} workloads");
    }
    for want in [
        "process poisson",
        "process gamma",
        "process round_robin",
        "process on_off",
        "process on_off per_model",
        "process trace",
        "system Computron",
        "system Pipeswitch",
        "system StopAndStart",
        "system Resident",
        "system Streaming",
        "eviction Lru",
        "eviction Lfu",
        "eviction Belady",
        "gpus 1",
        "gpus 2",
        "computron tp 2 pp 1",
        "computron tp 1 pp 2",
    ] {
        assert!(
            covered.contains(want),
            "no validation workload covers {want}: {covered:?}"
        );
    }
}
