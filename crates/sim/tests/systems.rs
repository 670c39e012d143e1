//! Every bundled workload runs under every system; outputs are deterministic.

use std::path::{Path, PathBuf};
use switchyard_core::records::RecordWriter;
use switchyard_core::workload::{PolicySpec, System};
use switchyard_core::{arrivals, Error, Workload};
use switchyard_sim::{simulate_policy, write_summary, write_timeline, RequestRecord, SimOptions};

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

fn quiet() -> SimOptions {
    SimOptions {
        progress: false,
        ..SimOptions::default()
    }
}

#[test]
fn bundled_workloads_run_under_every_system() {
    for name in [
        "bursty.yaml",
        "worst_case.yaml",
        "poisson.yaml",
        "onoff.yaml",
    ] {
        let w = Workload::load(&experiments().join(name)).unwrap();
        let schedule = arrivals::generate(&w).unwrap();
        for system in System::ALL {
            let policy = PolicySpec { system, ..w.policy };
            let mut recs: Vec<RequestRecord> = Vec::new();
            match simulate_policy(&w, &schedule, policy, &quiet(), &mut recs) {
                Ok(r) => {
                    assert_eq!(
                        r.summary.requests as usize,
                        schedule.requests.len(),
                        "{name} {system:?}"
                    );
                    assert_eq!(recs.len(), schedule.requests.len());
                    assert!(r.summary.mean_s > 0.0);
                    if system == System::Resident {
                        assert_eq!(r.loads, 0);
                    } else {
                        assert!(r.loads > 0, "{name} {system:?}");
                    }
                    eprintln!(
                        "{name:16} {:14} mean {:8.4} p99 {:8.4} loads {:6} slo {:.3}",
                        system.name(),
                        r.summary.mean_s,
                        r.summary.p99_s,
                        r.loads,
                        r.summary.slo_attainment
                    );
                }
                Err(Error::Input(e)) => {
                    assert_eq!(system, System::Resident, "{name}: {e}");
                    assert_eq!(e.field, "policy.system");
                    assert!(e.message.contains("does not fit"), "{e}");
                }
                Err(e) => panic!("{name} {system:?}: {e}"),
            }
        }
    }
}

fn run_to(dir: &Path, w: &Workload) {
    let schedule = arrivals::generate(w).unwrap();
    let mut out = RecordWriter::create(&dir.join("requests.csv")).unwrap();
    let r = switchyard_sim::simulate(w, &schedule, &quiet(), &mut out).unwrap();
    out.finish().unwrap();
    write_summary(&dir.join("summary.json"), &r).unwrap();
    write_timeline(&dir.join("timeline.json"), &r.run.timeline).unwrap();
}

#[test]
fn same_seed_gives_byte_identical_outputs() {
    let w = Workload::load(&experiments().join("bursty.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run_to(&a, &w);
    run_to(&b, &w);
    for f in ["requests.csv", "summary.json", "timeline.json"] {
        let x = std::fs::read(a.join(f)).unwrap();
        assert!(!x.is_empty());
        assert_eq!(x, std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("summary.json")).unwrap()).unwrap();
    for key in [
        "requests",
        "mean_s",
        "p50_s",
        "p90_s",
        "p99_s",
        "max_s",
        "slo_attainment",
        "loads",
        "bytes_loaded",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
        assert!(
            summary["models"][0].get(key).is_some(),
            "per-model summary lacks {key}"
        );
    }
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("timeline.json")).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    assert!(events.iter().any(|e| e["cat"] == "copy"));
    assert!(events.iter().any(|e| e["cat"] == "compute"));
    // A different seed gives a different run.
    let mut w2 = w.clone();
    w2.seed += 1;
    let c = dir.path().join("c");
    run_to(&c, &w2);
    assert_ne!(
        std::fs::read(a.join("requests.csv")).unwrap(),
        std::fs::read(c.join("requests.csv")).unwrap()
    );
}

#[test]
fn timeline_is_capped() {
    let w = Workload::load(&experiments().join("worst_case.yaml")).unwrap();
    let schedule = arrivals::generate(&w).unwrap();
    let opts = SimOptions {
        timeline_max_events: 10,
        ..quiet()
    };
    let r = switchyard_sim::simulate(&w, &schedule, &opts, &mut switchyard_sim::NullSink).unwrap();
    assert_eq!(r.run.timeline.spans.len(), 10);
    assert!(r.run.timeline.dropped > 0);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("timeline.json");
    write_timeline(&p, &r.run.timeline).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(v["otherData"]["dropped_spans"], r.run.timeline.dropped);
}
