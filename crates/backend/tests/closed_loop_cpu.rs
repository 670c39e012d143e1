//! `replay` of a closed-loop workload on the CPU device: the loop runs on
//! replay's own completions (each client's next request arrives only once
//! its previous one is done, plus the think time), in turns with another
//! task when the workload has a scheduling cycle, and schedule.csv holds
//! the arrivals as produced.

use std::path::Path;
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::replay;
use switchyard_core::{records, Schedule, Workload};

fn workload(dir: &Path, arrivals: &str) -> Workload {
    let text = format!(
        "name: closed\nseed: 5\nduration_s: 0.4\n\
         cluster: {{ hardware: h200-pcie5, gpus: 1, gpu_memory_gib: 4.001 }}\n\
         models:\n  - {{ name: train, layers: 4, layer_mb: 0.1, layer_ms: 0.5 }}\n  \
         - {{ name: syn, layers: 4, layer_mb: 0.1, layer_ms: 0.5, copies: 2 }}\n\
         arrivals: {arrivals}\n\
         policy: {{ system: pipeswitch, grouping: per_layer, max_loaded: 1 }}\n"
    );
    let p = dir.join("w.yaml");
    std::fs::write(&p, text).unwrap();
    Workload::load(&p).unwrap()
}

fn run(w: &Workload, out: &Path) -> Vec<records::RequestRecord> {
    replay::check_supported(w).unwrap();
    let ex = replay::build_executor(
        Box::new(CpuDevice::new(1)),
        w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let r = replay::replay_closed_until(ex, w, out, &stop).unwrap();
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert_eq!(r.summary.requests, recs.len() as u64);
    recs
}

#[test]
fn each_client_waits_for_its_reply_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(
        dir.path(),
        "{ process: closed_loop, clients: 2, think_ms: 5 }",
    );
    let out = dir.path().join("out");
    let recs = run(&w, &out);
    // Client c asks for model c mod 3: train, syn-0.
    for model in ["train", "syn-0"] {
        let mine: Vec<_> = recs.iter().filter(|r| r.model == model).collect();
        assert!(mine.len() >= 3, "{model}: {} requests", mine.len());
        for pair in mine.windows(2) {
            // Never two outstanding: the next arrives think time after the reply.
            assert!(
                pair[1].arrival_s >= pair[0].finish_s + 0.005 - 1e-9,
                "{model}: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    assert!(
        recs.iter().all(|r| r.model != "syn-1"),
        "two clients, two models"
    );
    // schedule.csv: the arrivals as produced, ids in arrival order.
    let s = Schedule::read_csv(&out.join("schedule.csv"), &w.model_names()).unwrap();
    assert_eq!(s.requests.len(), recs.len());
    for (q, r) in s.requests.iter().zip(&recs) {
        assert_eq!((q.id, q.arrival_s), (r.id, r.arrival_s));
        assert_eq!(s.models[q.model as usize], r.model);
    }
}

#[test]
fn clients_send_only_in_their_turns_and_the_task_evicts_their_model() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(
        dir.path(),
        "{ process: closed_loop, clients: 1, cycle_s: 0.1, cycle_task: train }",
    );
    let out = dir.path().join("out");
    let recs = run(&w, &out);
    let task: Vec<_> = recs.iter().filter(|r| r.model == "train").collect();
    assert_eq!(
        task.iter().map(|r| r.arrival_s).collect::<Vec<_>>(),
        vec![0.0, 0.2],
        "one task request at each of its turns"
    );
    let client: Vec<_> = recs.iter().filter(|r| r.model == "syn-0").collect();
    assert!(client.len() >= 4, "{}", client.len());
    for r in &client {
        let turn = (r.arrival_s / 0.2).floor() * 0.2 + 0.1;
        assert!(
            r.arrival_s >= turn - 1e-9 && r.arrival_s < turn + 0.1,
            "sent outside its turn: {r:?}"
        );
    }
    // Each turn's first request finds its model evicted by the task's (max_loaded 1).
    for start in [0.1, 0.3] {
        let first = client
            .iter()
            .find(|r| (r.arrival_s - start).abs() < 1e-9)
            .expect("a request at the turn's start");
        assert!(first.cold, "{first:?}");
    }
}
