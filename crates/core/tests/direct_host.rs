//! `policy.direct_host` and `links.direct_host_gbps`: parsed with their
//! defaults; every bad value names the field and the line; the command
//! line's override refuses the systems that cannot honour it.

use std::path::Path;
use switchyard_core::workload::System;
mod common;

use common::{check, error_of};
use switchyard_core::{HardwareProfile, Workload};

fn with_policy(system: &str, policy: &str) -> String {
    format!(
        "name: t\nseed: 1\nduration_s: 1\ncluster:\n  hardware: h200-pcie5\n  gpus: 1\n\
         models:\n  - {{ arch: bert-base }}\narrivals: {{ process: poisson, rate: 1 }}\n\
         policy:\n  system: {system}\n{policy}"
    )
}

#[test]
fn off_by_default_on_when_asked() {
    let off = Workload::parse(Path::new("t.yaml"), &with_policy("pipeswitch", "")).unwrap();
    assert!(!off.loading.direct_host);
    let on = Workload::parse(
        Path::new("t.yaml"),
        &with_policy("pipeswitch", "  direct_host: true\n"),
    )
    .unwrap();
    assert!(on.loading.direct_host);
    // Streaming and Computron read pinned memory too.
    for s in ["streaming", "computron"] {
        let w = Workload::parse(
            Path::new("t.yaml"),
            &with_policy(s, "  direct_host: true\n"),
        );
        assert!(w.unwrap().loading.direct_host, "{s}");
    }
}

#[test]
fn bad_direct_host_values_name_field_and_line() {
    check(
        &with_policy("stop-and-start", "  direct_host: true\n"),
        "policy.direct_host",
        "direct_host",
        "pageable",
    );
    check(
        &with_policy("resident", "  direct_host: true\n"),
        "policy.direct_host",
        "direct_host",
        "`resident` loads every model",
    );
    let e = error_of(&with_policy("pipeswitch", "  direct_host: maybe\n"));
    assert!(e.to_string().contains("direct_host"), "{e}");
    // Off is fine for every system.
    Workload::parse(
        Path::new("t.yaml"),
        &with_policy("stop-and-start", "  direct_host: false\n"),
    )
    .unwrap();
}

#[test]
fn the_command_line_override_refuses_what_cannot_run_from_host() {
    let w = Workload::parse(Path::new("t.yaml"), &with_policy("pipeswitch", "")).unwrap();
    let on = w
        .loading
        .with_direct_host(true, System::Pipeswitch)
        .unwrap();
    assert!(on.direct_host);
    let err = w
        .loading
        .with_direct_host(true, System::StopAndStart)
        .unwrap_err();
    assert!(err.contains("pageable"), "{err}");
    assert!(
        !on.with_direct_host(false, System::StopAndStart)
            .unwrap()
            .direct_host
    );
}

const PROFILE: &str =
    "name: p\ngpu_memory_gib: 16\nlinks:\n  pinned: { alpha_us: 5, beta_gbps: 20 }\n  \
    pageable: { alpha_us: 5, beta_gbps: 8 }\n  peer: { alpha_us: 5, beta_gbps: 100 }\n{extra}\
    compute: { fp16_tflops: 100, hbm_gbps: 1000, launch_us: 5 }\n";

#[test]
fn the_direct_rate_defaults_to_the_pinned_link_and_round_trips() {
    let plain = PROFILE.replace("{extra}", "");
    let p = switchyard_core::hardware::parse(Path::new("p.yaml"), &plain).unwrap();
    assert_eq!(p.direct_host, None);
    assert_eq!(p.direct_host_bytes_per_s(), 20e9);
    let given = PROFILE.replace("{extra}", "  direct_host_gbps: 12.5\n");
    let p = switchyard_core::hardware::parse(Path::new("p.yaml"), &given).unwrap();
    assert_eq!(p.direct_host_bytes_per_s(), 12.5e9);
    let again = switchyard_core::hardware::parse(Path::new("p.yaml"), &p.to_yaml()).unwrap();
    assert_eq!(again.direct_host, Some(12.5e9));
    // The bundled profiles say nothing: their YAML is unchanged.
    let h200 = HardwareProfile::resolve("h200-pcie5", None).unwrap();
    assert!(!h200.to_yaml().contains("direct_host"));
}

#[test]
fn a_bad_direct_rate_names_field_and_line() {
    let bad = PROFILE.replace("{extra}", "  direct_host_gbps: 0\n");
    let e = switchyard_core::hardware::parse(Path::new("p.yaml"), &bad).unwrap_err();
    assert_eq!(e.field, "links.direct_host_gbps", "{e}");
    let line = bad
        .lines()
        .position(|l| l.contains("direct_host_gbps"))
        .unwrap() as u64
        + 1;
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains("> 0"), "{e}");
}
