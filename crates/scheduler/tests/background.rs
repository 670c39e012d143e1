//! Background jobs: the scheduler preempts a GPU's job before the first
//! compute issued there and resumes it once the GPU's computes are done.

use std::path::Path;
use switchyard_core::{Schedule, Workload};
use switchyard_scheduler::{Action, Event, Scheduler};

fn workload() -> (Workload, Schedule) {
    let text = "name: t\nseed: 1\nduration_s: 1\n\
         cluster: { hardware: h200-pcie5, gpus: 2, gpu_memory_gib: 6 }\n\
         models:\n  - { name: m, layers: 4, layer_mb: 100, layer_ms: 1.0, max_batch: 1 }\n\
         arrivals: { process: poisson, rate: 10 }\n\
         policy: { system: pipeswitch }\n\
         background:\n  - { name: train, gpu: 0, iteration_ms: 100, memory_gib: 0.5 }\n";
    let w = Workload::parse(Path::new("t.yaml"), text).unwrap();
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.0, 0), (0.0, 0)]);
    (w, s)
}

fn compute(a: &[Action]) -> Option<u32> {
    a.iter().find_map(|x| match x {
        Action::Compute(t) => Some(*t),
        _ => None,
    })
}

#[test]
fn job_is_preempted_before_the_first_compute_and_resumed_when_the_gpu_is_idle() {
    let (w, s) = workload();
    let mut sched = Scheduler::new(&w, &s).unwrap();
    let mut a = Vec::new();
    sched.on_event(
        Event::Arrived {
            request: 0,
            model: 0,
        },
        &mut a,
    );
    let t0 = compute(&a).expect("a compute");
    assert_eq!(sched.task(t0).gpus, vec![0]);
    let p = a
        .iter()
        .position(|x| *x == Action::Preempt(0))
        .expect("preempted");
    let c = a
        .iter()
        .position(|x| matches!(x, Action::Compute(_)))
        .unwrap();
    assert!(p < c, "{a:?}");
    assert_eq!(
        a.iter().filter(|x| matches!(x, Action::Resume(_))).count(),
        0
    );
    // A second request queues behind the first: no action for the job.
    a.clear();
    sched.on_event(
        Event::Arrived {
            request: 1,
            model: 0,
        },
        &mut a,
    );
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Preempt(_) | Action::Resume(_))),
        "{a:?}"
    );
    // Its compute is issued when the first is done: the job stays preempted.
    for x in a.clone() {
        if let Action::Copy(c) = x {
            a.clear();
            sched.on_event(Event::CopyDone { copy: c.id }, &mut a);
        }
    }
    a.clear();
    sched.on_event(Event::ComputeDone { task: t0 }, &mut a);
    let t1 = compute(&a).expect("the second batch");
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Preempt(_) | Action::Resume(_))),
        "{a:?}"
    );
    // The GPU is idle once that one is done: resumed, once.
    a.clear();
    sched.on_event(Event::ComputeDone { task: t1 }, &mut a);
    assert_eq!(
        a.iter()
            .filter(|x| matches!(x, Action::Resume(_)))
            .collect::<Vec<_>>(),
        vec![&Action::Resume(0)]
    );
}

#[test]
fn gpus_without_a_job_get_no_preemption() {
    let (mut w, s) = workload();
    w.background.clear();
    let mut sched = Scheduler::new(&w, &s).unwrap();
    let mut a = Vec::new();
    sched.on_event(
        Event::Arrived {
            request: 0,
            model: 0,
        },
        &mut a,
    );
    let t0 = compute(&a).unwrap();
    a.clear();
    sched.on_event(Event::ComputeDone { task: t0 }, &mut a);
    sched.on_event(
        Event::Arrived {
            request: 1,
            model: 0,
        },
        &mut a,
    );
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Preempt(_) | Action::Resume(_))),
        "{a:?}"
    );
}
