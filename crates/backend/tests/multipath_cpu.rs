//! Multi-path loading (`policy.loading: multipath`) on the CPU device:
//! pieces staged on a helper and forwarded land byte for byte where a
//! direct copy puts them, replay runs the scheduler's pieces end to end
//! (peer tracks in `timeline.json`), and a device without peer access is
//! refused at load time.

use std::path::Path;
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::device::HostBuffer;
use switchyard_backend::exec::CopyOp;
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::replay;
use switchyard_core::{records, Schedule, Workload};
use switchyard_scheduler::{Part, Via};

fn workload(dir: &Path, loading: &str) -> Workload {
    let text = format!(
        "name: mp\nseed: 5\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: 2\n  gpu_memory_gib: 4.1\n\
         models:\n  - name: syn\n    layers: 4\n    layer_mb: 4\n    layer_ms: 0.5\n    copies: 4\n    max_batch: 4\n    slo_ms: 1000\n\
         arrivals:\n  process: poisson\n  rate: 40\npolicy:\n  system: pipeswitch\n  eviction: lru\n  grouping: per_layer\n{loading}"
    );
    let p = dir.join("w.yaml");
    std::fs::write(&p, &text).unwrap();
    Workload::load(&p).unwrap()
}

const MULTIPATH: &str =
    "  loading: multipath\n  multipath_helpers: 1\n  multipath_staging_mib: 8\n";

#[test]
fn pieces_through_a_helper_land_byte_for_byte_like_a_direct_copy() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), MULTIPATH);
    let mut ex = replay::build_executor(
        Box::new(CpuDevice::new(2)),
        &w,
        &WeightSource::Random { seed: 3 },
    )
    .unwrap();
    let layers = 0..2;
    let group: u64 = 8 << 20;
    let base = 16 << 20;
    // Direct: the whole group onto GPU 1 at `base`.
    ex.copy(CopyOp {
        key: 1,
        gpu: 1,
        model: 0,
        layers: layers.clone(),
        pool_offset: base,
        pinned: true,
        ..CopyOp::default()
    })
    .unwrap();
    // Multi-path: the same group onto GPU 0 in three pieces, two through
    // GPU 1's staging (the second reusing the first's staging bytes).
    let staging = ex.pool.pool_bytes - (4 << 20);
    let pieces = [
        (0u64, 4u64 << 20, None),
        (4 << 20, 2 << 20, Some(staging)),
        (6 << 20, 2 << 20, Some(staging)),
    ];
    for (i, &(off, bytes, via)) in pieces.iter().enumerate() {
        ex.copy(CopyOp {
            key: 10 + i as u64,
            gpu: 0,
            model: 0,
            layers: layers.clone(),
            pool_offset: base,
            pinned: true,
            part: Some(Part {
                offset: off,
                group_bytes: group,
            }),
            bytes,
            via: via.map(|s| Via {
                helper: 1,
                staging_offset: s,
            }),
            ..CopyOp::default()
        })
        .unwrap();
    }
    let done = ex.drain().unwrap();
    assert_eq!(done.len(), 4);
    let (_, total) = ex.shards[0].main_range(layers);
    let read = |ex: &mut switchyard_backend::exec::Executor, gpu: usize| {
        let buf = HostBuffer::heap(total, false).unwrap();
        ex.dev.copy_d2h(gpu, base, &buf, 0, total).unwrap();
        ex.dev.synchronize_all().unwrap();
        buf.as_slice().to_vec()
    };
    let direct = read(&mut ex, 1);
    let multi = read(&mut ex, 0);
    assert!(direct.iter().any(|&b| b != 0), "weights were copied");
    assert!(direct == multi, "pieces differ from the direct copy");
}

#[test]
fn replay_carries_out_multipath_pieces_with_peer_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), MULTIPATH);
    replay::check_supported(&w).unwrap();
    // Each model in turn, 30 ms apart: every load finds the other GPU idle.
    let arrivals: Vec<(f64, u32)> = (0..8).map(|i| (0.03 * i as f64, i as u32 % 4)).collect();
    let s = Schedule::from_arrivals(w.model_names(), arrivals);
    let ex = replay::build_executor(
        Box::new(CpuDevice::new(2)),
        &w,
        &WeightSource::Random { seed: 1 },
    )
    .unwrap();
    let out = dir.path().join("out");
    let r = replay::replay(ex, &w, &s, &out).unwrap();
    assert_eq!(r.summary.requests, 8);
    let recs = records::read(&out.join("requests.csv")).unwrap();
    assert!(recs.iter().all(|r| r.latency_s > 0.0));
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("timeline.json")).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let peer = events.iter().filter(|e| e["cat"] == "peer").count();
    assert!(peer >= 4, "no forwarded pieces in the timeline ({peer})");
    assert!(events.iter().any(|e| e["ph"] == "M"
        && e["args"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("peer link from GPU"))));
    // Each forward's host-to-helper copy is on the helper's link track,
    // ending when the forward starts.
    for f in events.iter().filter(|e| e["cat"] == "peer") {
        let leg = events.iter().find(|c| {
            c["cat"] == "copy"
                && c["pid"] == f["args"]["from"]
                && c["args"]["bytes"] == f["args"]["bytes"]
                && (c["ts"].as_f64().unwrap() + c["dur"].as_f64().unwrap()
                    - f["ts"].as_f64().unwrap())
                .abs()
                    < 0.01
        });
        assert!(leg.is_some(), "no helper copy for {f}");
    }
}

#[test]
fn multipath_without_peer_access_is_refused_at_load_time() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), MULTIPATH);
    let mut dev = CpuDevice::new(2);
    dev.peer = false;
    let e = switchyard_backend::exec::check_peer_access(&dev, &w).unwrap_err();
    assert_eq!(e.field, "policy.loading");
    assert!(e.to_string().contains("no peer access"), "{e}");
    let Err(e) = replay::build_executor(Box::new(dev), &w, &WeightSource::Random { seed: 1 })
    else {
        panic!("built an executor for multipath without peer access");
    };
    assert!(format!("{e:#}").contains("policy.loading"), "{e:#}");
    // Direct loading needs no peer access.
    let w = workload(dir.path(), "");
    let mut dev = CpuDevice::new(2);
    dev.peer = false;
    switchyard_backend::exec::check_peer_access(&dev, &w).unwrap();
}
