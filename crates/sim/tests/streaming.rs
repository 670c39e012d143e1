//! Arrivals drawn as the clock advances serve exactly the requests of the
//! schedule held whole, with the same records and summary; past
//! `exact_quantiles` the percentiles come from sketches within their bound.

use std::path::Path;
use switchyard_core::arrivals;
use switchyard_core::workload::{Eviction, PolicySpec};
use switchyard_core::Workload;
use switchyard_sim::{simulate_plan, simulate_policy, SimOptions};

fn opts(exact_quantiles: u64) -> SimOptions {
    SimOptions {
        progress: false,
        timeline: false,
        check_invariants: true,
        exact_quantiles,
        ..SimOptions::default()
    }
}

/// Six models swapping on two GPUs; `arrivals` is the YAML of the process.
fn workload(arrivals: &str) -> Workload {
    let text = format!(
        "name: s\nseed: 11\nduration_s: 20\n\
         cluster: {{ hardware: h200-pcie5, gpus: 2, gpu_memory_gib: 6 }}\n\
         models:\n  - {{ name: m, copies: 6, layers: 4, layer_mb: 500, layer_ms: 0.5, max_batch: 4, slo_ms: 50 }}\n\
         arrivals: {arrivals}\n\
         policy: {{ system: computron, eviction: lru }}\n"
    );
    Workload::parse(Path::new("s.yaml"), &text).unwrap()
}

const PROCESSES: [&str; 4] = [
    "{ process: poisson, rate: 200, skew: { zipf: 1.0 } }",
    "{ process: gamma, rate: 150, cv: 3, per_model: true, skew: { zipf: 0.5 } }",
    "{ process: on_off, rate_on: 400, rate_off: 20, mean_on_s: 1, mean_off_s: 2, per_model: true }",
    "{ process: round_robin, rate: 100 }",
];

#[test]
fn a_streamed_run_equals_the_run_on_the_held_schedule() {
    for process in PROCESSES {
        let w = workload(process);
        let (plan, _) = arrivals::plan(&w, arrivals::DEFAULT_MAX_REQUESTS).unwrap();
        let schedule = arrivals::schedule_of(&w, &plan);
        assert_eq!(schedule, arrivals::generate(&w).unwrap(), "{process}");
        for eviction in [Eviction::Lru, Eviction::Belady] {
            let policy = PolicySpec {
                eviction,
                ..w.policy
            };
            let (mut held, mut streamed) = (Vec::new(), Vec::new());
            let a = simulate_policy(&w, &schedule, policy, &opts(u64::MAX), &mut held).unwrap();
            let b = simulate_plan(&w, &plan, policy, &opts(u64::MAX), &mut streamed).unwrap();
            assert_eq!(held.len(), schedule.requests.len(), "{process}");
            assert_eq!(held, streamed, "{process} {eviction:?}");
            assert_eq!(a, b, "{process} {eviction:?}");
        }
    }
}

#[test]
fn past_exact_quantiles_percentiles_come_from_sketches() {
    let w = workload(PROCESSES[0]);
    let (plan, _) = arrivals::plan(&w, arrivals::DEFAULT_MAX_REQUESTS).unwrap();
    let exact = simulate_plan(&w, &plan, w.policy, &opts(u64::MAX), &mut Vec::new()).unwrap();
    let sketched = simulate_plan(&w, &plan, w.policy, &opts(100), &mut Vec::new()).unwrap();
    assert_eq!(exact.run.quantiles_sketched, None);
    let note = sketched.run.quantiles_sketched.clone().expect("past 100");
    assert_eq!(note.exact_up_to, 100);
    let (e, s) = (&exact.summary, &sketched.summary);
    assert_eq!(
        (s.requests, s.max_s, s.slo_attainment),
        (e.requests, e.max_s, e.slo_attainment)
    );
    // Exact percentiles interpolate between order statistics; the sketch
    // gives the one at the lower rank within its relative error.
    for (got, want) in [(s.p50_s, e.p50_s), (s.p90_s, e.p90_s), (s.p99_s, e.p99_s)] {
        assert!((got / want - 1.0).abs() < 0.02, "{got} vs {want}");
    }
    for (a, b) in exact.models.iter().zip(&sketched.models) {
        assert_eq!(a.summary.requests, b.summary.requests);
    }
}
