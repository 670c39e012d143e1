//! Helper-aware grouping (`policy.multipath_grouping: helpers`): a
//! multi-path load's groups are planned with the copy time a group split
//! over the helper links takes; with multi-path loading off (or
//! `one_link`) the plan is the one-link DP's, exactly.

use std::path::Path;
use switchyard_core::cost::{layer_compute_s, shard_layer_bytes};
use switchyard_core::workload::{Grouping, MultipathGrouping};
use switchyard_core::Workload;
use switchyard_scheduler::grouping::{finish_time_split, optimal, optimal_split, HelperLinks};
use switchyard_scheduler::multipath::Multipath;
use switchyard_scheduler::placement::{place_with, Placing};
use switchyard_scheduler::traits::placements;

/// Cold batch-8 bert-base, gpt2 and opt-1.3b on two h200-pcie5 GPUs.
fn workload(policy: &str) -> Workload {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: 2 }}\n\
         models:\n  - {{ arch: bert-base, max_batch: 8 }}\n  - {{ arch: gpt2, max_batch: 8 }}\n\
         \x20 - {{ arch: opt-1.3b, max_batch: 8 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\n\
         policy: {{ system: pipeswitch, grouping: optimal{policy} }}\n"
    );
    Workload::parse(Path::new("t.yaml"), &text).unwrap()
}

fn layers(w: &Workload, m: usize, batch: u32) -> (Vec<u64>, Vec<f64>) {
    let shape = &w.models[m].shape;
    let hw = &w.cluster.hardware;
    let n = shape.layers.len();
    (
        (0..n).map(|l| shard_layer_bytes(shape, l, 1)).collect(),
        (0..n)
            .map(|l| layer_compute_s(hw, shape, l, batch, 1))
            .collect(),
    )
}

fn links(w: &Workload) -> HelperLinks {
    let hw = &w.cluster.hardware;
    let mp = Multipath::new(&w.loading, w.cluster.gpus, hw.usable_bytes()).unwrap();
    HelperLinks {
        link: hw.pinned,
        peer: hw.peer,
        chunk: mp.chunk(),
    }
}

#[test]
fn the_helper_aware_plan_differs_and_is_faster_by_the_dps_cost() {
    let w = workload(", loading: multipath");
    let l = links(&w);
    // bert-base at batch 8: with the load split over two links, copies
    // are cheap against compute and smaller groups start it earlier.
    let (bytes, compute) = layers(&w, 0, 8);
    let one = optimal(&bytes, &compute, &l.link);
    let split = optimal_split(&bytes, &compute, &l, 1);
    assert_ne!(one, split);
    let t_one = finish_time_split(&one, &bytes, &compute, &l, 1);
    let t_split = finish_time_split(&split, &bytes, &compute, &l, 1);
    assert!(t_split < t_one, "{t_split} vs {t_one}");
    // The placement plans it for a load with one helper lent, and reports
    // both plans' group counts.
    let p = placements(&w, w.policy);
    let planned: Vec<_> = p[0].groups_via(0, 8, 1).ranges.clone();
    let want: Vec<_> = split.iter().map(|r| r.start as u32..r.end as u32).collect();
    assert_eq!(planned, want);
    assert_eq!(p[0].groups_for(0, 8).ranges.len(), one.len());
    assert_eq!(p[0].helper_groups(), (split.len() as u64, one.len() as u64));
    // No helper lent at issue time: the one-link plan.
    assert_eq!(p[0].groups_via(0, 8, 0), p[0].groups_for(0, 8));
}

#[test]
fn without_helper_aware_grouping_the_plan_is_the_one_link_dps() {
    let direct = workload("");
    let mut one_link = workload(", loading: multipath");
    one_link.loading.grouping = MultipathGrouping::OneLink;
    let hw = &direct.cluster.hardware;
    let how = Placing::new(direct.policy.system, Grouping::Optimal);
    let old = place_with(&direct.models, &[], 2, hw, &how);
    for w in [&direct, &one_link] {
        let p = placements(w, w.policy);
        for (m, (new, old)) in p.iter().zip(&old).enumerate() {
            assert_eq!(new.helper_groups().0, 0);
            for b in 1..=8 {
                assert_eq!(new.groups_for(0, b), old.groups_for(0, b));
                // Whatever the lenders, the one-link plan.
                for lenders in 0..3 {
                    assert_eq!(new.groups_via(0, b, lenders), old.groups_for(0, b));
                }
                let (bytes, compute) = layers(w, m, b);
                let dp: Vec<_> = optimal(&bytes, &compute, &hw.pinned)
                    .into_iter()
                    .map(|r| r.start as u32..r.end as u32)
                    .collect();
                assert_eq!(new.groups_for(0, b).ranges, dp);
            }
        }
    }
}
