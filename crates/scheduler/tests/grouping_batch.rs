//! Layer groups planned for the batch a load is for: PipeSwitch's optimal
//! grouping is the DP fed the compute times of the batch that runs behind
//! the copies, and that batch's compute waits on exactly the copies issued.

use std::ops::Range;
use std::path::Path;
use switchyard_core::cost::{layer_compute_s, shard_layer_bytes};
use switchyard_core::workload::{Grouping, System};
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::grouping::{finish_time, optimal};
use switchyard_scheduler::placement::place;
use switchyard_scheduler::{Action, CopyOp, Event, Scheduler};

/// Two 8-layer models of 1.6 GB on one GPU with room for one; a layer copies
/// in 3.6 ms and computes in 1 ms at batch 1 (copy-bound) and 8 ms at batch
/// 8 (compute-bound: the profile's batch slope is raised to 1).
fn workload(system: &str) -> Workload {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1, gpu_memory_gib: 6 }}\n\
         models:\n  - {{ name: m, copies: 2, layers: 8, layer_mb: 200, layer_ms: 1.0, max_batch: 8 }}\n\
         arrivals: {{ process: poisson, rate: 10 }}\n\
         policy: {{ system: {system}, grouping: optimal }}\n"
    );
    let mut w = Workload::parse(Path::new("t.yaml"), &text).unwrap();
    w.cluster.hardware.compute.synthetic_batch_slope = 1.0;
    w
}

/// The DP optimum for model `m` of `w` fed the compute times of `batch`.
fn dp(w: &Workload, m: usize, batch: u32) -> Vec<Range<u32>> {
    let (bytes, compute) = layers(w, m, batch);
    optimal(&bytes, &compute, &w.cluster.hardware.pinned)
        .into_iter()
        .map(|r| r.start as u32..r.end as u32)
        .collect()
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

fn copies(a: &[Action]) -> Vec<CopyOp> {
    a.iter()
        .filter_map(|x| match x {
            Action::Copy(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn compute(a: &[Action]) -> u32 {
    match a.iter().find(|x| matches!(x, Action::Compute(_))) {
        Some(Action::Compute(t)) => *t,
        _ => panic!("no compute in {a:?}"),
    }
}

/// The waits of task `t` are exactly `copies`, each with the layers it carries.
fn assert_waits_match(sched: &Scheduler, t: u32, copies: &[CopyOp]) {
    let issued: Vec<(Range<u32>, u32)> = copies.iter().map(|c| (c.layers.clone(), c.id)).collect();
    assert_eq!(sched.task(t).waits, issued);
    // The copies tile the shard, offsets matching their layers' bytes.
    let mut off = 0;
    for c in copies {
        assert_eq!(c.shard_offset, off);
        off += c.bytes;
    }
    assert_eq!(off, sched.placement(copies[0].model).shard_bytes[0]);
}

#[test]
fn a_load_for_eight_waiting_requests_is_grouped_for_batch_eight() {
    for system in ["pipeswitch", "streaming"] {
        let w = workload(system);
        let (b1, b8) = (dp(&w, 1, 1), dp(&w, 1, 8));
        assert_ne!(b1, b8, "the test needs batch sizes whose optimum differs");
        // Batch 8's grouping is strictly better for batch 8 than batch 1's.
        let (bytes, c8) = layers(&w, 1, 8);
        let link = &w.cluster.hardware.pinned;
        let rel = |g: &[Range<u32>]| -> Vec<Range<usize>> {
            g.iter().map(|r| r.start as usize..r.end as usize).collect()
        };
        assert!(
            finish_time(&rel(&b8), &bytes, &c8, link)
                < finish_time(&rel(&b1), &bytes, &c8, link) - 1e-6
        );

        let arrivals = (0..9).map(|i| (i as f64 * 1e-3, (i > 0) as u32)).collect();
        let s = Schedule::from_arrivals(w.model_names(), arrivals);
        let mut sched = Scheduler::new(&w, &s).unwrap();
        let mut a = Vec::new();
        // One request of model 0: loaded for a batch of 1.
        sched.on_event(
            Event::Arrived {
                request: 0,
                model: 0,
            },
            &mut a,
        );
        let first = copies(&a);
        let t0 = compute(&a);
        assert_eq!(sched.task(t0).batch_size, 1);
        let got: Vec<_> = first.iter().map(|c| c.layers.clone()).collect();
        assert_eq!(got, dp(&w, 0, 1), "{system}: batch-1 load");
        assert_waits_match(&sched, t0, &first);
        // Eight requests of model 1 wait while the GPU is busy.
        for r in 1..=8 {
            a.clear();
            sched.on_event(
                Event::Arrived {
                    request: r,
                    model: 1,
                },
                &mut a,
            );
            assert!(a.is_empty(), "{system}: GPU busy, nothing issued: {a:?}");
        }
        for c in &first {
            sched.on_event(Event::CopyDone { copy: c.id }, &mut a);
        }
        a.clear();
        sched.on_event(Event::ComputeDone { task: t0 }, &mut a);
        // Model 1's load is for the eight waiting requests: batch 8's optimum.
        let second = copies(&a);
        let t1 = compute(&a);
        assert_eq!(sched.task(t1).batch_size, 8);
        let got: Vec<_> = second.iter().map(|c| c.layers.clone()).collect();
        assert_eq!(got, b8, "{system}: load for 8 waiting requests");
        assert_waits_match(&sched, t1, &second);
        sched.check_invariants().unwrap();
    }
}

#[test]
fn placement_caches_one_grouping_per_batch_size() {
    let w = workload("pipeswitch");
    let p = place(
        &w.models,
        1,
        &w.cluster.hardware,
        System::Pipeswitch,
        Grouping::Optimal,
    );
    assert_eq!(p[0].max_batch, 8);
    for b in 1..=8 {
        assert_eq!(p[0].groups_for(0, b).ranges, dp(&w, 0, b), "batch {b}");
    }
    // Outside 1..=max_batch: clamped.
    assert_eq!(p[0].groups_for(0, 0), p[0].groups_for(0, 1));
    assert_eq!(p[0].groups_for(0, 64), p[0].groups_for(0, 8));
    // Policies that ignore compute give one grouping at every batch size.
    let one = place(
        &w.models,
        1,
        &w.cluster.hardware,
        System::Pipeswitch,
        Grouping::OneGroup,
    );
    assert_eq!(one[0].groups_for(0, 8).ranges, vec![0..8]);
}
