//! `replay` takes `sim`'s policy overrides (`core::overrides`), with the
//! same names and errors: a schedule is replayed on the CPU device under
//! `--loading multipath --multipath-grouping ...`, and bad overrides exit 2
//! naming the flag.

mod replay_cli;

use std::path::Path;
use switchyard_core::overrides::PolicyOverrides;
use switchyard_core::workload::MultipathGrouping;
use switchyard_core::{Schedule, Workload};

/// A one-link workload of four synthetic models on two GPUs, written to
/// `dir/w.yaml`, with a schedule of each model in turn in `dir/s.csv`.
fn files(dir: &Path) -> (String, String) {
    let text = "name: ov\nseed: 5\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: 2\n  gpu_memory_gib: 4.1\n\
         models:\n  - name: syn\n    layers: 6\n    layer_mb: 4\n    layer_ms: 0.5\n    copies: 4\n    max_batch: 4\n    slo_ms: 1000\n\
         arrivals:\n  process: poisson\n  rate: 40\npolicy:\n  system: pipeswitch\n  eviction: lru\n  grouping: optimal\n";
    let w = dir.join("w.yaml");
    std::fs::write(&w, text).unwrap();
    let names = Workload::load(&w).unwrap().model_names();
    let arrivals: Vec<(f64, u32)> = (0..4).map(|i| (0.03 * i as f64, i as u32)).collect();
    let s = dir.join("s.csv");
    Schedule::from_arrivals(names, arrivals)
        .write_csv(&s)
        .unwrap();
    (w.display().to_string(), s.display().to_string())
}

fn replay(w: &str, s: &str, out: &Path, flags: &[&str]) -> (Option<i32>, String) {
    replay_cli::replay_cpu(Path::new(w), Path::new(s), out, flags)
}

/// `(multipath_groups, one_link_groups)` of the first model in a run's
/// `summary.json`.
fn groups(out: &Path) -> (u64, u64) {
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let m = &s["models"][0];
    let n = |k: &str| m.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    (n("multipath_groups"), n("one_link_groups"))
}

#[test]
fn replay_takes_the_multipath_overrides_of_sim() {
    let dir = tempfile::tempdir().unwrap();
    let (w, s) = files(dir.path());
    let run = |name: &str, flags: &[&str]| {
        let out = dir.path().join(name);
        let (code, err) = replay(&w, &s, &out, flags);
        assert_eq!(code, Some(0), "{flags:?}: {err}");
        out
    };
    // As written: one link, no multi-path plan.
    let direct = run("direct", &[]);
    assert_eq!(groups(&direct), (0, 0));
    // `--loading multipath`: helper-aware grouping by default, planned.
    let helpers = run("helpers", &["--loading", "multipath"]);
    let (split, one) = groups(&helpers);
    assert!(split > 0 && one > 0, "{split} / {one}");
    // `--multipath-grouping one_link`: multi-path loads, one-link groups.
    let one_link = run(
        "one_link",
        &["--loading", "multipath", "--multipath-grouping", "one_link"],
    );
    assert_eq!(groups(&one_link), (0, 0));
    let trace = std::fs::read_to_string(one_link.join("timeline.json")).unwrap();
    assert!(trace.contains("\"cat\":\"peer\""), "no forwarded pieces");
}

#[test]
fn bad_overrides_exit_2_with_the_shared_message() {
    let dir = tempfile::tempdir().unwrap();
    let (w, s) = files(dir.path());
    let out = dir.path().join("out");
    // Multi-path grouping without multi-path loading: refused as `sim`
    // refuses it (the message is core::overrides', the one both use).
    let (code, err) = replay(&w, &s, &out, &["--multipath-grouping", "helpers"]);
    assert_eq!(code, Some(2), "{err}");
    let mut wl = Workload::load(Path::new(&w)).unwrap();
    let want = PolicyOverrides {
        multipath_grouping: Some(MultipathGrouping::Helpers),
        ..PolicyOverrides::default()
    }
    .apply(&mut wl, Path::new(&w))
    .unwrap_err();
    assert!(err.contains(&want.to_string()), "{err}");
    assert!(err.contains("field `--multipath-grouping`"), "{err}");
    assert!(!out.exists(), "a refused run wrote {out:?}");
    // An unknown value lists the names.
    let (code, err) = replay(&w, &s, &out, &["--multipath-grouping", "two_links"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("helpers, one_link"), "{err}");
    // Offload refused for the overridden system, named by its flag.
    let (code, err) = replay(&w, &s, &out, &["--system", "resident", "--offload", "on"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("field `--offload`"), "{err}");
}
