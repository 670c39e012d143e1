use super::*;
use std::path::Path;
use switchyard_scheduler::Source;

fn quiet() -> SimOptions {
    SimOptions {
        progress: false,
        ..SimOptions::default()
    }
}

fn workload(system: &str) -> Workload {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1\n\
         cluster: {{ hardware: h200-pcie5, gpus: 2 }}\n\
         models:\n  - {{ name: m, layers: 4, layer_mb: 10, layer_ms: 1.0, max_batch: 1 }}\n\
         arrivals: {{ process: poisson, rate: 1 }}\n\
         policy: {{ system: {system} }}\n"
    );
    Workload::parse(Path::new("t.yaml"), &text).unwrap()
}

fn copy(id: u32, gpu: u32, bytes: u64, source: Source) -> CopyOp {
    CopyOp {
        id,
        model: 0,
        stage: 0,
        gpu,
        shard: 0,
        layers: 0..1,
        bytes,
        shard_offset: 0,
        pool_offset: 0,
        source,
        streamed: false,
        via: None,
        part: None,
    }
}

#[test]
fn copies_queue_on_their_link_and_overlap_across_links() {
    let w = workload("pipeswitch");
    let s = Schedule::from_arrivals(w.model_names(), vec![]);
    let opts = quiet();
    let mut e = Engine::new(&w, &s, w.policy, &opts).unwrap();
    let link = w.cluster.hardware.pinned;
    let one = link.time(1 << 20);
    assert_eq!(
        e.time_copy(&copy(0, 0, 1 << 20, Source::Pinned)),
        (0.0, one)
    );
    // Same link: queued behind the first.
    assert_eq!(
        e.time_copy(&copy(1, 0, 1 << 20, Source::Pinned)),
        (one, one + link.time(1 << 20))
    );
    // Another GPU's link: at once.
    assert_eq!(
        e.time_copy(&copy(2, 1, 1 << 20, Source::Pinned)),
        (0.0, one)
    );
    let pageable = w.cluster.hardware.pageable.time(1 << 20);
    let (start, end) = e.time_copy(&copy(3, 1, 1 << 20, Source::Pageable));
    assert_eq!(end - start, pageable);
    assert_eq!(e.copy_done, vec![one, one + one, one, end]);
}

#[test]
fn completions_go_before_arrivals_at_the_same_time() {
    // Resident: the first request's compute is the only completion.
    let w = workload("resident");
    let opts = quiet();
    let first = Schedule::from_arrivals(w.model_names(), vec![(0.5, 0)]);
    let mut e = Engine::new(&w, &first, w.policy, &opts).unwrap();
    let ev = e.next_event().unwrap();
    assert_eq!(
        ev,
        Event::Arrived {
            request: 0,
            model: 0
        }
    );
    assert_eq!(e.now(), 0.5);
    let mut records = Vec::new();
    e.step(ev, &mut records).unwrap();
    let done = f64::from_bits(e.heap.peek().unwrap().t);
    assert!(done > 0.5);
    // A second arrival exactly when the first compute completes.
    let both = Schedule::from_arrivals(w.model_names(), vec![(0.5, 0), (done, 0)]);
    let mut e = Engine::new(&w, &both, w.policy, &opts).unwrap();
    let ev = e.next_event().unwrap();
    e.step(ev, &mut records).unwrap();
    assert!(matches!(e.next_event(), Some(Event::ComputeDone { .. })));
    assert_eq!(e.now(), done);
    assert!(matches!(
        e.next_event(),
        Some(Event::Arrived { request: 1, .. })
    ));
    assert!(e.scheduler().busy());
}

#[test]
fn a_finished_batch_is_recorded_with_the_request_overhead() {
    let w = workload("resident");
    let opts = quiet();
    let s = Schedule::from_arrivals(w.model_names(), vec![(0.25, 0)]);
    let mut e = Engine::new(&w, &s, w.policy, &opts).unwrap();
    let mut records: Vec<RequestRecord> = Vec::new();
    let ev = e.next_event().unwrap();
    e.step(ev, &mut records).unwrap();
    let (start, end) = (e.batch_start[0], f64::from_bits(e.heap.peek().unwrap().t));
    let ev = e.next_event().unwrap();
    e.step(ev, &mut records).unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    let overhead = w.cluster.hardware.compute.request_overhead_s;
    assert_eq!((r.start_s, r.finish_s), (start, end + overhead));
    assert_eq!(r.latency_s, end + overhead - 0.25);
    assert!(e.next_event().is_none());
}
