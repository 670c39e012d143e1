//! Helper-aware grouping (`policy.multipath_grouping: helpers`): a
//! multi-path load's groups are planned with the copy time a group split
//! over the helper links takes; with multi-path loading off (or
//! `one_link`) the plan is the one-link DP's, exactly.

use std::ops::Range;
use std::path::Path;
use switchyard_core::cost::{layer_compute_s, shard_layer_bytes};
use switchyard_core::workload::{Grouping, MultipathGrouping};
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::grouping::{finish_time_split, optimal, optimal_split, HelperLinks};
use switchyard_scheduler::multipath::Multipath;
use switchyard_scheduler::placement::{place_with, Placing};
use switchyard_scheduler::traits::placements;
use switchyard_scheduler::{Action, Event, Scheduler};

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

/// `copies` bert-base models on `gpus` GPUs, multi-path loading with up to
/// `k` helpers and `grouping` (`policy.multipath_grouping`).
fn bert_copies(gpus: u32, k: u32, grouping: &str) -> Workload {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: {gpus} }}\n\
         models:\n  - {{ arch: bert-base, copies: {gpus}, max_batch: 8 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\n\
         policy: {{ system: pipeswitch, grouping: optimal, loading: multipath, \
         multipath_helpers: {k}, multipath_grouping: {grouping} }}\n"
    );
    Workload::parse(Path::new("t.yaml"), &text).unwrap()
}

/// Feeds one arrival per model of `order` at time 0 to a fresh scheduler;
/// returns the layer groups the last model's load copies (pieces of one
/// group merged), the helpers its pieces went through, and the groups the
/// scheduler checks its waits against.
fn last_load(w: &Workload, order: &[u32]) -> (Vec<Range<u32>>, Vec<u32>) {
    let s = Schedule::from_arrivals(w.model_names(), vec![]);
    let mut sched = Scheduler::new(w, &s).unwrap();
    let mut a = Vec::new();
    for (i, &m) in order.iter().enumerate() {
        a.clear();
        sched.on_event(
            Event::Arrived {
                request: i as u64,
                model: m,
            },
            &mut a,
        );
    }
    sched.check_invariants().unwrap();
    let mut groups: Vec<Range<u32>> = Vec::new();
    let mut helpers = Vec::new();
    for c in a.iter().filter_map(|x| match x {
        Action::Copy(c) => Some(c),
        _ => None,
    }) {
        assert_eq!(c.model, *order.last().unwrap());
        if groups.last() != Some(&c.layers) {
            groups.push(c.layers.clone());
        }
        helpers.extend(c.via.map(|v| v.helper));
    }
    helpers.sort_unstable();
    helpers.dedup();
    (groups, helpers)
}

#[test]
fn a_load_that_finds_helpers_busy_takes_the_plan_for_the_helpers_lent() {
    // Two GPUs, one bert-base on each: model 1's load onto GPU 1 holds
    // GPU 1's link when model 0's load onto GPU 0 is issued, so GPU 1
    // lends nothing and model 0 goes over one link.
    let w = bert_copies(2, 1, "helpers");
    let p = placements(&w, w.policy);
    assert_eq!((p[0].gpus[0], p[1].gpus[0]), (0, 1));
    let (one, split) = (p[0].groups_via(0, 1, 0), p[0].groups_via(0, 1, 1));
    assert_ne!(one.ranges, split.ranges, "the plans must differ to tell");
    // Alone: GPU 1 lends, the one-helper plan.
    let (alone, via) = last_load(&w, &[0]);
    assert_eq!(alone, split.ranges);
    assert_eq!(via, vec![1]);
    // Behind model 1's load: no lender, the one-link plan, not the
    // one-helper plan the load would have had with GPU 1 free.
    let (busy, via) = last_load(&w, &[1, 0]);
    assert!(via.is_empty());
    assert_eq!(busy, one.ranges);
    // The ablation plans for every helper whatever is lent: the wrong
    // split this test tells apart.
    let every = bert_copies(2, 1, "every_helper");
    let (ignored, via) = last_load(&every, &[1, 0]);
    assert!(via.is_empty());
    assert_eq!(ignored, split.ranges);
}

#[test]
fn with_one_of_three_helpers_busy_the_load_takes_the_two_helper_plan() {
    let w = bert_copies(4, 3, "helpers");
    let p = placements(&w, w.policy);
    let gpu = |m: usize| p[m].gpus[0];
    let m0 = (0..4).find(|&m| gpu(m) == 0).unwrap() as u32;
    let m1 = (0..4).find(|&m| gpu(m) == 1).unwrap() as u32;
    let (two, three) = (
        p[m0 as usize].groups_via(0, 1, 2),
        p[m0 as usize].groups_via(0, 1, 3),
    );
    assert_ne!(two.ranges, three.ranges, "the plans must differ to tell");
    let (alone, via) = last_load(&w, &[m0]);
    assert_eq!((alone, via), (three.ranges.clone(), vec![1, 2, 3]));
    // GPU 1 loads for itself first: GPUs 2 and 3 lend, the two-helper plan.
    let (busy, via) = last_load(&w, &[m1, m0]);
    assert_eq!(via, vec![2, 3]);
    assert_eq!(busy, two.ranges);
    let every = bert_copies(4, 3, "every_helper");
    let (ignored, _) = last_load(&every, &[m1, m0]);
    assert_eq!(ignored, three.ranges);
}
