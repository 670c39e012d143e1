//! Closed-loop arrivals in `sim`: each client's next request arrives only
//! once the simulation has finished its previous one (plus the think
//! time), clients keep sending to the end, turns with another task are
//! kept, and the CLI writes the arrivals it produced as schedule.csv.

mod common;
use common::sim;
use std::path::Path;
use switchyard_core::Workload;
use switchyard_sim::{simulate_closed, RequestRecord, SimOptions};

const W: &str = "name: closed\nseed: 3\nduration_s: 2\n\
    cluster: { hardware: v100-pcie3, gpus: 1 }\n\
    models:\n  - { name: train, layers: 8, layer_mb: 20, layer_ms: 1 }\n  \
    - { name: m, layers: 8, layer_mb: 20, layer_ms: 1, copies: 2 }\n\
    policy: { system: pipeswitch, max_loaded: 1 }\n";

fn workload(dir: &Path, arrivals: &str) -> (Workload, std::path::PathBuf) {
    let p = dir.join("w.yaml");
    std::fs::write(&p, format!("{W}arrivals: {arrivals}\n")).unwrap();
    (Workload::load(&p).unwrap(), p)
}

fn simulate(w: &Workload) -> Vec<RequestRecord> {
    let mut recs = Vec::new();
    let opts = SimOptions {
        check_invariants: true,
        ..SimOptions::default()
    };
    let (r, n, _) = simulate_closed(w, w.policy, &opts, &mut recs, None).unwrap();
    assert_eq!(n, recs.len() as u64);
    assert_eq!(r.summary.requests, n);
    recs.sort_by_key(|r| r.id);
    recs
}

#[test]
fn a_client_never_has_two_requests_outstanding_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = workload(
        dir.path(),
        "{ process: closed_loop, clients: 3, think_ms: 2 }",
    );
    let recs = simulate(&w);
    // Ids in arrival order.
    assert!(recs.windows(2).all(|p| p[0].arrival_s <= p[1].arrival_s));
    // Client c asks for model c: train, m-0, m-1 (three models, three clients).
    for model in ["train", "m-0", "m-1"] {
        let mine: Vec<_> = recs.iter().filter(|r| r.model == model).collect();
        assert!(mine.len() > 20, "{model}: {}", mine.len());
        assert_eq!(mine[0].arrival_s, 0.0);
        for p in mine.windows(2) {
            assert_eq!(
                p[1].arrival_s,
                switchyard_core::schedule::round_ns(p[0].finish_s + 0.002),
                "{model}: the next request arrives think time after the reply"
            );
        }
        // It keeps going to the end: its last request arrived within one
        // round trip of duration_s.
        let last = mine.last().unwrap();
        let gap = mine[mine.len() - 1].arrival_s - mine[mine.len() - 2].arrival_s;
        assert!(last.arrival_s > 2.0 - 2.0 * gap, "{last:?}");
    }
}

#[test]
fn clients_send_in_their_turns_and_each_turn_starts_cold() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = workload(
        dir.path(),
        "{ process: closed_loop, clients: 1, cycle_s: 0.25, cycle_task: train }",
    );
    let recs = simulate(&w);
    let task: Vec<f64> = recs
        .iter()
        .filter(|r| r.model == "train")
        .map(|r| r.arrival_s)
        .collect();
    assert_eq!(task, vec![0.0, 0.5, 1.0, 1.5]);
    let client: Vec<_> = recs.iter().filter(|r| r.model == "m-0").collect();
    for r in &client {
        let k = (r.arrival_s / 0.5).floor();
        let turn = k * 0.5 + 0.25;
        assert!(r.arrival_s >= turn && r.arrival_s < turn + 0.25, "{r:?}");
        // The first of each turn waits for its load (the task evicted it).
        assert_eq!(r.cold, r.arrival_s == turn, "{r:?}");
    }
    assert!(recs.iter().all(|r| r.model != "m-1"));
}

#[test]
fn the_cli_writes_the_produced_schedule_and_serves_it_back_as_fixed_times() {
    let dir = tempfile::tempdir().unwrap();
    let (_, w) = workload(
        dir.path(),
        "{ process: closed_loop, clients: 2, cycle_s: 0.25, cycle_task: train }",
    );
    let w = w.to_str().unwrap();
    let a = dir.path().join("a");
    let o = sim(&["-w", w, "-o", a.to_str().unwrap(), "--no-timeline"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let requests = std::fs::read(a.join("requests.csv")).unwrap();
    // Same inputs, same bytes.
    let b = dir.path().join("b");
    assert!(sim(&["-w", w, "-o", b.to_str().unwrap(), "--no-timeline"])
        .status
        .success());
    assert_eq!(requests, std::fs::read(b.join("requests.csv")).unwrap());
    // The produced arrivals served as fixed times give the same run.
    let c = dir.path().join("c");
    let schedule = a.join("schedule.csv");
    let o = sim(&[
        "-w",
        w,
        "--schedule",
        schedule.to_str().unwrap(),
        "-o",
        c.to_str().unwrap(),
        "--no-timeline",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(requests, std::fs::read(c.join("requests.csv")).unwrap());
    // What needs the arrivals ahead is refused, exit 2, nothing written.
    for extra in [
        &["--schedule-only"][..],
        &["--compare-systems"][..],
        &["--eviction", "belady"][..],
    ] {
        let d = dir.path().join("d");
        let mut args = vec!["-w", w, "-o", d.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = sim(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("arrivals.process") && err.contains("closed_loop"),
            "{err}"
        );
        assert!(!d.exists(), "{extra:?} wrote {}", d.display());
    }
}
