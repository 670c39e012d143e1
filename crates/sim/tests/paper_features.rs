//! The language additions of the papers' experiments, with known answers:
//! a fixed number of loaded models (`policy.max_loaded`), weight types
//! (`dtype`), and host bandwidth shared by GPUs copying at once (`host`).

use std::path::Path;
use switchyard_core::cost::ComputeTable;
use switchyard_core::hardware::HostTopology;
use switchyard_core::model::Dtype;
use switchyard_core::{arrivals, Workload};
use switchyard_sim::{simulate, RequestRecord, SimOptions, SimResult};

fn quiet() -> SimOptions {
    SimOptions {
        progress: false,
        timeline: false,
        check_invariants: true,
        ..SimOptions::default()
    }
}

fn run(w: &Workload) -> (SimResult, Vec<RequestRecord>) {
    let schedule = arrivals::generate(w).unwrap();
    let mut recs = Vec::new();
    let r = simulate(w, &schedule, &quiet(), &mut recs).unwrap();
    assert_eq!(recs.len(), schedule.requests.len());
    (r, recs)
}

/// Two models of 20 x 100 MB that fit one H200 together, taking turns.
fn two_models(policy: &str) -> Workload {
    let text = format!(
        "name: ml\nseed: 3\nduration_s: 10\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1 }}\n\
         models:\n  - {{ name: m, copies: 2, layers: 20, layer_mb: 100, layer_ms: 1.0 }}\n\
         arrivals: {{ process: round_robin, rate: 2 }}\n\
         policy: {policy}\n"
    );
    Workload::parse(Path::new("ml.yaml"), &text).unwrap()
}

#[test]
fn max_loaded_one_swaps_models_that_would_fit_together() {
    let (free, _) = run(&two_models("{ system: computron }"));
    assert_eq!(free.loads, 2, "both stay loaded when memory alone decides");
    let (one, recs) = run(&two_models("{ system: computron, max_loaded: 1 }"));
    assert_eq!(
        one.loads,
        recs.len() as u64,
        "every request finds its model out"
    );
    assert!(recs.iter().all(|r| r.cold));
    let (two, _) = run(&two_models("{ system: pipeswitch, max_loaded: 2 }"));
    assert_eq!(two.loads, 2);
}

#[test]
fn resident_refuses_more_models_than_max_loaded() {
    let w = two_models("{ system: resident, max_loaded: 1 }");
    let schedule = arrivals::generate(&w).unwrap();
    let e = simulate(&w, &schedule, &quiet(), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("policy.max_loaded = 1"), "{e}");
}

/// BERT-base on one H200 with stop-and-start: each request is a pageable
/// copy of the whole model, then its pass.
fn bert(dtype: &str) -> Workload {
    let text = format!(
        "name: dt\nseed: 3\nduration_s: 10\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1 }}\n\
         models:\n  - {{ arch: bert-base, copies: 2, dtype: {dtype} }}\n\
         arrivals: {{ process: round_robin, rate: 2 }}\n\
         policy: {{ system: stop-and-start, max_loaded: 1 }}\n"
    );
    Workload::parse(Path::new("dt.yaml"), &text).unwrap()
}

#[test]
fn fp32_weights_copy_twice_the_bytes_and_run_at_the_fp32_rate() {
    let mut w = bert("fp32");
    w.cluster.hardware.compute.fp32_flops_per_s =
        Some(w.cluster.hardware.compute.flops_per_s / 8.0);
    let hw = &w.cluster.hardware;
    let m = &w.models[0];
    let fp16 = bert("fp16");
    assert_eq!(
        m.shape.total_bytes(),
        2 * fp16.models[0].shape.total_bytes()
    );
    let load = hw.pageable.time(m.shape.total_bytes());
    let n = m.shape.layers.len();
    let compute = ComputeTable::new(&hw.for_dtype(Dtype::Fp32), &m.shape, 1, 1).time(0..n, 1);
    let fp16_compute = ComputeTable::new(hw, &m.shape, 1, 1).time(0..n, 1);
    assert!(compute > fp16_compute, "the fp32 rate is slower");
    let (_, recs) = run(&w);
    for r in &recs {
        let want = load + compute + hw.compute.request_overhead_s;
        assert!(
            (r.latency_s - want).abs() < 1e-9,
            "{} vs {want}",
            r.latency_s
        );
    }
}

/// OPT-1.3B at tp 4 on four H200s: every GPU copies its quarter at once.
fn tp4(host: HostTopology) -> (Workload, Vec<RequestRecord>) {
    let mut w = Workload::parse(
        Path::new("tp.yaml"),
        "name: tp\nseed: 3\nduration_s: 10\n\
         cluster: { hardware: h200-pcie5, gpus: 4 }\n\
         models:\n  - { arch: opt-1.3b, copies: 2, parallel: { tp: 4 } }\n\
         arrivals: { process: round_robin, rate: 2 }\n\
         policy: { system: computron, max_loaded: 1 }\n",
    )
    .unwrap();
    w.cluster.hardware.host = host;
    let (_, recs) = run(&w);
    (w, recs)
}

#[test]
fn host_memory_is_split_among_the_gpus_copying_at_once() {
    let (_, alone) = tp4(HostTopology::default());
    let (w, shared) = tp4(HostTopology {
        memory_bytes_per_s: Some(40e9),
        upstream: Vec::new(),
    });
    let hw = &w.cluster.hardware;
    let shard = w.models[0].largest_shard_bytes();
    // Each of the four links gets 40 / 4 = 10 GB/s, below its own 55.5.
    let extra = shard as f64 / 10e9 - shard as f64 / hw.pinned.beta_bytes_per_s;
    for (a, s) in alone.iter().zip(&shared) {
        assert!(s.cold);
        let d = s.latency_s - a.latency_s;
        assert!((d - extra).abs() < 1e-6 * extra, "{d} vs {extra}");
    }
    // Host memory above four links' worth changes nothing.
    let (_, wide) = tp4(HostTopology {
        memory_bytes_per_s: Some(400e9),
        upstream: Vec::new(),
    });
    assert_eq!(
        wide.iter()
            .map(|r| r.latency_s.to_bits())
            .collect::<Vec<_>>(),
        alone
            .iter()
            .map(|r| r.latency_s.to_bits())
            .collect::<Vec<_>>()
    );
}

/// One synthetic model (10 x 1 ms) resident on one GPU beside a training
/// loop of 100 ms iterations; requests at `rate` per second.
fn with_training(rate: f64, background: &str) -> Workload {
    let text = format!(
        "name: bg\nseed: 3\nduration_s: 10\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1 }}\n\
         models:\n  - {{ name: m, layers: 10, layer_mb: 10, layer_ms: 1.0 }}\n\
         arrivals: {{ process: round_robin, rate: {rate} }}\n\
         policy: {{ system: resident }}\n{background}"
    );
    Workload::parse(Path::new("bg.yaml"), &text).unwrap()
}

#[test]
fn requests_wait_for_the_training_iteration_in_progress() {
    let job = "background:\n  - { name: train, gpu: 0, iteration_ms: 100, memory_gib: 8 }\n";
    // Requests every 0.25 s: the loop resumes when a request is done, and
    // the next request starts at the end of the iteration it finds.
    let (r, recs) = run(&with_training(4.0, job));
    let (alone, plain) = run(&with_training(4.0, ""));
    let pass = plain[0].latency_s;
    let mut resume = 0.0f64;
    let mut delays = Vec::new();
    for (a, b) in recs.iter().zip(&plain) {
        let k = ((a.arrival_s - resume) / 0.1).ceil().max(0.0);
        let start = (resume + k * 0.1).max(a.arrival_s);
        assert!(
            (a.start_s - start).abs() < 1e-9,
            "request {}: {} vs {start}",
            a.id,
            a.start_s
        );
        assert!((a.latency_s - b.latency_s - (start - a.arrival_s)).abs() < 1e-9);
        delays.push(start - a.arrival_s);
        resume = a.finish_s;
    }
    assert!(
        (recs[0].latency_s - pass).abs() < 1e-12,
        "time 0 is an iteration boundary"
    );
    assert!(delays.iter().any(|&d| d > 0.05), "{delays:?}");
    let bg = &r.run.background;
    assert_eq!(bg.len(), 1);
    assert_eq!(bg[0].name, "train");
    assert!(bg[0].share > 0.5 && bg[0].share < 1.0, "{:?}", bg[0]);
    assert!(alone.run.background.is_empty());
    // Its memory is held: a model larger than what it leaves is refused.
    let w = with_training(
        4.0,
        "background:\n  - { gpu: 0, iteration_ms: 100, memory_gib: 136.39 }\n",
    );
    let schedule = arrivals::generate(&w).unwrap();
    let e = simulate(&w, &schedule, &quiet(), &mut Vec::new()).unwrap_err();
    assert!(
        e.to_string()
            .contains("background job `background-0` leaves"),
        "{e}"
    );
}

#[test]
fn an_idle_gpu_gives_the_job_all_its_iterations() {
    let job = "background:\n  - { gpu: 0, iteration_ms: 100 }\n";
    let (r, recs) = run(&with_training(0.1, job));
    let span = r.run.simulated_s.max(10.0);
    let bg = &r.run.background[0];
    // One request (10 ms, plus up to one iteration's wait) in 10 s.
    assert_eq!(recs.len(), 1);
    assert!(bg.iterations >= 98 && bg.iterations <= 100, "{bg:?}");
    assert!((bg.iterations_per_s - bg.iterations as f64 / span).abs() < 1e-12);
}

#[test]
fn preloaded_models_start_warm() {
    let (cold, _) = run(&two_models("{ system: pipeswitch }"));
    assert_eq!(cold.loads, 2);
    let (warm, recs) = run(&two_models("{ system: pipeswitch, preload: [m-0, m-1] }"));
    assert_eq!(warm.loads, 0);
    assert!(recs.iter().all(|r| !r.cold));
    // One of two: the other model's first request loads it.
    let (half, recs) = run(&two_models("{ system: computron, preload: [m-1] }"));
    assert_eq!(half.loads, 1);
    assert!(recs[0].cold && !recs[1].cold);
}

#[test]
fn preloads_that_cannot_start_in_memory_are_refused() {
    for (policy, says) in [
        (
            "{ system: streaming, preload: [m-0] }",
            "`streaming` keeps no model",
        ),
        (
            "{ system: computron, max_loaded: 1, preload: [m-0, m-1] }",
            "at most 1 models per GPU",
        ),
    ] {
        let w = two_models(policy);
        let schedule = arrivals::generate(&w).unwrap();
        let e = simulate(&w, &schedule, &quiet(), &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("policy.preload"), "{e}");
        assert!(e.to_string().contains(says), "{e}");
        // Refused once the system is known, still at the file's line.
        assert!(e.to_string().starts_with("ml.yaml:8:"), "{e}");
    }
}
