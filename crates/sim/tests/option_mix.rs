//! Every workload option mixed with every other, at random: a workload
//! either parses and is refused with a clear input error, or it simulates
//! with every request finishing exactly once, never before it arrives,
//! GPU memory never oversubscribed (checked after every event), and the
//! same outputs when run twice. The option grid is what researchers combine
//! on workloads nobody tuned for: arrival processes, systems, evictions,
//! groupings, weight types, multi-path loading, direct host access,
//! `max_loaded`, `preload`, background jobs and `offload`.

use proptest::prelude::*;
use std::path::Path;
use switchyard_core::{arrivals, Workload};
use switchyard_sim::{simulate_policy, RequestRecord, SimOptions};

fn checked() -> SimOptions {
    SimOptions {
        progress: false,
        timeline: false,
        check_invariants: true,
        ..SimOptions::default()
    }
}

const ARCHS: [&str; 5] = ["bert-base", "gpt2", "opt-125m", "resnet-152", "synthetic"];
const DTYPES: [&str; 3] = ["fp16", "fp32", "bf16"];
const SYSTEMS: [&str; 5] = [
    "computron",
    "pipeswitch",
    "stop-and-start",
    "resident",
    "streaming",
];
const EVICTIONS: [&str; 3] = ["lru", "lfu", "belady"];
const GROUPINGS: [&str; 3] = ["optimal", "per_layer", "one_group"];

#[derive(Debug, Clone)]
struct Mix {
    gpus: u32,
    mem_gib: f64,
    models: Vec<(usize, usize, u32, u32)>,
    arrivals: usize,
    rate: f64,
    system: usize,
    eviction: usize,
    grouping: usize,
    multipath: bool,
    direct_host: bool,
    max_loaded: Option<u32>,
    preload: bool,
    background: bool,
    offload: bool,
    seed: u64,
}

fn mix() -> impl Strategy<Value = Mix> {
    (
        (1u32..=2, 4.3f64..16.0),
        prop::collection::vec((0usize..5, 0usize..3, 1u32..=2, 1u32..=8), 1..=3),
        (0usize..5, 5.0f64..120.0),
        (0usize..5, 0usize..3, 0usize..3),
        (any::<bool>(), any::<bool>(), prop::option::of(1u32..=3)),
        (any::<bool>(), any::<bool>(), any::<bool>(), 0u64..1000),
    )
        .prop_map(
            |(
                (gpus, mem_gib),
                models,
                (arrivals, rate),
                (system, eviction, grouping),
                (multipath, direct_host, max_loaded),
                (preload, background, offload, seed),
            )| Mix {
                gpus,
                mem_gib,
                models,
                arrivals,
                rate,
                system,
                eviction,
                grouping,
                multipath,
                direct_host,
                max_loaded,
                preload,
                background,
                offload,
                seed,
            },
        )
}

fn yaml(m: &Mix) -> String {
    let mut s = format!(
        "name: mix\nseed: {}\nduration_s: 2\ncluster: {{ hardware: h200-pcie5, gpus: {}, gpu_memory_gib: {:.2} }}\nmodels:\n",
        m.seed, m.gpus, m.mem_gib
    );
    let mut first = None;
    for (i, &(arch, dtype, copies, max_batch)) in m.models.iter().enumerate() {
        let name = format!("m{i}");
        first.get_or_insert_with(|| {
            if copies > 1 {
                format!("{name}-0")
            } else {
                name.clone()
            }
        });
        let shape = if ARCHS[arch] == "synthetic" {
            "layers: 6, layer_mb: 150, layer_ms: 0.4".to_string()
        } else {
            format!("arch: {}, seq_len: 64", ARCHS[arch])
        };
        s += &format!(
            "  - {{ name: {name}, {shape}, dtype: {}, copies: {copies}, max_batch: {max_batch}, slo_ms: 200 }}\n",
            DTYPES[dtype]
        );
    }
    s += &match m.arrivals {
        0 => format!("arrivals: {{ process: poisson, rate: {:.1} }}\n", m.rate),
        1 => format!("arrivals: {{ process: gamma, rate: {:.1}, cv: 3 }}\n", m.rate),
        2 => format!(
            "arrivals: {{ process: on_off, rate_on: {:.1}, rate_off: 2, mean_on_s: 0.3, mean_off_s: 0.3 }}\n",
            m.rate
        ),
        3 => format!(
            "arrivals: {{ process: on_off, rate_on: {:.1}, mean_on_s: 0.3, mean_off_s: 0.3, per_model: true, skew: {{ zipf: 1.0 }} }}\n",
            m.rate
        ),
        _ => format!("arrivals: {{ process: round_robin, rate: {:.1} }}\n", m.rate),
    };
    s += &format!(
        "policy:\n  system: {}\n  eviction: {}\n  grouping: {}\n",
        SYSTEMS[m.system], EVICTIONS[m.eviction], GROUPINGS[m.grouping]
    );
    if m.multipath {
        s += "  loading: multipath\n  multipath_staging_mib: 128\n";
        // The grouping of multi-path loads, by the seed (the default
        // `helpers` written out a third of the time).
        let g = ["helpers", "one_link", "every_helper"][(m.seed % 3) as usize];
        s += &format!("  multipath_grouping: {g}\n");
    }
    if m.direct_host {
        s += "  direct_host: true\n";
    }
    if let Some(k) = m.max_loaded {
        s += &format!("  max_loaded: {k}\n");
    }
    if m.offload {
        s += "  offload: true\n";
    }
    if m.preload {
        s += &format!("  preload: [{}]\n", first.expect("one model at least"));
    }
    if m.background {
        s += "background:\n  - { name: train, gpu: 0, iteration_ms: 20, memory_gib: 0.5 }\n";
    }
    s
}

/// Runs `w` on `schedule`; `None` when refused as bad input (a clean
/// refusal: the message names a field).
fn run(w: &Workload, schedule: &switchyard_core::Schedule) -> Option<(Vec<RequestRecord>, String)> {
    let mut recs: Vec<RequestRecord> = Vec::new();
    match simulate_policy(w, schedule, w.policy, &checked(), &mut recs) {
        Ok(r) => Some((
            recs,
            serde_json::to_string(&r.summary).expect("summary serialises"),
        )),
        Err(switchyard_core::Error::Input(e)) => {
            assert!(!e.to_string().is_empty());
            None
        }
        Err(e) => panic!("not an input error: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_mix_of_options_simulates_soundly_or_is_refused(m in mix()) {
        let text = yaml(&m);
        // Options that do not go together are refused by the workload check.
        let Ok(w) = Workload::parse(Path::new("mix.yaml"), &text) else { return Ok(()); };
        let Ok(schedule) = arrivals::generate(&w) else { return Ok(()); };
        let Some((recs, summary)) = run(&w, &schedule) else { return Ok(()); };
        prop_assert_eq!(recs.len(), schedule.requests.len(), "{}", text);
        let mut seen = vec![false; schedule.requests.len()];
        for rec in &recs {
            let i = rec.id as usize;
            prop_assert!(!seen[i], "request {} finished twice\n{}", i, text);
            seen[i] = true;
            let req = &schedule.requests[i];
            prop_assert_eq!(rec.arrival_s, req.arrival_s);
            prop_assert!(rec.start_s >= rec.arrival_s - 1e-12, "started before arrival: {:?}\n{}", rec, text);
            prop_assert!(rec.finish_s > rec.start_s, "{:?}\n{}", rec, text);
        }
        // Same seed, same inputs: the same outputs.
        let (again, summary_again) = run(&w, &schedule).expect("served once, served again");
        prop_assert!(again == recs, "a second run differs\n{}", text);
        prop_assert_eq!(summary, summary_again);
    }
}
