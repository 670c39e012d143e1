//! `policy.offload` in the simulator: offloads timed on each GPU's
//! device-to-host lane at the pinned link's cost, a load that needs their
//! memory starting only once they are done, and one that does not
//! overlapping them.

use std::path::Path;
use switchyard_core::timeline::{Span, Track};
use switchyard_core::{arrivals, Workload};
use switchyard_sim::{simulate, SimOptions, SimResult};

/// Two models of 20 x 100 MB taking turns on one GPU of `memory_gib`.
fn two_models(memory_gib: f64, policy: &str) -> Workload {
    let text = format!(
        "name: off\nseed: 3\nduration_s: 10\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1, gpu_memory_gib: {memory_gib} }}\n\
         models:\n  - {{ name: m, copies: 2, layers: 20, layer_mb: 100, layer_ms: 1.0 }}\n\
         arrivals: {{ process: round_robin, rate: 2 }}\n\
         policy: {policy}\n"
    );
    Workload::parse(Path::new("off.yaml"), &text).unwrap()
}

fn run(w: &Workload) -> SimResult {
    let opts = SimOptions {
        progress: false,
        check_invariants: true,
        ..SimOptions::default()
    };
    let schedule = arrivals::generate(w).unwrap();
    simulate(w, &schedule, &opts, &mut Vec::new()).unwrap()
}

fn spans(r: &SimResult, track: Track) -> Vec<&Span> {
    r.run
        .timeline
        .spans
        .iter()
        .filter(|s| s.track == track)
        .collect()
}

#[test]
fn a_load_that_needs_the_memory_waits_for_the_offload() {
    // 6 GiB: 2 for weights, one model (1.86 GiB) at a time.
    let w = two_models(6.0, "{ system: computron, offload: true }");
    let r = run(&w);
    let off = r.offloads.expect("offloads reported");
    assert_eq!(off.count, r.loads - 1, "every load but the first evicts");
    assert_eq!(off.bytes, off.count * 2_000_000_000);
    let link = w.cluster.hardware.pinned.time(2_000_000_000);
    assert!((off.mean_s - link).abs() < 1e-9, "{} vs {link}", off.mean_s);
    let offloads = spans(&r, Track::Offload);
    let loads = spans(&r, Track::Copy);
    assert_eq!(offloads.len() as u64, off.count);
    for (o, l) in offloads.iter().zip(&loads[1..]) {
        assert_ne!(o.model, l.model);
        assert!(
            l.start_s >= o.end_s,
            "load at {} before offload end {}",
            l.start_s,
            o.end_s
        );
    }
    // The same run without offload: the load starts at once, and the
    // requests finish sooner.
    let plain = run(&two_models(6.0, "{ system: computron }"));
    assert!(plain.offloads.is_none());
    assert!(spans(&plain, Track::Offload).is_empty());
    assert!(plain.summary.mean_s + 0.9 * link < r.summary.mean_s);
}

#[test]
fn a_load_with_room_overlaps_the_offload() {
    // Memory for both; `max_loaded: 1` evicts anyway.
    let w = two_models(20.0, "{ system: computron, max_loaded: 1, offload: true }");
    let r = run(&w);
    let offloads = spans(&r, Track::Offload);
    let loads = spans(&r, Track::Copy);
    assert!(!offloads.is_empty());
    for (o, l) in offloads.iter().zip(&loads[1..]) {
        assert_eq!(l.start_s, o.start_s, "both directions at once");
    }
    let plain = run(&two_models(20.0, "{ system: computron, max_loaded: 1 }"));
    assert_eq!(plain.summary, r.summary, "offloads off the critical path");
}
