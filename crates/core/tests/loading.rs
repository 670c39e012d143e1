//! `policy.loading` (multi-path loading): parsed with its defaults, and
//! every bad value names the field and the line.

use std::path::Path;
use switchyard_core::workload::{Loading, LoadingSpec};
mod common;

use common::{check, error_of};
use switchyard_core::Workload;

const MULTIPATH: &str = include_str!("../../../experiments/multipath_bursty.yaml");

fn with_policy(gpus: u32, policy: &str) -> String {
    format!(
        "name: t\nseed: 1\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: {gpus}\n\
         models:\n  - {{ arch: opt-1.3b }}\narrivals: {{ process: poisson, rate: 1 }}\n\
         policy:\n  system: pipeswitch\n{policy}"
    )
}

#[test]
fn the_bundled_workload_asks_for_one_helper_and_512_mib_of_staging() {
    let w = Workload::parse(Path::new("m.yaml"), MULTIPATH).unwrap();
    assert_eq!(
        w.loading,
        LoadingSpec {
            mode: Loading::Multipath,
            helpers: 1,
            staging_bytes: 512 << 20,
            direct_host: false,
            grouping: Default::default(),
        }
    );
    assert!(w.loading.multipath());
}

#[test]
fn direct_is_the_default_and_multipath_defaults_to_one_helper() {
    let w = Workload::parse(Path::new("t.yaml"), &with_policy(4, "")).unwrap();
    assert_eq!(w.loading, LoadingSpec::default());
    assert!(!w.loading.multipath());
    let w = Workload::parse(
        Path::new("t.yaml"),
        &with_policy(4, "  loading: multipath\n"),
    )
    .unwrap();
    assert_eq!((w.loading.helpers, w.loading.staging_bytes), (1, 1 << 30));
    let w = Workload::parse(
        Path::new("t.yaml"),
        &with_policy(4, "  loading: multipath\n  multipath_helpers: 3\n"),
    )
    .unwrap();
    assert_eq!(w.loading.helpers, 3);
}

#[test]
fn bad_loading_values_name_field_and_line() {
    check(
        &with_policy(1, "  loading: multipath\n"),
        "policy.loading",
        "loading:",
        "`cluster.gpus` is 1",
    );
    check(
        &with_policy(2, "  loading: multipath\n  multipath_helpers: 2\n"),
        "policy.multipath_helpers",
        "multipath_helpers",
        "at most 1",
    );
    check(
        &with_policy(2, "  loading: multipath\n  multipath_helpers: 0\n"),
        "policy.multipath_helpers",
        "multipath_helpers",
        ">= 1",
    );
    check(
        &with_policy(2, "  multipath_helpers: 1\n"),
        "policy.multipath_helpers",
        "multipath_helpers",
        "only meaningful with `loading: multipath`",
    );
    check(
        &with_policy(2, "  loading: multipath\n  multipath_staging_mib: -1\n"),
        "policy.multipath_staging_mib",
        "staging",
        "> 0",
    );
    check(
        &with_policy(2, "  loading: multipath\n  multipath_staging_mib: 1e9\n"),
        "policy.multipath_staging_mib",
        "staging",
        "less than a GPU's usable",
    );
    let e = error_of(&with_policy(2, "  loading: sideways\n"));
    assert!(e.to_string().contains("sideways"), "{e}");
}

#[test]
fn a_command_line_override_keeps_or_clears_the_spec() {
    let w = Workload::parse(Path::new("m.yaml"), MULTIPATH).unwrap();
    let off = w.loading.with_mode(Loading::Direct, &w.cluster).unwrap();
    assert_eq!(off, LoadingSpec::default());
    let on = off.with_mode(Loading::Multipath, &w.cluster).unwrap();
    assert_eq!((on.mode, on.helpers), (Loading::Multipath, 1));
    let kept = w.loading.with_mode(Loading::Multipath, &w.cluster).unwrap();
    assert_eq!(kept, w.loading);
    let one = Workload::parse(Path::new("t.yaml"), &with_policy(1, "")).unwrap();
    assert!(LoadingSpec::default()
        .with_mode(Loading::Multipath, &one.cluster)
        .is_err());
}
