use super::*;

#[test]
fn every_preset_parses() {
    for name in PRESETS {
        let p = HardwareProfile::resolve(name, None).unwrap();
        assert_eq!(&p.name, name);
        assert!(p.usable_bytes() > 0);
    }
}

#[test]
fn h200_matches_architecture_figures() {
    let p = HardwareProfile::resolve("h200-pcie5", None).unwrap();
    assert!((p.pinned.beta_bytes_per_s - 55.5e9).abs() < 1e6);
    assert!((p.pinned.alpha_s - 2.6e-6).abs() < 1e-9);
}

#[test]
fn round_trips_through_yaml() {
    let mut p = HardwareProfile::resolve("a100-pcie4", None).unwrap();
    let q = parse(Path::new("x.yaml"), &p.to_yaml()).unwrap();
    assert_eq!(p.pinned, q.pinned);
    assert_eq!(p.compute, q.compute);
    assert!(!p.to_yaml().contains("jitter"));
    p.compute.request_overhead_s = 80e-6;
    p.jitter = Jitter {
        copy_cv: 0.01,
        compute_cv: 0.05,
        host_stall_rate_per_s: 3.7,
        host_stall_ms: vec![1.0, 1.5, 5.9],
    };
    let q = parse(Path::new("x.yaml"), &p.to_yaml()).unwrap();
    assert!((q.compute.request_overhead_s - 80e-6).abs() < 1e-12);
    assert_eq!(q.jitter, p.jitter);
}

#[test]
fn tensor_parallel_passes_round_trip_and_are_checked() {
    let mut p = HardwareProfile::resolve("a100-pcie4", None).unwrap();
    p.calibrated.insert(
        "opt-1.3b".into(),
        CalibratedTimes {
            batch_sizes: vec![1, 8],
            layer_s: vec![vec![0.001; 3], vec![0.002; 3]],
            items_per_request: 128,
            queued_pass_s: vec![],
            issue_pass_s: vec![0.0005, 0.0006],
            tensor_parallel: [(
                2,
                ParallelPasses {
                    pass_s: vec![0.004, 0.005],
                    queued_pass_s: vec![0.002, 0.0045],
                    issue_pass_s: vec![0.001, 0.0011],
                },
            )]
            .into(),
        },
    );
    let text = p.to_yaml();
    assert_eq!(
        parse(Path::new("x.yaml"), &text).unwrap().calibrated,
        p.calibrated
    );
    // One pass time short of the batch sizes.
    let bad: String = text
        .lines()
        .filter(|l| l.trim() != "- 0.0045")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(bad, text);
    let err = parse(Path::new("x.yaml"), &bad).unwrap_err().to_string();
    assert!(
        err.contains("calibrated.opt-1.3b.tensor_parallel.2.queued_pass_s"),
        "{err}"
    );
}

#[test]
fn idle_penalty_interpolates_and_round_trips() {
    let mut p = HardwareProfile::resolve("a100-pcie4", None).unwrap();
    assert_eq!(p.compute.idle_extra_s(1.0), 0.0);
    p.compute.idle_penalty = vec![(1e-3, 100e-6), (3e-3, 300e-6)];
    let c = &p.compute;
    assert!((c.idle_extra_s(0.5e-3) - 50e-6).abs() < 1e-12);
    assert!((c.idle_extra_s(2e-3) - 200e-6).abs() < 1e-12);
    assert!((c.idle_extra_s(1.0) - 300e-6).abs() < 1e-12);
    assert_eq!(c.idle_extra_s(0.0), 0.0);
    let q = parse(Path::new("x.yaml"), &p.to_yaml()).unwrap();
    assert_eq!(q.compute.idle_penalty.len(), 2);
    assert!((q.compute.idle_extra_s(2e-3) - 200e-6).abs() < 1e-12);
}

#[test]
fn idle_penalty_gaps_must_ascend() {
    let text = include_str!("../../../../profiles/t4-pcie3x8.yaml").replace(
        "compute:\n",
        "compute:\n  idle_penalty_us: [[100, 5], [50, 9]]\n",
    );
    let e = parse(Path::new("p.yaml"), &text).unwrap_err();
    assert_eq!(e.field, "compute.idle_penalty_us[1]");
    assert!(e.line.is_some());
}

#[test]
fn jitter_must_be_a_small_cv() {
    let text = format!(
        "{}jitter: {{ copy_cv: 1.5 }}\n",
        include_str!("../../../../profiles/t4-pcie3x8.yaml")
    );
    let e = parse(Path::new("p.yaml"), &text).unwrap_err();
    assert_eq!(e.field, "jitter.copy_cv");
}

#[test]
fn negative_bandwidth_names_line_and_field() {
    let text = include_str!("../../../../profiles/t4-pcie3x8.yaml")
        .replace("beta_gbps: 6.3", "beta_gbps: -1");
    let e = parse(Path::new("p.yaml"), &text).unwrap_err();
    assert_eq!(e.field, "links.pinned.beta_gbps");
    let line = text
        .lines()
        .position(|l| l.contains("beta_gbps: -1"))
        .unwrap() as u64
        + 1;
    assert_eq!(e.line, Some(line));
}

const HOST: &str =
    "name: t\ngpu_memory_gib: 16\nlinks:\n  pinned: { alpha_us: 1, beta_gbps: 10 }\n  \
pageable: { alpha_us: 1, beta_gbps: 5 }\n  peer: { alpha_us: 1, beta_gbps: 100 }\n\
compute: { fp16_tflops: 100, fp32_tflops: 12.5, hbm_gbps: 900, launch_us: 10 }\n\
host:\n  memory_gbps: 30\n  upstream:\n    - { gpus: [0, 1], gbps: 16 }\n";

#[test]
fn host_topology_and_fp32_rate_parse_and_round_trip() {
    let p = parse(Path::new("h.yaml"), HOST).unwrap();
    assert_eq!(p.host.memory_bytes_per_s, Some(30e9));
    assert_eq!(p.host.upstream[0].gpus, vec![0, 1]);
    assert_eq!(p.compute.fp32_flops_per_s, Some(12.5e12));
    let q = parse(Path::new("x.yaml"), &p.to_yaml()).unwrap();
    assert_eq!(q.host, p.host);
    assert_eq!(q.compute, p.compute);
    // Presets share nothing: today's model.
    assert!(HardwareProfile::resolve("a100-pcie4", None)
        .unwrap()
        .host
        .is_empty());
}

#[test]
fn host_shares_split_evenly_among_gpus_copying() {
    let p = parse(Path::new("h.yaml"), HOST).unwrap();
    // Alone: the upstream link (16) is below host memory (30).
    assert_eq!(p.host.share_bytes_per_s(0, &[0]), Some(16e9));
    // GPUs 0 and 1 behind one upstream link: 8 each.
    assert_eq!(p.host.share_bytes_per_s(1, &[0, 1]), Some(8e9));
    // Four GPUs: host memory 30 / 4 = 7.5 for GPU 2 (no upstream link).
    assert_eq!(p.host.share_bytes_per_s(2, &[0, 1, 2, 3]), Some(7.5e9));
    assert_eq!(HostTopology::default().share_bytes_per_s(0, &[0, 1]), None);
}

#[test]
fn fp32_models_see_the_fp32_rate_without_fp16_calibrations() {
    let mut p = parse(Path::new("h.yaml"), HOST).unwrap();
    p.calibrated
        .insert("bert-base".into(), CalibratedTimes::default());
    let f = p.for_dtype(crate::model::Dtype::Fp32);
    assert_eq!(f.compute.flops_per_s, 12.5e12);
    assert!(f.calibrated.is_empty());
    assert_eq!(p.for_dtype(crate::model::Dtype::Bf16), p);
}

#[test]
fn measured_fp32_and_bf16_times_replace_the_fallbacks() {
    use crate::model::Dtype;
    let mut p = parse(Path::new("h.yaml"), HOST).unwrap();
    let times = |s: f64| CalibratedTimes {
        batch_sizes: vec![1],
        layer_s: vec![vec![s]],
        ..Default::default()
    };
    p.calibrated.insert("bert-base".into(), times(1.0));
    p.calibrated.insert("gpt2".into(), times(2.0));
    p.calibrated
        .insert(calibrated_key("bert-base", Dtype::Fp32), times(3.0));
    p.calibrated
        .insert(calibrated_key("gpt2", Dtype::Bf16), times(4.0));
    assert_eq!(calibrated_key("gpt2", Dtype::Bf16), "gpt2@bf16");
    assert_eq!(calibrated_key("gpt2", Dtype::Fp16), "gpt2");
    // fp16: the profile as it is.
    assert_eq!(p.for_dtype(Dtype::Fp16), p);
    // fp32: only the measured fp32 times, under the plain name; gpt2 falls
    // back to the roofline at the fp32 rate.
    let f = p.for_dtype(Dtype::Fp32);
    assert_eq!(f.calibrated.len(), 1);
    assert_eq!(f.calibrated["bert-base"], times(3.0));
    assert_eq!(f.compute.flops_per_s, 12.5e12);
    // bf16: gpt2's measured bf16 times, bert-base's fp16 ones.
    let b = p.for_dtype(Dtype::Bf16);
    assert_eq!(b.calibrated.len(), 2);
    assert_eq!(b.calibrated["gpt2"], times(4.0));
    assert_eq!(b.calibrated["bert-base"], times(1.0));
    assert_eq!(b.compute, p.compute);
    // Such a profile writes and reads back.
    let q = parse(Path::new("q.yaml"), &p.to_yaml()).unwrap();
    assert_eq!(q.calibrated, p.calibrated);
}

#[test]
fn bad_host_sections_name_their_field() {
    for (bad, field, says) in [
        (
            "    - { gpus: [0, 1], gbps: 16 }\n",
            "host.upstream[0].gbps",
            "expected a number > 0",
        ),
        (
            "    - { gpus: [0, 0], gbps: 16 }\n",
            "host.upstream[0].gpus",
            "GPU 0 is behind two",
        ),
        (
            "    - { gpus: [], gbps: 16 }\n",
            "host.upstream[0].gpus",
            "at least one GPU",
        ),
    ] {
        let text = if field.ends_with("gbps") {
            HOST.replace(bad, "    - { gpus: [0, 1], gbps: 0 }\n")
        } else {
            HOST.replace("    - { gpus: [0, 1], gbps: 16 }\n", bad)
        };
        let e = parse(Path::new("h.yaml"), &text).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.line.is_some(), "{e}");
        assert!(e.message.contains(says), "{e}");
    }
}

#[test]
fn host_stalls_need_a_rate_and_ordered_quantiles() {
    let base = HardwareProfile::resolve("a100-pcie4", None)
        .unwrap()
        .to_yaml();
    for (jitter, field) in [
        ("{ host_stall_rate_per_s: 3.0 }", "jitter.host_stall_ms"),
        (
            "{ host_stall_rate_per_s: 3.0, host_stall_ms: [2.0, 1.0] }",
            "jitter.host_stall_ms",
        ),
        (
            "{ host_stall_rate_per_s: 3.0, host_stall_ms: [1.0] }",
            "jitter.host_stall_ms",
        ),
        (
            "{ host_stall_rate_per_s: -1.0, host_stall_ms: [1.0, 2.0] }",
            "jitter.host_stall_rate_per_s",
        ),
    ] {
        let e = parse(Path::new("p.yaml"), &format!("{base}jitter: {jitter}\n")).unwrap_err();
        assert_eq!(e.field, field, "{jitter}: {e}");
        assert!(e.to_string().contains("p.yaml"), "{e}");
    }
    let ok = parse(
        Path::new("p.yaml"),
        &format!("{base}jitter: {{ host_stall_rate_per_s: 3.0, host_stall_ms: [1.0, 2.0] }}\n"),
    )
    .unwrap();
    assert!(ok.jitter.host_stalls());
}
