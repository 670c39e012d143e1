//! Every malformed workload names the field and the line, and says what was expected.

use std::path::Path;
mod common;

use common::{check, error_of, line_of};
use switchyard_core::{Error, Workload};

const BURSTY: &str = include_str!("../../../experiments/bursty.yaml");

#[test]
fn bursty_is_valid() {
    let w = Workload::parse(Path::new("experiments/bursty.yaml"), BURSTY).unwrap();
    assert_eq!(w.models.len(), 9);
    assert_eq!(w.models[7].name, "opt-13b-7");
    assert_eq!(w.models[8].name, "tiny");
    assert_eq!(
        (w.models[0].tp, w.models[0].pp, w.models[0].max_batch),
        (1, 4, 8)
    );
    assert_eq!(w.models[0].slo_s, Some(2.0));
    assert_eq!(w.models[8].shape.total_bytes(), 12 * 40_000_000);
}

#[test]
fn unknown_arch() {
    let t = BURSTY.replace("arch: opt-13b ", "arch: opt-14b ");
    check(
        &t,
        "models[0].arch",
        "arch: opt-14b",
        "unknown architecture `opt-14b`",
    );
}

#[test]
fn rate_not_positive() {
    check(
        &BURSTY.replace("rate: 12", "rate: 0"),
        "arrivals.rate",
        "rate: 0",
        "expected a number > 0",
    );
    check(
        &BURSTY.replace("rate: 12", "rate: -3"),
        "arrivals.rate",
        "rate: -3",
        "got -3",
    );
}

#[test]
fn cv_not_positive() {
    check(
        &BURSTY.replace("cv: 4", "cv: 0"),
        "arrivals.cv",
        "cv: 0",
        "expected a number > 0",
    );
}

#[test]
fn gamma_without_cv() {
    let t = BURSTY.replace(
        "  cv: 4                     # coefficient of variation of inter-arrival times (gamma)\n",
        "",
    );
    let e = error_of(&t);
    assert_eq!(e.field, "arrivals.cv");
    assert_eq!(e.line, Some(line_of(&t, "process: gamma")));
}

#[test]
fn weights_do_not_match_models() {
    let t = BURSTY.replace("skew: { zipf: 1.0 }", "skew: { weights: [1, 2, 3] }");
    check(
        &t,
        "arrivals.skew.weights",
        "weights: [1, 2, 3]",
        "3 weights given, but there are 9 models",
    );
}

#[test]
fn model_that_cannot_fit() {
    // OPT-30B is 60 GB: one A100 of 40 GB cannot hold it.
    let t = BURSTY
        .replace("arch: opt-13b ", "arch: opt-30b ")
        .replace("parallel: { tp: 1, pp: 4 }", "parallel: { tp: 1, pp: 1 }");
    let e = error_of(&t);
    assert_eq!(e.field, "models[0].parallel");
    assert_eq!(e.line, Some(line_of(&t, "arch: opt-30b")));
    assert!(e.message.contains("cannot fit"), "{e}");
}

#[test]
fn parallel_wider_than_cluster() {
    let t = BURSTY.replace("parallel: { tp: 1, pp: 4 }", "parallel: { tp: 2, pp: 4 }");
    check(
        &t,
        "models[0].parallel",
        "tp: 2, pp: 4",
        "tp * pp = 8 GPUs, but cluster.gpus is 4",
    );
}

#[test]
fn synthetic_model_with_bad_layer_ms() {
    check(
        &BURSTY.replace("layer_ms: 0.5", "layer_ms: -0.5"),
        "models[1].layer_ms",
        "layer_ms: -0.5",
        "milliseconds",
    );
}

#[test]
fn unknown_field_is_named_with_its_line() {
    let t = BURSTY.replace("  cv: 4 ", "  cvv: 4 ");
    let e = error_of(&t);
    assert_eq!(e.field, "arrivals.cvv");
    assert_eq!(e.line, Some(line_of(&t, "cvv: 4")));
}

#[test]
fn unknown_system_is_named_with_its_line() {
    let t = BURSTY.replace("system: computron", "system: alpaserve");
    let e = error_of(&t);
    assert_eq!(e.line, Some(line_of(&t, "system: alpaserve")));
    assert!(e.message.contains("alpaserve"), "{e}");
}

#[test]
fn unknown_hardware_preset() {
    check(
        &BURSTY.replace("hardware: a100-pcie4", "hardware: b200"),
        "cluster.hardware",
        "hardware: b200",
        "a100-pcie4",
    );
}

#[test]
fn wrong_type_names_the_line() {
    let t = BURSTY.replace("gpus: 4", "gpus: four");
    let e = error_of(&t);
    assert_eq!(e.line, Some(line_of(&t, "gpus: four")));
}

#[test]
fn memory_cap_forces_a_model_out() {
    // 40 GiB A100 capped to 6 GiB: an OPT-13B stage (pp=4) is ~6.4 GB and no longer fits.
    let t = BURSTY.replace("  gpus: 4\n", "  gpus: 4\n  gpu_memory_gib: 6\n");
    let e = error_of(&t);
    assert_eq!(e.field, "models[0].parallel");
    let t = BURSTY.replace("  gpus: 4\n", "  gpus: 4\n  gpu_memory_gib: 400\n");
    check(
        &t,
        "cluster.gpu_memory_gib",
        "gpu_memory_gib: 400",
        "at most",
    );
}

#[test]
fn model_name_that_is_not_one_csv_field_is_refused() {
    for bad in ["\"a,b\"", "\"say \\\"hi\\\"\"", "\" padded\""] {
        let t = BURSTY.replacen("name: tiny", &format!("name: {bad}"), 1);
        assert_ne!(t, BURSTY);
        check(
            &t,
            "models[1].name",
            &format!("name: {bad}"),
            "one CSV field",
        );
    }
}

#[test]
fn workload_without_a_request_is_refused_before_anything_runs() {
    let t = BURSTY
        .replace("rate: 12 ", "rate: 0.000000001 ")
        .replace("duration_s: 600", "duration_s: 10");
    let w = switchyard_core::Workload::parse(std::path::Path::new("quiet.yaml"), &t).unwrap();
    let e = switchyard_core::arrivals::generate(&w)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("quiet.yaml") && e.contains("`arrivals`") && e.contains("no request"),
        "{e}"
    );
    // An empty schedule file is refused the same way.
    let dir = std::env::temp_dir().join(format!("sy-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("schedule.csv");
    std::fs::write(&csv, "id,arrival_s,model\n").unwrap();
    let e = switchyard_core::Schedule::read_csv(&csv, &w.model_names())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("schedule.csv:1") && e.contains("no requests"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn request_counts_and_periods_are_bounded_before_generating() {
    use switchyard_core::arrivals::{generate, generate_capped};
    let parse = |t: &str| switchyard_core::Workload::parse(std::path::Path::new("big.yaml"), t);
    // Expected count over the limit: refused at once.
    for rate in ["1e9", "1e6"] {
        let t = BURSTY
            .replace("rate: 12 ", &format!("rate: {rate} "))
            .replace("duration_s: 600", "duration_s: 1e9");
        let e = generate(&parse(&t).unwrap()).unwrap_err().to_string();
        assert!(
            e.contains("big.yaml") && e.contains("--max-requests"),
            "{e}"
        );
    }
    // Below the expected count, raised by the caller: generated.
    let w = parse(&BURSTY.replace("duration_s: 600", "duration_s: 10")).unwrap();
    assert!(generate_capped(&w, 10).is_err());
    assert!(generate_capped(&w, 1_000).is_ok());
    // A gamma law too bursty to sample, and on/off periods too short to draw.
    check(
        &BURSTY.replace("cv: 4 ", "cv: 1e6 "),
        "arrivals.cv",
        "cv: 1e6",
        "at most 100",
    );
    let on_off = BURSTY.replace(
        "process: gamma ",
        "process: on_off\n  rate_on: 1\n  mean_on_s: 1e-300\n  mean_off_s: 1\n  #",
    );
    check(
        &on_off,
        "arrivals.mean_on_s",
        "mean_on_s: 1e-300",
        "at least",
    );
}

#[test]
fn model_and_gpu_counts_are_bounded() {
    check(
        &BURSTY.replace("copies: 8 ", "copies: 1000000000 "),
        "models[0].copies",
        "copies: 1000000000",
        "more than 1000000 models",
    );
    check(
        &BURSTY.replace("gpus: 4\n", "gpus: 1000000\n"),
        "cluster.gpus",
        "gpus: 1000000",
        "at most 4096",
    );
}

#[test]
fn raised_limits_admit_what_the_defaults_refuse() {
    use switchyard_core::workload::Limits;
    let path = Path::new("bad.yaml");
    // bursty: 9 models on 4 GPUs.
    let tight = Limits {
        max_models: 8,
        max_gpus: 3,
    };
    let e = Workload::parse_with(path, BURSTY, None, &tight).unwrap_err();
    let Error::Input(e) = e else {
        panic!("expected an input error, got {e}")
    };
    assert_eq!(e.field, "cluster.gpus", "{e}");
    assert!(e.message.contains("--max-gpus"), "{e}");
    let e = Workload::parse_with(
        path,
        BURSTY,
        None,
        &Limits {
            max_gpus: 4,
            ..tight
        },
    )
    .unwrap_err();
    let Error::Input(e) = e else {
        panic!("expected an input error, got {e}")
    };
    // Eight copies fit; the ninth model (one without `copies`) does not.
    assert_eq!(e.field, "models[1]", "{e}");
    assert!(e.message.contains("more than 8 models"), "{e}");
    let seven = Limits {
        max_models: 7,
        max_gpus: 4,
    };
    let Err(Error::Input(e)) = Workload::parse_with(path, BURSTY, None, &seven) else {
        panic!("expected an input error")
    };
    assert_eq!(e.field, "models[0].copies", "{e}");
    // Over the defaults' GPU cap, within raised ones.
    let raised = Limits {
        max_models: 9,
        max_gpus: 8192,
    };
    let big = BURSTY.replace("gpus: 4\n", "gpus: 5000\n");
    assert!(Workload::parse(path, &big).is_err());
    let w = Workload::parse_with(path, &big, None, &raised).unwrap();
    assert_eq!(w.cluster.gpus, 5000);
    assert_eq!(w.models.len(), 9);
}

#[test]
fn trace_arrivals_past_the_duration_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "arrival_s,model\n0.5,a\n1.5,a\n2.5,a\n",
    )
    .unwrap();
    let text = "name: t\nseed: 1\nduration_s: 1\ncluster: { hardware: h200-pcie5, gpus: 1 }\n\
                models:\n  - { name: a, layers: 2, layer_mb: 1, layer_ms: 0.1 }\n\
                arrivals: { process: trace, path: t.csv, format: csv }\npolicy: { system: pipeswitch }\n";
    let path = dir.path().join("w.yaml");
    std::fs::write(&path, text).unwrap();
    let w = switchyard_core::Workload::load(&path).unwrap();
    let (s, notes) = switchyard_core::arrivals::generate_with_notes(&w, 1000).unwrap();
    assert_eq!(s.requests.len(), 1);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("2 of the trace's 3 arrivals"),
        "{notes:?}"
    );
}

#[test]
fn unknown_dtype() {
    let t = BURSTY.replace("    max_batch: 8\n", "    max_batch: 8\n    dtype: int8\n");
    check(
        &t,
        "models[0].dtype",
        "dtype: int8",
        "expected one of fp16, fp32, bf16",
    );
}

#[test]
fn fp32_weights_double_the_bytes_and_the_fit() {
    let w = Workload::parse(Path::new("b.yaml"), BURSTY).unwrap();
    let t = BURSTY.replace("    max_batch: 8\n", "    max_batch: 8\n    dtype: fp32\n");
    let f = Workload::parse(Path::new("b.yaml"), &t).unwrap();
    assert_eq!(f.dtype(0), switchyard_core::model::Dtype::Fp32);
    assert_eq!(w.dtype(0), switchyard_core::model::Dtype::Fp16);
    assert_eq!(
        f.models[0].shape.total_bytes(),
        2 * w.models[0].shape.total_bytes()
    );
    // OPT-13B in fp32 (51 GB) on one 40 GB A100: its shard no longer fits.
    let one = t.replace("parallel: { tp: 1, pp: 4 }", "parallel: { tp: 1, pp: 1 }");
    let e = error_of(&one);
    assert_eq!(e.field, "models[0].parallel", "{e}");
    assert!(e.message.contains("(fp32 weights)"), "{e}");
}

#[test]
fn max_loaded_is_at_least_one() {
    let t = BURSTY.replace("policy:\n", "policy:\n  max_loaded: 0\n");
    check(
        &t,
        "policy.max_loaded",
        "max_loaded: 0",
        "expected an integer >= 1",
    );
    let t = BURSTY.replace("policy:\n", "policy:\n  max_loaded: 2\n");
    let w = Workload::parse(Path::new("b.yaml"), &t).unwrap();
    assert_eq!(w.policy.max_loaded, Some(2));
}

#[test]
fn offload_is_a_bool_for_a_system_that_evicts() {
    let t = BURSTY.replace("policy:\n", "policy:\n  offload: sometimes\n");
    let e = error_of(&t);
    assert_eq!(e.field, "policy.offload", "{e}");
    assert_eq!(e.line, Some(line_of(&t, "offload: sometimes")), "{e}");
    for system in ["resident", "streaming"] {
        let t = BURSTY
            .replace("policy:\n", "policy:\n  offload: true\n")
            .replace("system: computron ", &format!("system: {system} "));
        check(&t, "policy.offload", "offload: true", "offloaded");
    }
    let t = BURSTY.replace("policy:\n", "policy:\n  offload: true\n");
    let w = Workload::parse(Path::new("b.yaml"), &t).unwrap();
    assert!(w.policy.offload);
    assert!(
        !Workload::parse(Path::new("b.yaml"), BURSTY)
            .unwrap()
            .policy
            .offload
    );
}

#[test]
fn background_jobs_are_checked() {
    let with = |b: &str| format!("{BURSTY}background:\n{b}");
    let t = with("  - { gpu: 4, iteration_ms: 100 }\n");
    check(
        &t,
        "background[0].gpu",
        "gpu: 4",
        "below cluster.gpus (4), got 4",
    );
    let t = with("  - { gpu: 1, iteration_ms: 100 }\n  - { gpu: 1, iteration_ms: 50 }\n");
    check(
        &t,
        "background[1].gpu",
        "iteration_ms: 50",
        "already runs a background job",
    );
    let t = with("  - { gpu: 0, iteration_ms: 0 }\n");
    check(
        &t,
        "background[0].iteration_ms",
        "iteration_ms: 0",
        "expected a number > 0",
    );
    let t = with("  - { gpu: 0, iteration_ms: 10, memory_gib: 39 }\n");
    check(
        &t,
        "background[0].memory_gib",
        "memory_gib: 39",
        "expected less than",
    );
    let w = Workload::parse(
        Path::new("b.yaml"),
        &with("  - { gpu: 2, iteration_ms: 100, memory_gib: 1 }\n"),
    )
    .unwrap();
    assert_eq!(w.background_on(2).unwrap().name, "background-2");
    assert_eq!(w.background_on(2).unwrap().memory_bytes, 1 << 30);
    assert!(w.background_on(0).is_none());
}

#[test]
fn preload_names_served_models_once() {
    let t = BURSTY.replace("policy:\n", "policy:\n  preload: [opt-13b-9]\n");
    check(
        &t,
        "policy.preload",
        "preload:",
        "no model is called `opt-13b-9`",
    );
    let t = BURSTY.replace("policy:\n", "policy:\n  preload: [tiny, tiny]\n");
    check(&t, "policy.preload", "preload:", "`tiny` is listed twice");
    let t = BURSTY.replace("policy:\n", "policy:\n  preload: [opt-13b-7, tiny]\n");
    let w = Workload::parse(Path::new("b.yaml"), &t).unwrap();
    assert_eq!(w.preload, vec![7, 8]);
}

#[test]
fn trace_names_count_against_the_model_cap() {
    use switchyard_core::workload::Limits;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "arrival_s,model\n0.1,a\n0.2,b\n0.3,c\n",
    )
    .unwrap();
    let text = "name: t\nseed: 1\nduration_s: 1\ncluster: { hardware: h200-pcie5, gpus: 1 }\n\
                trace_models:\n  classes: [{ layers: 2, layer_mb: 1, layer_ms: 0.1 }]\n\
                arrivals: { process: trace, path: t.csv }\npolicy: { system: pipeswitch }\n";
    let path = dir.path().join("w.yaml");
    std::fs::write(&path, text).unwrap();
    let two = Limits {
        max_models: 2,
        ..Limits::default()
    };
    let Err(Error::Input(e)) = Workload::load_with(&path, None, &two) else {
        panic!("expected an input error")
    };
    assert_eq!(e.field, "trace_models", "{e}");
    // The line where `trace_models`' mapping starts.
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("more than 2 models"), "{e}");
    let three = Limits {
        max_models: 3,
        ..Limits::default()
    };
    assert_eq!(
        Workload::load_with(&path, None, &three)
            .unwrap()
            .models
            .len(),
        3
    );
}
