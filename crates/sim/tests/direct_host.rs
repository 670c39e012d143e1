//! Direct host access in the simulator (`policy.direct_host`): a cold
//! BERT-base request runs its embedding from host memory and finishes
//! sooner; the layer is never copied and takes no GPU memory; its reads
//! show on the link's track; GPT-2 (whose tied head would read the whole
//! vocabulary from host in every pass) keeps copying; off is unchanged;
//! runs are deterministic.

use std::path::Path;
use switchyard_core::{Schedule, Workload};
use switchyard_sim::{simulate, RequestRecord, SimOptions, SimResult, Track};

fn workload(arch: &str, direct: bool) -> Workload {
    let text = format!(
        "name: dh\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: 1 }}\n\
         models:\n  - {{ arch: {arch}, copies: 2, max_batch: 8 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\npolicy:\n  system: pipeswitch\n  direct_host: {direct}\n"
    );
    Workload::parse(Path::new("dh.yaml"), &text).unwrap()
}

fn run(w: &Workload) -> (SimResult, Vec<RequestRecord>) {
    // Each copy once, cold; then the first again, warm.
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0), (0.5, 1), (1.0, 0)]);
    let opts = SimOptions {
        progress: false,
        check_invariants: true,
        ..SimOptions::default()
    };
    let mut recs = Vec::new();
    let r = simulate(w, &s, &opts, &mut recs).unwrap();
    (r, recs)
}

#[test]
fn a_cold_bert_runs_its_embedding_from_host_and_finishes_sooner() {
    let (off, off_recs) = run(&workload("bert-base", false));
    let (on, on_recs) = run(&workload("bert-base", true));
    assert!(on.direct_host && !off.direct_host);
    let m = &on.models[0];
    let emb = switchyard_core::arch::builtin("bert-base").unwrap().layers[0].param_bytes;
    assert_eq!((m.direct_host_layers, m.direct_host_bytes), (1, emb));
    // The embedding is never copied.
    assert_eq!(on.bytes_loaded + 2 * emb, off.bytes_loaded);
    let cold = |r: &[RequestRecord]| r[0].latency_s;
    assert!(
        cold(&on_recs) < 0.9 * cold(&off_recs),
        "{} vs {}",
        cold(&on_recs),
        cold(&off_recs)
    );
    // A warm pass loses at most the DP's bound.
    let warm = |r: &[RequestRecord]| r[2].latency_s;
    assert!(!on_recs[2].cold && warm(&on_recs) <= 1.03 * warm(&off_recs));
    // The reads are on the link's track; no copy names layer 0.
    let spans = &on.run.timeline.spans;
    let reads: Vec<_> = spans
        .iter()
        .filter(|s| s.track == Track::HostRead)
        .collect();
    assert_eq!(reads.len(), 3, "one read per pass");
    assert!(reads
        .iter()
        .all(|s| s.layers == (0, 1) && s.bytes > 0 && s.bytes < emb / 50));
    assert!(spans
        .iter()
        .filter(|s| s.track == Track::Copy)
        .all(|s| s.layers.0 >= 1));
}

#[test]
fn gpt2_keeps_copying_its_tied_embedding() {
    let (off, off_recs) = run(&workload("gpt2", false));
    let (on, on_recs) = run(&workload("gpt2", true));
    assert_eq!(on.models[0].direct_host_layers, 0);
    assert_eq!(on.bytes_loaded, off.bytes_loaded);
    assert_eq!(on_recs, off_recs);
}

#[test]
fn runs_are_deterministic() {
    let w = workload("bert-base", true);
    let (a, ra) = run(&w);
    let (b, rb) = run(&w);
    assert_eq!(ra, rb);
    assert_eq!(a.run.timeline.spans, b.run.timeline.spans);
}

/// One cold bert-base request with direct host access on `gpus` GPUs
/// (`loading`), on a host link of 1 GB/s (direct reads at 55.5 GB/s), so
/// the reads' share of the link outweighs a layer's compute.
fn slow_link_cold(gpus: u32, loading: &str) -> SimResult {
    let text = format!(
        "name: dh\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: {gpus} }}\n\
         models:\n  - {{ arch: bert-base, max_batch: 1 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\npolicy:\n  system: pipeswitch\n  \
         direct_host: true\n  loading: {loading}\n"
    );
    let mut w = Workload::parse(Path::new("dh.yaml"), &text).unwrap();
    let hw = &mut w.cluster.hardware;
    hw.direct_host = Some(hw.pinned.beta_bytes_per_s);
    hw.pinned.beta_bytes_per_s = 1e9;
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0)]);
    let opts = SimOptions {
        progress: false,
        check_invariants: true,
        ..SimOptions::default()
    };
    simulate(&w, &s, &opts, &mut Vec::new()).unwrap()
}

#[test]
fn host_reads_delay_the_copies_on_the_gpus_own_link() {
    for (gpus, loading) in [(1, "direct"), (2, "multipath")] {
        let r = slow_link_cold(gpus, loading);
        assert_eq!(r.models[0].direct_host_layers, 1, "{loading}");
        let spans = &r.run.timeline.spans;
        let read = spans.iter().find(|s| s.track == Track::HostRead).unwrap();
        // The reads' bytes at the link's rate: what the copies on GPU 0's
        // link lose to them (grouping::with_direct's model).
        let late = read.bytes as f64 / 1e9;
        let last_own = spans
            .iter()
            .filter(|s| s.gpu == 0 && s.track == Track::Copy)
            .map(|s| s.end_s)
            .fold(0.0, f64::max);
        let pass = spans.iter().find(|s| s.track == Track::Compute).unwrap();
        // The last copied layers wait for their piece over GPU 0's link,
        // which lands `late` after its copy span (more than a layer's
        // compute on this link: without the delay the pass would end
        // sooner).
        assert!(
            pass.end_s >= last_own + late,
            "{loading}: pass ends {} before the last own piece {} + reads {late}",
            pass.end_s,
            last_own
        );
        assert!(late > 1e-4, "{late}");
    }
}
