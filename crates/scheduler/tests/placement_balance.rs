//! Placement's base GPUs are those of the scan over every base (the one
//! keeping the most loaded GPU lightest, ties to the lowest), whether a
//! model takes one GPU (found from the GPUs ordered by load) or several;
//! models of equal layers share one grouping plan and get equal groups.

use std::path::Path;
use switchyard_core::workload::{Grouping, System};
use switchyard_core::Workload;
use switchyard_scheduler::placement::place;

/// Models of mixed sizes and parallelism on `gpus` GPUs.
fn workload(gpus: u32) -> Workload {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1\n\
         cluster: {{ hardware: h200-pcie5, gpus: {gpus}, gpu_memory_gib: 80 }}\n\
         models:\n\
         \x20 - {{ name: a, copies: 5, layers: 4, layer_mb: 10, layer_ms: 0.05, max_batch: 4 }}\n\
         \x20 - {{ name: b, copies: 3, layers: 6, layer_mb: 30, layer_ms: 0.05, max_batch: 2, parallel: {{ tp: 2 }} }}\n\
         \x20 - {{ name: c, copies: 7, layers: 2, layer_mb: 25, layer_ms: 0.05 }}\n\
         \x20 - {{ name: d, copies: 2, layers: 8, layer_mb: 5, layer_ms: 0.05, parallel: {{ pp: 2 }} }}\n\
         arrivals: {{ process: poisson, rate: 10 }}\n\
         policy: {{ system: pipeswitch, grouping: optimal }}\n"
    );
    Workload::parse(Path::new("t.yaml"), &text).unwrap()
}

#[test]
fn bases_are_those_of_the_scan() {
    for gpus in [2, 3, 4, 7] {
        let w = workload(gpus);
        let placed = place(
            &w.models,
            gpus,
            &w.cluster.hardware,
            System::Computron,
            Grouping::Optimal,
        );
        let mut load = vec![0u64; gpus as usize];
        for p in &placed {
            let width = (p.tp * p.pp) as usize;
            let at = |b: usize, i: usize| (b + i) % gpus as usize;
            let base = (0..gpus as usize)
                .min_by_key(|&b| {
                    (0..width)
                        .map(|i| load[at(b, i)] + p.shard_bytes[i / p.tp as usize])
                        .max()
                        .unwrap()
                })
                .unwrap();
            let want: Vec<u32> = (0..width).map(|i| at(base, i) as u32).collect();
            assert_eq!(p.gpus.as_slice(), want.as_slice(), "{gpus} GPUs");
            for (i, &g) in want.iter().enumerate() {
                load[g as usize] += p.shard_bytes[i / p.tp as usize];
            }
        }
    }
}

#[test]
fn equal_models_get_equal_groups() {
    let w = workload(4);
    let placed = place(
        &w.models,
        4,
        &w.cluster.hardware,
        System::Pipeswitch,
        Grouping::Optimal,
    );
    // Copies of one template: models 0..5 are `a`, 8..15 are `c`.
    for b in 1..=4 {
        assert_eq!(placed[0].groups_for(0, b), placed[4].groups_for(0, b));
    }
    assert_eq!(placed[8].groups_for(0, 1), placed[14].groups_for(0, 1));
    assert_ne!(
        placed[0].groups_for(0, 1).bytes,
        placed[8].groups_for(0, 1).bytes
    );
}
