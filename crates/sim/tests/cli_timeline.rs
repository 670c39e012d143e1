//! `sim`'s timeline flags end to end: the span cap says when it bites (on
//! stderr and in `summary.json`), the window keeps only overlapping spans,
//! bad values are refused before anything is written, and idle GPUs cost
//! nothing in `timeline.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn poisson() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/poisson.yaml")
}

fn sim(workload: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "-w",
            workload.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "exit {:?}: {err}", o.status.code());
    err
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The spans (`ph: X`) of a timeline: (start, end) in seconds.
fn spans(trace: &serde_json::Value) -> Vec<(f64, f64)> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_f64().unwrap() / 1e6;
            (ts, ts + e["dur"].as_f64().unwrap() / 1e6)
        })
        .collect()
}

#[test]
fn the_span_cap_says_when_it_bites() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let err = ok(&sim(&poisson(), &full, &[]));
    assert!(!err.contains("timeline.json holds"), "{err}");
    let summary = json(&full.join("summary.json"));
    assert!(summary.get("timeline_cut").is_none(), "no cut, no field");
    let all = spans(&json(&full.join("timeline.json")));
    assert!(all.len() > 100, "{} spans", all.len());

    let cut = dir.path().join("cut");
    let err = ok(&sim(&poisson(), &cut, &["--timeline-max-spans", "100"]));
    assert!(
        err.contains("timeline.json holds the first 100 spans"),
        "{err}"
    );
    let trace = json(&cut.join("timeline.json"));
    let kept = spans(&trace);
    assert_eq!(kept, all[..100], "the cap keeps the first spans");
    let dropped = (all.len() - 100) as u64;
    assert_eq!(trace["otherData"]["dropped_spans"], dropped);
    let c = &json(&cut.join("summary.json"))["timeline_cut"];
    assert_eq!(c["max_spans"], 100);
    assert_eq!(c["kept_spans"], 100);
    assert_eq!(c["dropped_spans"], dropped);
    // Complete up to that time: every span of the full run starting
    // before it is among those kept.
    let until = c["complete_until_s"].as_f64().unwrap();
    assert!(until > 0.0);
    let before = all.iter().filter(|s| s.0 < until).count();
    assert!(before <= 100 && kept.iter().filter(|s| s.0 < until).count() == before);
    // The records do not depend on the timeline.
    assert_eq!(
        std::fs::read(full.join("requests.csv")).unwrap(),
        std::fs::read(cut.join("requests.csv")).unwrap()
    );
}

#[test]
fn the_window_keeps_the_spans_that_overlap_it() {
    let dir = tempfile::tempdir().unwrap();
    let (full, win) = (dir.path().join("full"), dir.path().join("win"));
    ok(&sim(&poisson(), &full, &[]));
    let err = ok(&sim(
        &poisson(),
        &win,
        &["--timeline-from", "100", "--timeline-to", "120"],
    ));
    assert!(!err.contains("timeline.json holds"), "{err}");
    let all = spans(&json(&full.join("timeline.json")));
    let kept = spans(&json(&win.join("timeline.json")));
    let expected: Vec<_> = all
        .iter()
        .copied()
        .filter(|&(s, e)| e >= 100.0 - 1e-6 && s <= 120.0 + 1e-6)
        .collect();
    assert!(!kept.is_empty() && kept.len() < all.len());
    assert_eq!(kept, expected);
}

#[test]
fn bad_timeline_flags_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        &["--timeline-from", "5", "--timeline-to", "4"][..],
        &["--timeline-to", "0"],
        &["--timeline-from", "-1"],
        &["--timeline-from", "nan"],
        &["--timeline-max-spans", "0"],
    ] {
        let out = dir.path().join("out");
        let o = sim(&poisson(), &out, bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(!out.exists(), "{bad:?} wrote {}", out.display());
    }
}

#[test]
fn idle_gpus_are_not_named_in_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("wide.yaml");
    std::fs::write(
        &w,
        "name: wide\nseed: 1\nduration_s: 5\n\
         cluster: { hardware: h200-pcie5, gpus: 4096 }\n\
         models:\n  - { name: m, copies: 3, layers: 2, layer_mb: 10, layer_ms: 0.05, max_batch: 4, slo_ms: 100 }\n\
         arrivals: { process: poisson, rate: 50 }\n\
         policy: { system: computron, eviction: lru }\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    ok(&sim(&w, &out, &[]));
    let trace = json(&out.join("timeline.json"));
    let events = trace["traceEvents"].as_array().unwrap();
    let mut busy: Vec<u64> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    busy.sort_unstable();
    busy.dedup();
    let named: Vec<u64> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(named, busy);
    assert!(named.len() <= 3, "3 models use at most 3 of 4096 GPUs");
}
