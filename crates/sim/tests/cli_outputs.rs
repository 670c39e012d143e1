//! The `sim` binary end to end: every output, byte-identical reruns,
//! `--compare-systems`, and refusals that write nothing.

mod common;
use common::sim;
use std::path::{Path, PathBuf};
use std::process::Output;

const FILES: [&str; 6] = [
    "schedule.csv",
    "requests.csv",
    "summary.json",
    "timeline.json",
    "latency_cdf.svg",
    "latency_cdf.png",
];

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

/// `sim -w workload -o out` and `extra` flags.
fn sim_on(workload: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "-w",
        workload.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sim(&args)
}

/// A small workload: 5 models on 2 GPUs, 40 s of Poisson arrivals.
fn small_workload(dir: &Path, extra_model: &str) -> PathBuf {
    let path = dir.join("small.yaml");
    let text = format!(
        "name: small
seed: 7
duration_s: 40
cluster: {{ hardware: h200-pcie5, gpus: 2, gpu_memory_gib: 34 }}
models:
  - arch: opt-6.7b
    copies: 5
    parallel: {{ tp: 1, pp: 2 }}
    max_batch: 4
    slo_ms: 1000
{extra_model}arrivals: {{ process: poisson, rate: 10 }}
policy: {{ system: computron, eviction: lru }}
"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_run_writes_every_output_and_reruns_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_workload(dir.path(), "");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        ok(&sim_on(&w, out, &[]));
    }
    for f in FILES {
        let x = std::fs::read(a.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!x.is_empty(), "{f} is empty");
        assert_eq!(x, std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
    let csv = std::fs::read_to_string(a.join("requests.csv")).unwrap();
    assert!(csv.starts_with("id,model,arrival_s,start_s,finish_s,latency_s"));
    let sched = std::fs::read_to_string(a.join("schedule.csv")).unwrap();
    assert_eq!(csv.lines().count(), sched.lines().count());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("summary.json")).unwrap()).unwrap();
    for key in ["requests", "mean_s", "p50_s", "p90_s", "p99_s", "max_s"] {
        assert!(summary[key].is_number(), "summary.json lacks {key}");
    }
    assert!(summary["loads"].as_u64().unwrap() > 0);
    assert_eq!(summary["models"].as_array().unwrap().len(), 5);
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("timeline.json")).unwrap()).unwrap();
    assert!(trace["traceEvents"].as_array().unwrap().len() > 10);
    // No temporary file is left behind.
    for e in std::fs::read_dir(&a).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.contains("tmp"), "left over: {name}");
    }
    // Another seed, another schedule and other records.
    let c = dir.path().join("c");
    ok(&sim_on(&w, &c, &["--seed", "8"]));
    assert_ne!(
        std::fs::read(a.join("requests.csv")).unwrap(),
        std::fs::read(c.join("requests.csv")).unwrap()
    );
}

#[test]
fn no_requests_csv_leaves_only_that_file_out() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_workload(dir.path(), "");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&sim_on(&w, &a, &[]));
    let o = sim_on(&w, &b, &["--no-requests-csv"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("requests.csv not written"), "{err}");
    assert!(!b.join("requests.csv").exists());
    // Everything else is the same, byte for byte.
    for f in FILES.iter().filter(|&&f| f != "requests.csv") {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")),
            "{f} differs"
        );
    }
    // `--compare-systems` reads the file: the two are refused together.
    let c = dir.path().join("c");
    let o = sim_on(&w, &c, &["--no-requests-csv", "--compare-systems"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--no-requests-csv") && err.contains("--compare-systems"),
        "{err}"
    );
    assert!(!c.exists());
}

#[test]
fn flags_override_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_workload(dir.path(), "");
    let out = dir.path().join("o");
    ok(&sim_on(
        &w,
        &out,
        &[
            "--system",
            "pipeswitch",
            "--eviction",
            "belady",
            "--grouping",
            "per_layer",
            "--no-timeline",
        ],
    ));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["system"], "pipeswitch");
    assert_eq!(s["eviction"], "belady");
    assert_eq!(s["grouping"], "per_layer");
    assert!(!out.join("timeline.json").exists());
}

#[test]
fn offload_flag_turns_evictions_into_offloads_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_workload(dir.path(), "");
    let out = dir.path().join("on");
    ok(&sim_on(&w, &out, &["--offload", "on"]));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let count = s["offloads"]["count"].as_u64().expect("offloads reported");
    assert!(count > 0, "five models on two GPUs evict: {s}");
    let timeline = std::fs::read_to_string(out.join("timeline.json")).unwrap();
    assert!(timeline.contains("\"cat\":\"offload\""));
    // Off (the workload's default): no field.
    let off = dir.path().join("off");
    ok(&sim_on(&w, &off, &["--offload", "off"]));
    let s = std::fs::read_to_string(off.join("summary.json")).unwrap();
    assert!(!s.contains("offloads"), "{s}");
    // A system that never evicts refuses it, naming the flag, writing nothing.
    let refused = dir.path().join("refused");
    let o = sim_on(&w, &refused, &["--offload", "on", "--system", "resident"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`--offload`"));
    assert!(!refused.exists());
}

#[test]
fn multipath_grouping_without_multipath_is_refused_as_replay_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_workload(dir.path(), "");
    let out = dir.path().join("refused");
    let o = sim_on(&w, &out, &["--multipath-grouping", "one_link"]);
    assert_eq!(o.status.code(), Some(2));
    // The message of core::overrides, which `replay` shows too
    // (crates/backend/tests/overrides_cpu.rs).
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("field `--multipath-grouping`: only meaningful with multi-path loading"),
        "{err}"
    );
    assert!(!out.exists());
    // `--system` still conflicts with `--compare-systems` through the
    // shared flags.
    let o = sim_on(&w, &out, &["--compare-systems", "--system", "pipeswitch"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn compare_systems_runs_every_system_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_workload(dir.path(), "");
    let out = dir.path().join("cmp");
    let o = sim_on(&w, &out, &["--compare-systems", "--log-x"]);
    ok(&o);
    // Five OPT-6.7B (12.4 GiB each) do not all fit in 2 x 30 GiB for weights.
    assert!(String::from_utf8_lossy(&o.stderr).contains("skipping resident"));
    for system in ["computron", "pipeswitch", "stop-and-start", "streaming"] {
        assert!(out.join(system).join("requests.csv").is_file(), "{system}");
        assert!(
            out.join(system).join("latency_cdf.svg").is_file(),
            "{system}"
        );
    }
    assert!(!out.join("resident").exists());
    for f in [
        "compare.json",
        "cdf.svg",
        "cdf.png",
        "per_model.svg",
        "table.md",
        "table.csv",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let all: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    let systems: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["system"].as_str().unwrap())
        .collect();
    assert_eq!(
        systems,
        ["computron", "pipeswitch", "stop-and-start", "streaming"]
    );
    // Same schedule for every system: the same request ids in each file.
    let ids = |s: &str| {
        let mut v: Vec<String> = std::fs::read_to_string(out.join(s).join("requests.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("computron"), ids("stop-and-start"));
}

#[test]
fn one_gpu_system_refuses_a_model_that_needs_two_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // OPT-30B (about 56 GiB) fits split over two GPUs of 30 GiB for weights, not on one.
    let w = small_workload(
        dir.path(),
        "  - arch: opt-30b\n    parallel: { tp: 2, pp: 1 }\n",
    );
    let out = dir.path().join("o");
    let o = sim_on(&w, &out, &["--system", "pipeswitch"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("small.yaml") && err.contains("opt-30b") && err.contains("on one GPU"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn unknown_system_is_a_usage_error() {
    let o = sim(&["-w", "x.yaml", "--system", "magic"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("computron, pipeswitch"), "{err}");
}

#[test]
fn unreadable_workload_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, b"name: \xff\xfe\n").unwrap();
    for w in [bad, dir.path().join("missing.yaml")] {
        let o = sim(&[
            "-w",
            w.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(w.to_str().unwrap()), "{err}");
        assert!(!dir.path().join("o").exists());
    }
}

/// Every bundled workload (experiments/ and both halves of
/// experiments/validation/) loads and yields a schedule; the validation ones
/// hold at least 1,000 requests.
#[test]
fn bundled_workloads_load_and_validation_ones_are_large_enough() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    let validation = experiments().join("validation");
    for dir in [
        experiments(),
        validation.join("tune"),
        validation.join("holdout"),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let out = tmp.path().join(f.file_stem().unwrap());
            let o = sim_on(&f, &out, &["--schedule-only"]);
            assert!(
                o.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            let rows = std::fs::read_to_string(out.join("schedule.csv"))
                .unwrap()
                .lines()
                .count()
                - 1;
            if dir.starts_with(&validation) {
                assert!(rows >= 1000, "{}: {rows} requests", f.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 16, "{seen} workloads");
}

#[test]
fn size_caps_are_refused_before_any_write_and_raised_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    let w = small_workload(dir.path(), "");
    let out = dir.path().join("o");
    let o = sim_on(&w, &out, &["--max-models", "4", "--no-timeline"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("small.yaml:") && err.contains("models[0].copies"),
        "{err}"
    );
    assert!(err.contains("more than 4 models"), "{err}");
    assert!(!out.exists(), "{err}");
    let o = sim_on(&w, &out, &["--max-gpus", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cluster.gpus") && err.contains("--max-gpus"),
        "{err}"
    );
    assert!(!out.exists(), "{err}");
    // Exactly at the caps: accepted.
    ok(&sim_on(&w, &out, &["--max-models", "5", "--max-gpus", "2"]));
}

#[test]
fn compare_systems_skips_streaming_when_models_start_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("warm.yaml");
    std::fs::write(
        &w,
        "name: warm\nseed: 1\nduration_s: 5\ncluster: { hardware: h200-pcie5, gpus: 1 }\n\
         models:\n  - { name: m, copies: 2, layers: 4, layer_mb: 10, layer_ms: 0.5 }\n\
         arrivals: { process: poisson, rate: 10 }\n\
         policy: { system: pipeswitch, preload: [m-1] }\n",
    )
    .unwrap();
    let out = dir.path().join("cmp");
    let o = sim_on(&w, &out, &["--compare-systems", "--no-timeline"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("skipping streaming"), "{err}");
    assert!(out.join("resident").join("requests.csv").is_file());
    assert!(!out.join("streaming").exists());
    // Asked for by name, it is an input error.
    let o = sim_on(&w, &dir.path().join("s"), &["--system", "streaming"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("s").exists());
}

#[test]
fn the_papers_workloads_load_with_their_testbed_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    let papers = experiments().join("papers");
    let profiles = experiments().join("../profiles");
    for (sub, profile) in [
        ("computron", "computron-perlmutter.yaml"),
        ("pipeswitch", "pipeswitch-p3.yaml"),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(papers.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 3, "{sub}");
        for f in files {
            let profile = profiles.join(profile);
            for hw in [None, Some(profile.to_str().unwrap())] {
                let out = tmp.path().join(f.file_stem().unwrap());
                // A closed loop's arrivals come from a run, never ahead.
                let closed = std::fs::read_to_string(&f)
                    .unwrap()
                    .contains("process: closed_loop");
                let mut extra = vec![if closed {
                    "--no-timeline"
                } else {
                    "--schedule-only"
                }];
                if let Some(h) = hw {
                    extra.extend(["--hardware", h]);
                }
                let o = sim_on(&f, &out, &extra);
                assert!(
                    o.status.success(),
                    "{}: {}",
                    f.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}

#[test]
fn a_workload_that_draws_no_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("sparse.yaml");
    std::fs::write(
        &w,
        "name: sparse\nseed: 3\nduration_s: 1\ncluster: { hardware: h200-pcie5, gpus: 1 }\n\
         models:\n  - { name: a, layers: 2, layer_mb: 1, layer_ms: 0.1 }\n\
         arrivals: { process: poisson, rate: 0.000001 }\npolicy: { system: pipeswitch }\n",
    )
    .unwrap();
    let out = dir.path().join("o");
    let o = sim_on(&w, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no request arrives within duration_s"),
        "{err}"
    );
    assert!(!out.exists(), "{err}");
}
