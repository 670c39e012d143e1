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

#[test]
fn validation_workloads_have_at_least_2000_requests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/validation");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let w = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let count = arrivals::generate(&w).unwrap().requests.len();
        assert!(count >= 2000, "{}: {count} requests", path.display());
        n += 1;
    }
    assert!(n >= 4);
}
