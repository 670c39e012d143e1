//! The `sim` binary: schedules, flags and bad input.

mod common;
use common::sim;
use std::path::{Path, PathBuf};

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

#[test]
fn schedule_only_writes_schedule_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let w = experiments().join("bursty.yaml");
    let out = dir.path().join("a");
    let o = sim(&[
        "--workload",
        w.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--schedule-only",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = std::fs::read(out.join("schedule.csv")).unwrap();
    assert!(first.starts_with(b"id,arrival_s,model\n"));
    // Feeding the schedule back gives the same file.
    let again = dir.path().join("b");
    let o = sim(&[
        "--workload",
        w.to_str().unwrap(),
        "--schedule",
        out.join("schedule.csv").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--schedule-only",
    ]);
    assert!(o.status.success());
    assert_eq!(first, std::fs::read(again.join("schedule.csv")).unwrap());
}

/// A full run writes schedule.csv as it draws the requests (once); it must
/// be the very file `--schedule-only` writes, for a policy that reads the
/// future (Belady: drawn whole first) and one that does not.
#[test]
fn a_run_writes_the_schedule_schedule_only_writes() {
    let dir = tempfile::tempdir().unwrap();
    let w = experiments().join("bursty.yaml");
    let only = dir.path().join("only");
    let o = sim(&[
        "--workload",
        w.to_str().unwrap(),
        "--out",
        only.to_str().unwrap(),
        "--schedule-only",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read(only.join("schedule.csv")).unwrap();
    for eviction in ["lru", "belady"] {
        let run = dir.path().join(eviction);
        let o = sim(&[
            "--workload",
            w.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--eviction",
            eviction,
            "--no-timeline",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = std::fs::read(run.join("schedule.csv")).unwrap();
        assert!(got == want, "{eviction}: schedule.csv differs");
        let stderr = String::from_utf8_lossy(&o.stderr);
        let n = want.iter().filter(|&&b| b == b'\n').count() - 1;
        assert!(stderr.contains(&format!(" {n} requests over ")), "{stderr}");
    }
}

#[test]
fn bad_workload_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(experiments().join("bursty.yaml"))
        .unwrap()
        .replace("rate: 12", "rate: -1");
    std::fs::write(&bad, text).unwrap();
    let out = dir.path().join("out");
    let o = sim(&[
        "--workload",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml:") && err.contains("field `arrivals.rate`"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn bad_schedule_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s.csv");
    std::fs::write(
        &s,
        "id,arrival_s,model\n0,0.5,opt-13b-0\n1,0.7,no-such-model\n",
    )
    .unwrap();
    let w = experiments().join("bursty.yaml");
    let out = dir.path().join("out");
    let o = sim(&[
        "-w",
        w.to_str().unwrap(),
        "--schedule",
        s.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("s.csv:3: field `model`"), "{err}");
    assert!(!out.exists());
}

#[test]
fn bad_flag_exits_2() {
    let o = sim(&["--workload", "x.yaml", "--seed", "many"]);
    assert_eq!(o.status.code(), Some(2));
}
