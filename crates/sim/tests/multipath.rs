//! Multi-path loading in the simulator: a cold swap-in with an idle helper
//! takes about half as long; a helper loading for itself does not lend; a
//! helper's pieces contend with its own traffic; direct loading is what it
//! was; runs are deterministic.

use std::path::Path;
use switchyard_core::workload::{Loading, LoadingSpec};
use switchyard_core::{Schedule, Workload};
use switchyard_sim::{simulate, RequestRecord, SimOptions, SimResult, Track};

fn workload(loading: &str, copies: u32) -> Workload {
    workload_on(2, loading, copies)
}

fn workload_on(gpus: u32, loading: &str, copies: u32) -> Workload {
    let text = format!(
        "name: mp\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: {gpus} }}\n\
         models:\n  - {{ arch: opt-6.7b, copies: {copies}, max_batch: 1 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\npolicy:\n  system: pipeswitch\n{loading}"
    );
    Workload::parse(Path::new("mp.yaml"), &text).unwrap()
}

const MULTIPATH: &str = "  loading: multipath\n";

fn opts() -> SimOptions {
    SimOptions {
        progress: false,
        check_invariants: true,
        ..SimOptions::default()
    }
}

fn run(w: &Workload, arrivals: Vec<(f64, u32)>) -> (SimResult, Vec<RequestRecord>) {
    let s = Schedule::from_arrivals(w.model_names(), arrivals);
    let mut recs = Vec::new();
    let r = simulate(w, &s, &opts(), &mut recs).unwrap();
    (r, recs)
}

fn peer_spans(r: &SimResult) -> Vec<&switchyard_sim::Span> {
    r.run
        .timeline
        .spans
        .iter()
        .filter(|s| matches!(s.track, Track::Peer { .. }))
        .collect()
}

#[test]
fn a_cold_swap_in_with_an_idle_helper_takes_about_half_as_long() {
    let (direct, d) = run(&workload("", 1), vec![(0.0, 0)]);
    let (multi, m) = run(&workload(MULTIPATH, 1), vec![(0.0, 0)]);
    let gain = d[0].latency_s / m[0].latency_s;
    assert!((1.8..2.05).contains(&gain), "gain {gain}");
    // Same bytes, part of them forwarded over the peer link into GPU 0.
    assert_eq!(direct.bytes_loaded, multi.bytes_loaded);
    let peers = peer_spans(&multi);
    assert!(!peers.is_empty());
    assert!(peers
        .iter()
        .all(|s| s.gpu == 0 && s.track == Track::Peer { from: 1 }));
    let forwarded: u64 = peers.iter().map(|s| s.bytes).sum();
    let share = forwarded as f64 / multi.bytes_loaded as f64;
    assert!((0.45..0.51).contains(&share), "share {share}");
    // The helper's link carried those pieces: copy spans on GPU 1.
    assert!(multi
        .run
        .timeline
        .spans
        .iter()
        .any(|s| s.gpu == 1 && s.track == Track::Copy));
    assert_eq!(multi.multipath_helpers, 1);
    assert_eq!(direct.multipath_helpers, 0);
}

#[test]
fn a_gpu_loading_for_itself_does_not_lend_and_its_load_contends_with_lent_pieces() {
    let w = workload(MULTIPATH, 2);
    // Model 1 alone on GPU 1.
    let (_, solo) = run(&w, vec![(0.0, 1)]);
    // Model 0 first (GPU 1 lends), then model 1 at once: GPU 0 is loading
    // for itself, so it does not lend, and model 1's copies queue behind
    // the pieces GPU 1 carries for GPU 0.
    let (r, recs) = run(&w, vec![(0.0, 0), (0.0, 1)]);
    let peers = peer_spans(&r);
    assert!(!peers.is_empty());
    assert!(
        peers.iter().all(|s| s.model == 0 && s.gpu == 0),
        "only model 0 is helped"
    );
    let m1 = recs.iter().find(|x| x.model.ends_with("-1")).unwrap();
    assert!(
        m1.latency_s > solo[0].latency_s * 1.2,
        "contention: {} vs alone {}",
        m1.latency_s,
        solo[0].latency_s
    );
}

#[test]
fn direct_loading_is_unchanged_and_runs_are_deterministic() {
    let arrivals: Vec<(f64, u32)> = (0..12).map(|i| (0.1 * i as f64, i % 3)).collect();
    let (a, ra) = run(&workload("", 3), arrivals.clone());
    let (b, rb) = run(&workload("  loading: direct\n", 3), arrivals.clone());
    assert_eq!(ra, rb);
    assert_eq!(a.run.timeline, b.run.timeline);
    let mut w = workload(MULTIPATH, 3);
    let (c, rc) = run(&w, arrivals.clone());
    let (d, rd) = run(&w, arrivals.clone());
    assert_eq!(rc, rd);
    assert_eq!(c.run.timeline, d.run.timeline);
    // Switched off by the override, multipath is direct loading again.
    w.loading = w.loading.with_mode(Loading::Direct, &w.cluster).unwrap();
    assert_eq!(w.loading, LoadingSpec::default());
    let (_, re) = run(&w, arrivals);
    assert_eq!(re, ra);
}

#[test]
fn the_bundled_bursty_workload_keeps_its_memory_invariants() {
    let w = Workload::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/multipath_bursty.yaml"),
    )
    .unwrap();
    let s = switchyard_core::arrivals::generate(&w).unwrap();
    let mut recs = Vec::new();
    let r = simulate(&w, &s, &opts(), &mut recs).unwrap();
    assert_eq!(recs.len(), s.requests.len());
    assert!(!peer_spans(&r).is_empty());
}

#[test]
fn four_gpus_lend_three_links_into_one() {
    let (_, d) = run(&workload_on(4, "", 1), vec![(0.0, 0)]);
    let k3 = "  loading: multipath\n  multipath_helpers: 3\n";
    let (r, m) = run(&workload_on(4, k3, 1), vec![(0.0, 0)]);
    let gain = d[0].latency_s / m[0].latency_s;
    // Four host links into GPU 0 (4 x 55.5 GB/s, under its 370 GB/s of
    // peer ingress), less the copies' fixed costs.
    assert!((3.3..4.05).contains(&gain), "gain {gain}");
    let mut from: Vec<u32> = peer_spans(&r)
        .iter()
        .map(|s| match s.track {
            Track::Peer { from } => from,
            _ => unreachable!(),
        })
        .collect();
    from.sort_unstable();
    from.dedup();
    assert_eq!(from, vec![1, 2, 3]);
}

/// A cold batch of eight of bert-base on two GPUs, multi-path loading
/// with `grouping` (`policy.multipath_grouping`).
fn bert_batch8(grouping: &str) -> (SimResult, Vec<RequestRecord>) {
    let text = format!(
        "name: mp\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: 2 }}\n\
         models:\n  - {{ arch: bert-base, max_batch: 8 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\npolicy:\n  system: pipeswitch\n\
         \x20 loading: multipath\n  multipath_grouping: {grouping}\n"
    );
    let w = Workload::parse(Path::new("mp.yaml"), &text).unwrap();
    run(&w, vec![(0.0, 0); 8])
}

#[test]
fn helper_aware_groups_are_what_the_load_copies_and_start_compute_sooner() {
    let (helpers, h) = bert_batch8("helpers");
    let (one, o) = bert_batch8("one_link");
    let m = &helpers.models[0];
    // The summary names both plans (at the largest batch).
    assert!(m.multipath_groups > m.one_link_groups, "{m:?}");
    assert_eq!(one.models[0].multipath_groups, 0);
    let groups = |r: &SimResult| {
        let mut g: Vec<(u32, u32)> = r
            .run
            .timeline
            .spans
            .iter()
            .filter(|s| s.gpu == 0 && s.track == Track::Copy)
            .map(|s| s.layers)
            .collect();
        g.dedup();
        g.len() as u64
    };
    // The load goes out at the first arrival, planned for a batch of one:
    // smaller groups than the one-link plan's there too.
    assert!(groups(&helpers) > groups(&one));
    assert!(h[0].latency_s < o[0].latency_s, "{h:?} vs {o:?}");
}
