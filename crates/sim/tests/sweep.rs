//! `sim sweep`: grid semantics, the same bytes whatever the thread count,
//! and bad flags refused before anything is written.

mod common;
use common::sim;
use std::path::Path;
use switchyard_core::workload::{PolicySpec, System};
use switchyard_core::Workload;
use switchyard_sim::sweep::{self, Grid};

const BURSTY: &str = "../../experiments/bursty.yaml";

#[test]
fn the_same_bytes_on_one_thread_and_on_three() {
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for jobs in ["1", "3"] {
        let out = dir.path().join(jobs);
        let o = sim(&[
            "sweep",
            "-w",
            BURSTY,
            "-o",
            out.to_str().unwrap(),
            "--rate-scale",
            "0.5,1",
            "--system",
            "computron,pipeswitch",
            "--seeds",
            "2",
            "--jobs",
            jobs,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.join("sweep.png").exists() && out.join("sweep.svg").exists());
        outs.push(std::fs::read(out.join("sweep.csv")).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
    let text = String::from_utf8(outs[0].clone()).unwrap();
    assert_eq!(text.lines().count(), 1 + 2 * 2 * 2);
    assert!(text
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("0.5,,4,4,40,computron,lru,optimal,42,"));
}

#[test]
fn bad_points_are_refused_with_exit_2_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    for (flags, says) in [
        (vec!["--gpus", "2"], "--gpus"),
        (vec!["--gpu-memory-gib", "0.5"], "--gpu-memory-gib"),
        (vec!["--system", "resident"], "resident"),
        (vec!["--time-scale", "0.5"], "no trace"),
        (vec!["--seeds", "0"], "--seeds"),
        (vec!["--gpus", "5000"], "--max-gpus raises"),
        (vec!["--gpus", "8", "--max-gpus", "6"], "at most 6 GPUs"),
        (vec!["--max-models", "3"], "--max-models raises"),
    ] {
        let mut args = vec!["sweep", "-w", BURSTY, "-o", out.to_str().unwrap()];
        args.extend(flags);
        let o = sim(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!out.exists(), "{err}");
    }
}

#[test]
fn a_trace_rate_scale_keeps_the_requests_and_compresses_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("arrival_s,model\n");
    for i in 0..200 {
        text += &format!("{}.5,m{}\n", i, i % 3);
    }
    std::fs::write(dir.path().join("t.csv"), text).unwrap();
    let w = "name: t\nseed: 1\nduration_s: 300\ncluster: { hardware: a100-pcie4, gpus: 1 }\n\
             trace_models:\n  classes: [{ layers: 4, layer_mb: 10, layer_ms: 1 }]\n\
             arrivals: { process: trace, path: t.csv }\npolicy: { system: pipeswitch }\n";
    let base = Workload::parse(&dir.path().join("w.yaml"), w).unwrap();
    let grid = Grid {
        rate_scale: vec![0.5, 4.0],
        ..Grid::default()
    };
    let points = sweep::points(&base, &grid).unwrap();
    assert_eq!(points.len(), 2);
    let rows = sweep::run(&base, &points, &[1], &|| {}).unwrap();
    for r in &rows {
        assert_eq!(r.result.summary.requests, 200);
    }
    assert!(rows[1].result.run.simulated_s < rows[0].result.run.simulated_s / 4.0);
    assert!(sweep::apply(
        &base,
        &sweep::Point {
            cv: Some(2.0),
            ..points[0]
        }
    )
    .is_err());
}

#[test]
fn a_poisson_workload_swept_over_cv_becomes_gamma() {
    let base = Workload::load(Path::new("../../experiments/poisson.yaml")).unwrap();
    let grid = Grid {
        cv: vec![1.0, 3.0],
        system: vec![System::Pipeswitch],
        ..Grid::default()
    };
    let points = sweep::points(&base, &grid).unwrap();
    let w = sweep::apply(&base, &points[1]).unwrap();
    assert!(matches!(
        w.arrivals.process,
        switchyard_core::workload::Process::Gamma { cv, .. } if cv == 3.0
    ));
    assert_eq!(
        points[0].policy,
        PolicySpec {
            system: System::Pipeswitch,
            ..base.policy
        }
    );
}

/// `sim sweep` over a small grid of bursty.yaml, with `extra` flags, into `out`.
fn small_sweep(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "sweep",
        "-w",
        BURSTY,
        "-o",
        out.to_str().unwrap(),
        "--rate-scale",
        "0.5,1",
        "--system",
        "computron,pipeswitch",
        "--seeds",
        "2",
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    sim(&args)
}

#[test]
fn shards_merged_are_the_unsharded_sweep_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let o = small_sweep(&full, &["--x", "rate_scale", "--log-x"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 8 jobs: 3 slices of 3, 3 and 2 jobs; 10 slices, two of them empty.
    for n in [3, 10] {
        let shards = dir.path().join(format!("shards{n}"));
        for i in 0..n {
            let o = small_sweep(
                &shards,
                &[
                    "--x",
                    "rate_scale",
                    "--log-x",
                    "--shard",
                    &format!("{i}/{n}"),
                ],
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(
                !shards.join("sweep.csv").exists(),
                "a shard writes only its slice"
            );
        }
        let merged = dir.path().join(format!("merged{n}"));
        let o = sim(&[
            "sweep-merge",
            "-o",
            merged.to_str().unwrap(),
            shards.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for f in ["sweep.csv", "sweep.md", "sweep.svg", "sweep.png"] {
            assert_eq!(
                std::fs::read(full.join(f)).unwrap(),
                std::fs::read(merged.join(f)).unwrap(),
                "{f} of {n} shards differs"
            );
        }
    }
}

#[test]
fn a_merge_refuses_missing_doubled_or_foreign_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for i in 0..2 {
        let shard = format!("{i}/2");
        assert!(small_sweep(&a, &["--shard", &shard]).status.success());
    }
    assert!(small_sweep(&b, &["--shard", "1/2", "--seed", "7"])
        .status
        .success());
    let file = |d: &Path, i: u32| d.join(format!("shard-{i}-of-2.json"));
    for (shards, says) in [
        (vec![file(&a, 0)], "shard 1/2 is missing"),
        (vec![file(&a, 0), file(&a, 0), file(&a, 1)], "given twice"),
        (vec![file(&a, 0), file(&b, 1)], "another sweep"),
        (vec![BURSTY.into()], "not a sweep shard file"),
    ] {
        let out = dir.path().join("merged");
        let mut args = vec![
            "sweep-merge".to_string(),
            "-o".into(),
            out.display().to_string(),
        ];
        args.extend(shards.iter().map(|p| p.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = sim(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{shards:?}: {err}");
        assert!(err.contains(says), "{shards:?}: {err}");
        assert!(!out.exists(), "{shards:?} wrote {}", out.display());
    }
    let o = small_sweep(&a, &["--shard", "2/2"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_point_that_draws_no_request_is_a_row_not_a_failed_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("sparse.yaml");
    std::fs::write(
        &w,
        "name: sparse\nseed: 3\nduration_s: 1\ncluster: { hardware: h200-pcie5, gpus: 1 }\n\
         models:\n  - { name: a, layers: 2, layer_mb: 1, layer_ms: 0.1 }\n\
         arrivals: { process: poisson, rate: 1 }\npolicy: { system: pipeswitch }\n",
    )
    .unwrap();
    let out = dir.path().join("o");
    let o = sim(&[
        "sweep",
        "-w",
        w.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--rate-scale",
        "0.01,100",
        "--seeds",
        "2",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("2 of 4 runs drew no request"), "{err}");
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    // The empty point: 0 requests, empty latency and SLO cells.
    assert!(lines[1].contains(",0,,,,,,,0,0,"), "{}", lines[1]);
    // The busy point: real figures.
    let cells: Vec<&str> = lines[3].split(',').collect();
    assert!(cells[9].parse::<u64>().unwrap() > 10, "{}", lines[3]);
    assert!(cells[11].parse::<f64>().unwrap() > 0.0, "{}", lines[3]);
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("| no request |"), "{md}");
    assert!(out.join("sweep.png").exists());
}
