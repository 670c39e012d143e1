//! Cases with a known answer: M/D/1 queueing, and swaps on a round-robin
//! schedule where every request finds its model swapped out.

use std::path::Path;
use switchyard_core::cost::ComputeTable;
use switchyard_core::workload::{Grouping, PolicySpec, System};
use switchyard_core::{arrivals, Workload};
use switchyard_sim::{simulate_policy, RequestRecord, SimOptions};

fn quiet() -> SimOptions {
    SimOptions {
        progress: false,
        timeline: false,
        ..SimOptions::default()
    }
}

fn workload(text: &str) -> Workload {
    Workload::parse(Path::new("test.yaml"), text).unwrap()
}

#[test]
fn resident_poisson_batch_one_matches_md1_mean() {
    // Service time D = 10 layers x 1 ms; rate 50/s gives rho = 0.5.
    let w = workload(
        "name: md1\nseed: 11\nduration_s: 4000\n\
         cluster: { hardware: h200-pcie5, gpus: 1 }\n\
         models:\n  - { name: m, layers: 10, layer_mb: 10, layer_ms: 1.0, max_batch: 1 }\n\
         arrivals: { process: poisson, rate: 50 }\n\
         policy: { system: resident }\n",
    );
    let schedule = arrivals::generate(&w).unwrap();
    assert!(
        schedule.requests.len() >= 195_000,
        "{}",
        schedule.requests.len()
    );
    let r = simulate_policy(
        &w,
        &schedule,
        w.policy,
        &quiet(),
        &mut switchyard_sim::NullSink,
    )
    .unwrap();
    let (lambda, d) = (50.0, 0.010);
    let rho: f64 = lambda * d;
    let expected = d + lambda * d * d / (2.0 * (1.0 - rho));
    let err = (r.summary.mean_s - expected).abs() / expected;
    eprintln!(
        "M/D/1: {} requests, mean {} vs {expected}",
        r.summary.requests, r.summary.mean_s
    );
    assert!(
        err < 0.02,
        "mean {} vs M/D/1 {expected} ({:.2}% off)",
        r.summary.mean_s,
        err * 100.0
    );
    assert_eq!(r.loads, 0);
}

/// Four models of 20 x 100 MB on one GPU with 2 GiB for weights: one fits at
/// a time; requests every 0.5 s in turn, so each finds its model swapped out
/// and the GPU idle.
fn round_robin(system: System) -> (Workload, Vec<RequestRecord>) {
    let w = workload(
        "name: rr\nseed: 5\nduration_s: 40\n\
         cluster: { hardware: h200-pcie5, gpus: 1, gpu_memory_gib: 6 }\n\
         models:\n  - { name: m, copies: 4, layers: 20, layer_mb: 100, layer_ms: 1.0 }\n\
         arrivals: { process: round_robin, rate: 2 }\n\
         policy: { system: stop-and-start }\n",
    );
    let schedule = arrivals::generate(&w).unwrap();
    let policy = PolicySpec {
        system,
        grouping: Grouping::Optimal,
        ..w.policy
    };
    let mut recs = Vec::new();
    simulate_policy(&w, &schedule, policy, &quiet(), &mut recs).unwrap();
    assert_eq!(recs.len(), schedule.requests.len());
    (w, recs)
}

#[test]
fn stop_and_start_latency_is_load_plus_compute_exactly() {
    let (w, recs) = round_robin(System::StopAndStart);
    let hw = &w.cluster.hardware;
    let m = &w.models[0];
    let load = hw.pageable.time(m.shape.total_bytes());
    let compute = ComputeTable::new(hw, &m.shape, 1, 1).time(0..20, 1);
    for r in &recs {
        assert!(r.cold);
        assert!(
            (r.latency_s - (load + compute)).abs() < 1e-9,
            "request {}: {} vs load {load} + compute {compute}",
            r.id,
            r.latency_s
        );
    }
}

#[test]
fn pipeswitch_beats_stop_and_start_and_respects_the_bound() {
    let (w, slow) = round_robin(System::StopAndStart);
    let (_, fast) = round_robin(System::Pipeswitch);
    let hw = &w.cluster.hardware;
    let m = &w.models[0];
    let load = hw.pinned.time(m.shape.total_bytes());
    let compute = ComputeTable::new(hw, &m.shape, 1, 1).time(0..20, 1);
    for (a, b) in fast.iter().zip(&slow) {
        assert_eq!(a.id, b.id);
        assert!(a.latency_s < b.latency_s);
        assert!(
            a.latency_s >= load.max(compute) - 1e-9,
            "pipeswitch {} below max(load {load}, compute {compute})",
            a.latency_s
        );
    }
    // Pipelining hides most of the compute behind the copy.
    assert!(fast[0].latency_s < load + compute);
}

#[test]
fn request_overhead_adds_to_every_latency_and_jitter_keeps_the_mean() {
    let (base_w, base) = round_robin(System::StopAndStart);
    let mut w = base_w.clone();
    w.cluster.hardware.compute.request_overhead_s = 250e-6;
    let schedule = arrivals::generate(&w).unwrap();
    let mut recs = Vec::new();
    simulate_policy(&w, &schedule, w.policy, &quiet(), &mut recs).unwrap();
    for (a, b) in recs.iter().zip(&base) {
        assert!((a.latency_s - b.latency_s - 250e-6).abs() < 1e-12);
    }
    // Jitter: latencies vary, their mean stays (within 1%), and the same
    // seed draws the same times.
    w.cluster.hardware.jitter.copy_cv = 0.05;
    w.cluster.hardware.jitter.compute_cv = 0.05;
    let run = || {
        let mut recs = Vec::new();
        simulate_policy(&w, &schedule, w.policy, &quiet(), &mut recs).unwrap();
        recs
    };
    let (x, y) = (run(), run());
    assert_eq!(x, y);
    let mean = |v: &[RequestRecord]| v.iter().map(|r| r.latency_s).sum::<f64>() / v.len() as f64;
    assert!((mean(&x) / mean(&recs) - 1.0).abs() < 0.01);
    assert!(x
        .iter()
        .zip(&recs)
        .any(|(a, b)| (a.latency_s - b.latency_s).abs() > 1e-6));
}

/// Two stop-and-start loads at the same instant on two GPUs: with their own
/// links they overlap; when the profile says pageable copies share one host
/// path (as in `replay`), the second waits for the first.
#[test]
fn shared_pageable_path_serializes_loads_of_different_gpus() {
    let mut w = workload(
        "name: two\nseed: 1\nduration_s: 1\n\
         cluster: { hardware: h200-pcie5, gpus: 2, gpu_memory_gib: 6 }\n\
         models:\n  - { name: m, copies: 2, layers: 10, layer_mb: 100, layer_ms: 1.0 }\n\
         arrivals: { process: round_robin, rate: 2 }\n\
         policy: { system: stop-and-start }\n",
    );
    let schedule = switchyard_core::Schedule {
        models: w.model_names(),
        requests: (0..2)
            .map(|i| switchyard_core::schedule::Request {
                id: i,
                arrival_s: 0.0,
                model: i as u32,
            })
            .collect(),
    };
    let load = w
        .cluster
        .hardware
        .pageable
        .time(w.models[0].shape.total_bytes());
    let mut finish = |shared: bool| {
        w.cluster.hardware.pageable_shared = shared;
        let mut recs = Vec::new();
        simulate_policy(&w, &schedule, w.policy, &quiet(), &mut recs).unwrap();
        let mut lat: Vec<f64> = recs.iter().map(|r| r.latency_s).collect();
        lat.sort_by(f64::total_cmp);
        lat
    };
    let own = finish(false);
    assert!((own[1] - own[0]).abs() < 1e-9, "own links overlap: {own:?}");
    let shared = finish(true);
    assert!((shared[0] - own[0]).abs() < 1e-9, "{shared:?} vs {own:?}");
    assert!(
        (shared[1] - shared[0] - load).abs() < 1e-9,
        "second waits one load: {shared:?}"
    );
}

/// Micro-batches: eight queued requests on a model split in two balanced
/// stages. Whole, they finish together; in micro-batches of two they finish
/// one stage-time apart (stage 1 runs one while stage 0 runs the next),
/// the first well before the whole batch would.
#[test]
fn micro_batches_flow_through_the_stages() {
    let run = |micro: u32| {
        let w = workload(&format!(
            "name: mb\nseed: 1\nduration_s: 1\n\
             cluster: {{ hardware: h200-pcie5, gpus: 2 }}\n\
             models:\n  - {{ name: m, layers: 8, layer_mb: 10, layer_ms: 1.0, max_batch: 8, \
             micro_batch: {micro}, parallel: {{ tp: 1, pp: 2 }} }}\n\
             arrivals: {{ process: poisson, rate: 1 }}\n\
             policy: {{ system: resident }}\n"
        ));
        let schedule = switchyard_core::Schedule {
            models: w.model_names(),
            // Request 0 keeps the first stage busy while 1..=8 queue up
            // behind it; they are then dispatched together.
            requests: (0..9)
                .map(|i| switchyard_core::schedule::Request {
                    id: i,
                    arrival_s: if i == 0 { 0.0 } else { 1e-4 },
                    model: 0,
                })
                .collect(),
        };
        let mut recs = Vec::new();
        simulate_policy(&w, &schedule, w.policy, &quiet(), &mut recs).unwrap();
        assert_eq!(recs.len(), 9);
        recs.retain(|r| r.id > 0);
        recs
    };
    let whole = run(8);
    assert!(whole
        .iter()
        .all(|r| r.batch_size == 8 && r.finish_s == whole[0].finish_s));
    let micro = run(2);
    assert!(micro.iter().all(|r| r.batch_size == 2));
    let mut finishes: Vec<f64> = micro.iter().map(|r| r.finish_s).collect();
    finishes.sort_by(f64::total_cmp);
    finishes.dedup();
    assert_eq!(finishes.len(), 4, "{finishes:?}");
    let gaps: Vec<f64> = finishes.windows(2).map(|p| p[1] - p[0]).collect();
    for g in &gaps {
        assert!((g - gaps[0]).abs() < 1e-9, "steady pipeline: {gaps:?}");
    }
    // Overlap: one stage-time apart, not a whole pass apart.
    assert!(
        gaps[0] < 0.75 * finishes[0],
        "{gaps:?} vs first {}",
        finishes[0]
    );
    assert!(finishes[0] < whole[0].finish_s);
}

#[test]
fn micro_batch_larger_than_max_batch_is_refused_with_its_line() {
    let e = Workload::parse(
        Path::new("mb.yaml"),
        "name: mb\nseed: 1\nduration_s: 1\ncluster: { hardware: h200-pcie5, gpus: 2 }\nmodels:\n  - name: m\n    layers: 8\n    layer_mb: 10\n    layer_ms: 1.0\n    max_batch: 4\n    micro_batch: 5\narrivals: { process: poisson, rate: 1 }\npolicy: { system: computron }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("mb.yaml:11") && e.contains("micro_batch") && e.contains("at most max_batch"),
        "{e}"
    );
}

#[test]
fn idle_penalty_lengthens_passes_that_start_on_an_idle_gpu() {
    // One resident model of 10 x 1 ms, requests 0.5 s apart: every pass
    // starts on a GPU idle for ~0.49 s, past the table's last gap.
    let mut w = workload(
        "name: idle\nseed: 3\nduration_s: 10\n\
         cluster: { hardware: h200-pcie5, gpus: 1 }\n\
         models:\n  - { name: m, layers: 10, layer_mb: 10, layer_ms: 1.0 }\n\
         arrivals: { process: round_robin, rate: 2 }\n\
         policy: { system: resident }\n",
    );
    let schedule = arrivals::generate(&w).unwrap();
    let run = |w: &Workload| {
        let mut recs: Vec<RequestRecord> = Vec::new();
        simulate_policy(w, &schedule, w.policy, &quiet(), &mut recs).unwrap();
        recs
    };
    let plain = run(&w);
    w.cluster.hardware.compute.idle_penalty = vec![(1e-3, 0.0), (0.1, 2e-3)];
    let idle = run(&w);
    assert_eq!(plain.len(), idle.len());
    for (a, b) in plain.iter().zip(&idle) {
        assert!(
            (b.latency_s - a.latency_s - 2e-3).abs() < 1e-9,
            "request {}: {} with the penalty vs {} without",
            a.id,
            b.latency_s,
            a.latency_s
        );
        assert!(
            (b.start_s - a.start_s).abs() < 1e-12,
            "start is before the penalty"
        );
    }
}

#[test]
fn cold_passes_run_at_the_queued_rate_once_the_host_is_ahead() {
    // Calibrated as issue-bound: 20 x 1 ms issued, 4 ms in all when the
    // launches are queued ahead of the GPU.
    let calibrate = |w: &mut Workload| {
        w.cluster.hardware.calibrated.insert(
            "m".into(),
            switchyard_core::hardware::CalibratedTimes {
                batch_sizes: vec![1],
                layer_s: vec![vec![1e-3; 20]],
                queued_pass_s: vec![4e-3],
                ..Default::default()
            },
        );
    };
    for system in [System::Pipeswitch, System::StopAndStart] {
        let (mut w, plain) = round_robin(system);
        calibrate(&mut w);
        let schedule = arrivals::generate(&w).unwrap();
        let policy = PolicySpec {
            system,
            grouping: Grouping::Optimal,
            ..w.policy
        };
        let mut queued: Vec<RequestRecord> = Vec::new();
        simulate_policy(&w, &schedule, policy, &quiet(), &mut queued).unwrap();
        let hw = &w.cluster.hardware;
        let bytes = w.models[0].shape.total_bytes();
        for (a, b) in plain.iter().zip(&queued) {
            assert!(b.cold);
            match system {
                // Pinned copies are issued at once: the host issues every
                // layer while the copies run, so what is left after the
                // last copy runs at the GPU's rate, and the pass still
                // takes its issue time of 20 ms at least.
                System::Pipeswitch => {
                    assert!(
                        b.latency_s < a.latency_s - 5e-4,
                        "{} vs {}",
                        b.latency_s,
                        a.latency_s
                    );
                    assert!(b.latency_s >= hw.pinned.time(bytes).max(20e-3) - 1e-9);
                }
                // A pageable copy holds the host until it is done: the
                // pass is issued after it, at the issue rate.
                _ => assert_eq!(a.latency_s, b.latency_s),
            }
        }
    }
}

#[test]
fn passes_on_two_gpus_share_the_host_that_issues_them() {
    // Two resident models of 10 x 1 ms on two GPUs, both asked for at once.
    let mut w = workload(
        "name: host\nseed: 3\nduration_s: 10\n\
         cluster: { hardware: h200-pcie5, gpus: 2 }\n\
         models:\n  - { name: m, copies: 2, layers: 10, layer_mb: 10, layer_ms: 1.0 }\n\
         arrivals: { process: round_robin, rate: 2 }\n\
         policy: { system: resident }\n",
    );
    let schedule = switchyard_core::Schedule {
        models: w.model_names(),
        requests: (0..2)
            .map(|m| switchyard_core::schedule::Request {
                id: m,
                arrival_s: 1.0,
                model: m as u32,
            })
            .collect(),
    };
    let run = |w: &Workload| {
        let mut recs: Vec<RequestRecord> = Vec::new();
        simulate_policy(w, &schedule, w.policy, &quiet(), &mut recs).unwrap();
        recs.sort_by_key(|r| r.id);
        recs
    };
    let apart = run(&w);
    assert!((apart[0].latency_s - 0.010).abs() < 1e-9);
    assert!((apart[1].latency_s - 0.010).abs() < 1e-9, "{apart:?}");
    // Issuing takes the host 4 ms of each 10 ms pass: the second pass
    // starts once the first is issued.
    w.cluster.hardware.calibrated.insert(
        "m".into(),
        switchyard_core::hardware::CalibratedTimes {
            batch_sizes: vec![1],
            layer_s: vec![vec![1e-3; 10]],
            issue_pass_s: vec![4e-3],
            ..Default::default()
        },
    );
    let shared = run(&w);
    let (first, second) = if shared[0].latency_s < shared[1].latency_s {
        (&shared[0], &shared[1])
    } else {
        (&shared[1], &shared[0])
    };
    assert!((first.latency_s - 0.010).abs() < 1e-9, "{shared:?}");
    assert!((second.latency_s - 0.014).abs() < 1e-9, "{shared:?}");
}
