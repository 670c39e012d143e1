//! `policy.offload`, driven by hand: an eviction copies the victim back to
//! host memory, and its memory is free only once that copy is reported done.

use std::path::Path;
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::{Action, Event, OffloadOp, Scheduler};

/// Two models of 8 x 400 MB on one GPU of 8 GiB (4 for weights): one fits at a time.
fn two_models(offload: bool) -> Scheduler {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1, gpu_memory_gib: 8 }}\n\
         models:\n  - {{ name: m, copies: 2, layers: 8, layer_mb: 400, layer_ms: 1.0 }}\n\
         arrivals: {{ process: poisson, rate: 10 }}\n\
         policy: {{ system: computron, offload: {offload} }}\n"
    );
    let w = Workload::parse(Path::new("t.yaml"), &text).unwrap();
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0), (0.1, 1)]);
    Scheduler::new(&w, &s).unwrap()
}

/// Serves one request of `model` to the end: its copies and compute done.
fn serve(sched: &mut Scheduler, request: u64, model: u32) {
    let mut a = Vec::new();
    sched.on_event(Event::Arrived { request, model }, &mut a);
    let mut pending: Vec<Action> = a.clone();
    while let Some(x) = pending.pop() {
        let mut b = Vec::new();
        match x {
            Action::Copy(c) => sched.on_event(Event::CopyDone { copy: c.id }, &mut b),
            Action::Compute(t) => sched.on_event(Event::ComputeDone { task: t }, &mut b),
            _ => {}
        }
        pending.extend(b);
    }
}

fn offloads(a: &[Action]) -> Vec<OffloadOp> {
    a.iter()
        .filter_map(|x| match x {
            Action::Offload(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn memory_is_free_only_when_the_offload_is_done() {
    let mut sched = two_models(true);
    serve(&mut sched, 0, 0);
    let held = sched.pool(0).used();
    assert_eq!(
        held, 3_200_000_000,
        "model 0 stays loaded after its request"
    );
    // Model 1 needs the memory model 0 holds: model 0 is offloaded, and
    // nothing of model 1 is copied or run until that copy is done.
    let mut a = Vec::new();
    sched.on_event(
        Event::Arrived {
            request: 1,
            model: 1,
        },
        &mut a,
    );
    let off = offloads(&a);
    assert_eq!(off.len(), 1, "{a:?}");
    assert_eq!(
        (off[0].model, off[0].gpu, off[0].bytes),
        (0, 0, 3_200_000_000)
    );
    assert_eq!(off[0].layers, 0..8);
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Copy(_) | Action::Compute(_) | Action::Evict(_))),
        "the load must wait for the offload: {a:?}"
    );
    assert_eq!(sched.pool(0).used(), held, "the region is still taken");
    assert_eq!(sched.offloading_bytes(0), held);
    sched.check_invariants().unwrap();
    // The offload is done: the region is given back, then model 1 loads there.
    let mut b = Vec::new();
    sched.on_event(Event::CopyDone { copy: off[0].id }, &mut b);
    let evict = b
        .iter()
        .position(|x| matches!(x, Action::Evict(e) if e.model == 0));
    let copy = b
        .iter()
        .position(|x| matches!(x, Action::Copy(c) if c.model == 1));
    assert!(
        matches!((evict, copy), (Some(e), Some(c)) if e < c),
        "evict, then load: {b:?}"
    );
    assert!(b.iter().any(|x| matches!(x, Action::Compute(_))));
    assert_eq!(sched.offloading_bytes(0), 0);
    assert_eq!(sched.pool(0).used(), held, "model 1's region now");
    sched.check_invariants().unwrap();
}

#[test]
fn without_offload_the_memory_is_free_at_once() {
    let mut sched = two_models(false);
    serve(&mut sched, 0, 0);
    let mut a = Vec::new();
    sched.on_event(
        Event::Arrived {
            request: 1,
            model: 1,
        },
        &mut a,
    );
    assert!(offloads(&a).is_empty());
    assert!(matches!(a[0], Action::Evict(_)), "{a:?}");
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Copy(c) if c.model == 1)));
}
