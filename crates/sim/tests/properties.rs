//! Invariants over random workloads: every request finishes exactly once and
//! never before it arrives; GPU memory is never oversubscribed (checked after
//! every event); Belady never loads more than LRU or LFU when models are of
//! one size and batches hold one request.

use proptest::prelude::*;
use std::path::Path;
use switchyard_core::workload::{Eviction, Grouping, PolicySpec, System};
use switchyard_core::{arrivals, Workload};
use switchyard_sim::{simulate_policy, NullSink, RequestRecord, SimOptions};

fn checked() -> SimOptions {
    SimOptions {
        progress: false,
        timeline: false,
        check_invariants: true,
        ..SimOptions::default()
    }
}

#[derive(Debug, Clone)]
struct ModelGen {
    copies: u32,
    layers: u32,
    layer_mb: u32,
    layer_ms: f64,
    tp: u32,
    pp: u32,
    max_batch: u32,
    micro: u32,
}

fn model_gen() -> impl Strategy<Value = ModelGen> {
    (
        1u32..=3,
        2u32..=8,
        20u32..=300,
        0.05f64..3.0,
        1u32..=2,
        1u32..=2,
        1u32..=4,
        1u32..=4,
    )
        .prop_map(
            |(copies, layers, layer_mb, layer_ms, tp, pp, max_batch, micro)| ModelGen {
                copies,
                layers,
                layer_mb,
                layer_ms,
                tp,
                pp,
                max_batch,
                micro: micro.min(max_batch),
            },
        )
}

fn yaml(
    gpus: u32,
    mem_gib: f64,
    models: &[ModelGen],
    rate: f64,
    duration: f64,
    seed: u64,
) -> String {
    let mut s = format!(
        "name: prop\nseed: {seed}\nduration_s: {duration}\n\
         cluster: {{ hardware: h200-pcie5, gpus: {gpus}, gpu_memory_gib: {mem_gib} }}\nmodels:\n"
    );
    for (i, m) in models.iter().enumerate() {
        s += &format!(
            "  - {{ name: m{i}, copies: {}, layers: {}, layer_mb: {}, layer_ms: {}, max_batch: {}, micro_batch: {}, \
             parallel: {{ tp: {}, pp: {} }}, slo_ms: 500 }}\n",
            m.copies, m.layers, m.layer_mb, m.layer_ms, m.max_batch, m.micro, m.tp.min(gpus), m.pp.min(gpus / m.tp.min(gpus)).max(1)
        );
    }
    s += &format!("arrivals: {{ process: poisson, rate: {rate}, skew: {{ zipf: 1.0 }} }}\npolicy: {{ system: computron }}\n");
    s
}

const SYSTEMS: [System; 5] = System::ALL;
const EVICTIONS: [Eviction; 3] = [Eviction::Lru, Eviction::Lfu, Eviction::Belady];
const GROUPINGS: [Grouping; 3] = [Grouping::Optimal, Grouping::PerLayer, Grouping::OneGroup];

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn requests_finish_once_after_arrival_and_memory_holds(
        gpus in 1u32..=3,
        extra_gib in 0.4f64..4.0,
        models in prop::collection::vec(model_gen(), 1..=3),
        rate in 2.0f64..200.0,
        duration in 1.0f64..8.0,
        seed in 0u64..1000,
        system in 0usize..5,
        eviction in 0usize..3,
        grouping in 0usize..3,
        offload in any::<bool>(),
    ) {
        let text = yaml(gpus, 4.0 + extra_gib, &models, rate, duration, seed);
        // Shapes that cannot fit are refused by the workload check: skip them.
        let Ok(w) = Workload::parse(Path::new("prop.yaml"), &text) else { return Ok(()); };
        // A workload whose arrivals hold no request is refused: skip it.
        let Ok(schedule) = arrivals::generate(&w) else { return Ok(()); };
        let policy = PolicySpec {
            system: SYSTEMS[system],
            eviction: EVICTIONS[eviction],
            grouping: GROUPINGS[grouping],
            max_loaded: None,
            // Ignored by the systems that never evict (resident, streaming).
            offload,
        };
        let mut recs: Vec<RequestRecord> = Vec::new();
        let r = match simulate_policy(&w, &schedule, policy, &checked(), &mut recs) {
            Ok(r) => r,
            Err(switchyard_core::Error::Input(e)) => {
                // Only two refusals are legitimate: `resident` when the models
                // do not all fit, and a one-GPU system (pipeswitch and the
                // baselines ignore `parallel`) when a whole model does not fit
                // on one GPU. `computron` must serve every workload that parses.
                let msg = e.to_string();
                let one_gpu_refusal = policy.system != System::Computron
                    && policy.system != System::Resident
                    && msg.contains("on one GPU");
                prop_assert!(policy.system == System::Resident || one_gpu_refusal, "{:?}: {}", policy.system, msg);
                return Ok(());
            }
            Err(e) => panic!("{e}"),
        };
        prop_assert_eq!(recs.len(), schedule.requests.len());
        prop_assert_eq!(r.summary.requests as usize, schedule.requests.len());
        let mut seen = vec![false; schedule.requests.len()];
        for rec in &recs {
            let i = rec.id as usize;
            prop_assert!(!seen[i], "request {} finished twice", i);
            seen[i] = true;
            let req = &schedule.requests[i];
            prop_assert_eq!(&rec.model, &w.models[req.model as usize].name);
            prop_assert_eq!(rec.arrival_s, req.arrival_s);
            prop_assert!(rec.start_s >= rec.arrival_s - 1e-12, "started before arrival: {:?}", rec);
            prop_assert!(rec.finish_s > rec.start_s, "{:?}", rec);
            prop_assert!((rec.latency_s - (rec.finish_s - rec.arrival_s)).abs() < 1e-12);
            prop_assert!(rec.batch_size >= 1 && rec.batch_size <= w.models[req.model as usize].max_batch);
        }
    }

    #[test]
    fn belady_never_loads_more_than_lru_or_lfu(
        gpus in 1u32..=2,
        n in 2u32..=6,
        fit in 1u32..=5,
        rate in 1.0f64..300.0,
        zipf in 0.0f64..2.0,
        seed in 0u64..1000,
        pipeswitch in any::<bool>(),
    ) {
        // Models of 4 x 100 MB; the pool holds `fit` of them (< n).
        let fit = fit.min(n - 1);
        let usable = fit as f64 * 400e6 + 50e6;
        let mem = 4.0 + usable / switchyard_core::hardware::GIB;
        let text = format!(
            "name: belady\nseed: {seed}\nduration_s: 6\n\
             cluster: {{ hardware: h200-pcie5, gpus: {gpus}, gpu_memory_gib: {mem} }}\n\
             models:\n  - {{ name: m, copies: {n}, layers: 4, layer_mb: 100, layer_ms: 0.5, max_batch: 1 }}\n\
             arrivals: {{ process: poisson, rate: {rate}, skew: {{ zipf: {zipf} }} }}\n\
             policy: {{ system: computron }}\n"
        );
        let w = Workload::parse(Path::new("belady.yaml"), &text).unwrap();
        // A workload whose arrivals hold no request is refused: skip it.
        let Ok(schedule) = arrivals::generate(&w) else { return Ok(()); };
        let system = if pipeswitch { System::Pipeswitch } else { System::Computron };
        let loads = |eviction| {
            let policy = PolicySpec { system, eviction, grouping: Grouping::Optimal, max_loaded: None, offload: false };
            simulate_policy(&w, &schedule, policy, &checked(), &mut NullSink).unwrap().loads
        };
        let (belady, lru, lfu) = (loads(Eviction::Belady), loads(Eviction::Lru), loads(Eviction::Lfu));
        prop_assert!(belady <= lru, "belady {} > lru {}", belady, lru);
        prop_assert!(belady <= lfu, "belady {} > lfu {}", belady, lfu);
    }
}
