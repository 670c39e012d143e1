//! The grouping DP's choice of host-resident layers (`policy.direct_host`)
//! as the placement holds it: BERT-base's embedding stays in host memory
//! and is never copied nor given GPU memory; GPT-2's (tied to its head)
//! and pageable systems' are copied; the load's copies start after it.

use std::path::Path;
use switchyard_core::workload::{Grouping, System};
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::placement::{place_with, Placing};
use switchyard_scheduler::{Action, Event, Scheduler};

fn workload(arch: &str) -> Workload {
    let text = format!(
        "name: dh\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: 1 }}\n\
         models:\n  - {{ arch: {arch}, max_batch: 8 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\npolicy:\n  system: pipeswitch\n  direct_host: true\n"
    );
    Workload::parse(Path::new("dh.yaml"), &text).unwrap()
}

#[test]
fn bert_leaves_its_embedding_in_host_memory() {
    let w = workload("bert-base");
    let p = &switchyard_scheduler::placements(&w, w.policy)[0];
    let shape = &w.models[0].shape;
    let emb = shape.layers[0].param_bytes;
    assert_eq!(p.direct.to_vec(), vec![0..1]);
    assert_eq!(p.direct_bytes[..], [emb]);
    assert_eq!(p.shard_bytes[0], shape.total_bytes() - emb);
    for b in 1..=8 {
        let g = p.groups_for(0, b);
        assert_eq!(g.ranges[0].start, 1, "batch {b}");
        assert_eq!(g.bytes[0].0, 0, "pool offsets start at the region");
        assert_eq!(g.ranges.last().unwrap().end as usize, shape.layers.len());
    }
    // A cold load: copies from the first block on, the task names layer 0
    // as read from host.
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0)]);
    let mut sched = Scheduler::new(&w, &s).unwrap();
    let mut actions = Vec::new();
    sched.on_event(
        Event::Arrived {
            request: 0,
            model: 0,
        },
        &mut actions,
    );
    let copies: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Copy(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(copies[0].shard_offset, emb);
    assert_eq!(
        copies.iter().map(|c| c.bytes).sum::<u64>(),
        shape.total_bytes() - emb
    );
    let task = actions.iter().find_map(|a| match a {
        Action::Compute(t) => Some(*t),
        _ => None,
    });
    assert_eq!(sched.task(task.unwrap()).direct, 0..1);
    assert!(sched.direct_host());
}

#[test]
fn tied_embeddings_and_pageable_systems_stay_copied() {
    let w = workload("gpt2");
    let p = &switchyard_scheduler::placements(&w, w.policy)[0];
    assert_eq!(p.direct.to_vec(), vec![0..0]);
    assert_eq!(p.direct_host(), (0, 0));
    let bert = workload("bert-base");
    let hw = &bert.cluster.hardware;
    for system in [System::StopAndStart, System::Pipeswitch] {
        let how = Placing {
            direct_host: true,
            ..Placing::new(system, Grouping::Optimal)
        };
        let placed = place_with(&bert.models, &[], 1, hw, &how);
        let want = if system == System::Pipeswitch { 1 } else { 0 };
        assert_eq!(placed[0].direct_host().0, want, "{system:?}");
    }
    // Without the option nothing changes.
    let how = Placing::new(System::Pipeswitch, Grouping::Optimal);
    let placed = place_with(&bert.models, &[], 1, hw, &how);
    assert_eq!(placed[0].direct_host(), (0, 0));
}

/// bert-base on two GPUs with direct host access, batches up to `batch`
/// of `seq` tokens, loading `loading` (helper-aware grouping when
/// multipath).
fn bert_two_gpus(loading: &str, batch: u32, seq: u32) -> Workload {
    let text = format!(
        "name: dh\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: 2 }}\n\
         models:\n  - {{ arch: bert-base, max_batch: {batch}, seq_len: {seq} }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\npolicy:\n  system: pipeswitch\n  \
         direct_host: true\n  loading: {loading}\n"
    );
    Workload::parse(Path::new("dh.yaml"), &text).unwrap()
}

#[test]
fn on_bert_the_warm_bound_decides_before_the_multipath_costing() {
    // The multi-path placement costs the host layers against copies split
    // over both links (grouping::with_direct_split), which halves what
    // leaving the embedding in host memory saves; on bert-base the bound
    // on warm passes (WARM_SLOWDOWN_MAX) decides first at every batch and
    // sequence length, so both loadings leave the same layers there.
    let mut kept = 0;
    for batch in [1, 8, 32] {
        for seq in [32, 128, 512] {
            let w1 = bert_two_gpus("direct", batch, seq);
            let wm = bert_two_gpus("multipath", batch, seq);
            let one = &switchyard_scheduler::placements(&w1, w1.policy)[0];
            let mp = &switchyard_scheduler::placements(&wm, wm.policy)[0];
            assert_eq!(one.direct, mp.direct, "batch {batch}, seq {seq}");
            kept += mp.direct[0].len();
        }
    }
    // Both outcomes occur in the grid.
    assert!((1..9).contains(&kept), "{kept}");
}
