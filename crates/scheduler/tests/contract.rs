//! The action contract, driven by hand (no simulator).

use std::path::Path;
use switchyard_core::workload::{Grouping, PolicySpec, System};
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::{Action, Event, Scheduler, Source};

fn workload(system: &str, extra: &str) -> (Workload, Schedule) {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1\n\
         cluster: {{ hardware: h200-pcie5, gpus: 2, gpu_memory_gib: 6 }}\n\
         models:\n  - {{ name: m, copies: 3, layers: 8, layer_mb: 200, layer_ms: 1.0, max_batch: 4{extra} }}\n\
         arrivals: {{ process: poisson, rate: 10 }}\n\
         policy: {{ system: {system} }}\n"
    );
    let w = Workload::parse(Path::new("t.yaml"), &text).unwrap();
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0), (0.1, 0)]);
    (w, s)
}

#[test]
fn computron_loads_every_stage_at_once_and_hands_activations_down_the_pipeline() {
    let (w, s) = workload("computron", ", parallel: { pp: 2 }");
    let mut sched = Scheduler::new(&w, &s).unwrap();
    let mut a = Vec::new();
    sched.on_event(
        Event::Arrived {
            request: 0,
            model: 0,
        },
        &mut a,
    );
    let copies: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            Action::Copy(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    // One whole-shard copy per stage, each over its own GPU's link.
    assert_eq!(copies.len(), 2);
    assert_ne!(copies[0].gpu, copies[1].gpu);
    assert!(copies
        .iter()
        .all(|c| c.source == Source::Pinned && c.bytes == 800_000_000));
    let Some(Action::Compute(t0)) = a.iter().find(|x| matches!(x, Action::Compute(_))).cloned()
    else {
        panic!("no compute: {a:?}")
    };
    let task = sched.task(t0).clone();
    assert_eq!((task.stage, task.input_from, task.batch_size), (0, None, 1));
    assert_eq!(task.waits.len(), 1);
    // The second request waits: the first stage's GPU is busy.
    a.clear();
    sched.on_event(
        Event::Arrived {
            request: 1,
            model: 0,
        },
        &mut a,
    );
    assert!(a.is_empty());
    for c in &copies {
        sched.on_event(Event::CopyDone { copy: c.id }, &mut a);
    }
    a.clear();
    sched.on_event(Event::ComputeDone { task: t0 }, &mut a);
    // Stage 1 runs batch 1 with activations from stage 0's GPU; stage 0 takes request 1.
    let computes: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            Action::Compute(t) => Some(sched.task(*t).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(computes.len(), 2);
    assert_eq!(computes[0].stage, 1);
    assert_eq!(computes[0].input_from, Some(task.gpus[0]));
    assert!(computes[0].waits.is_empty(), "stage 1 was loaded already");
    assert_eq!(computes[1].stage, 0);
    let b1 = computes[1].batch;
    assert_eq!(sched.batch(b1).requests, vec![1]);
    assert!(!sched.batch(b1).cold);
    sched.check_invariants().unwrap();
}

#[test]
fn pipeswitch_waits_per_layer_group() {
    let (w, s) = workload("pipeswitch", "");
    let policy = PolicySpec {
        grouping: Grouping::PerLayer,
        ..w.policy
    };
    let mut sched = Scheduler::with_policy(&w, &s, policy).unwrap();
    let mut a = Vec::new();
    sched.on_event(
        Event::Arrived {
            request: 7,
            model: 0,
        },
        &mut a,
    );
    let copies = a.iter().filter(|x| matches!(x, Action::Copy(_))).count();
    assert_eq!(copies, 8);
    let Some(Action::Compute(t)) = a.last().cloned() else {
        panic!()
    };
    let waits = &sched.task(t).waits;
    assert_eq!(waits.len(), 8);
    assert!(waits.windows(2).all(|p| p[0].0.end == p[1].0.start));
}

#[test]
fn resident_refuses_models_that_do_not_fit() {
    // Three 1.6 GB models, 2 GiB for weights per GPU, 2 GPUs: the third does not fit.
    let (w, s) = workload("resident", "");
    let e = Scheduler::new(&w, &s).unwrap_err();
    assert_eq!(e.field, "policy.system");
    assert!(
        e.message.contains("does not fit") && e.message.contains("m-2"),
        "{e}"
    );
    let ok = PolicySpec {
        system: System::Computron,
        ..w.policy
    };
    assert!(Scheduler::with_policy(&w, &s, ok).is_ok());
}
