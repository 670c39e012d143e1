//! `trace_models`: every model name of a trace served from a template, in
//! size classes; errors name file, line and field.

use std::path::{Path, PathBuf};
use switchyard_core::{arrivals, Error, InputError, Workload};

/// A trace of `n` models, model `i` asked `i + 1` times (so `m{n-1}` is the
/// most requested), plus the folder holding it.
fn trace(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("arrival_s,model\n");
    let mut t = 0.0;
    for i in 0..n {
        for _ in 0..=i {
            t += 0.001;
            text += &format!("{t:.6},m{i}\n");
        }
    }
    let p = dir.path().join("t.csv");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

fn workload(dir: &Path, body: &str) -> Result<Workload, Error> {
    let text = format!(
        "name: t\nseed: 1\nduration_s: 1000\ncluster: {{ hardware: a100-pcie4, gpus: 2 }}\n{body}\
         arrivals: {{ process: trace, path: t.csv }}\npolicy: {{ system: pipeswitch }}\n"
    );
    let p = dir.join("w.yaml");
    std::fs::write(&p, &text).unwrap();
    Workload::load(&p)
}

fn input_error(r: Result<Workload, Error>) -> InputError {
    match r {
        Err(Error::Input(e)) => e,
        Err(e) => panic!("expected an input error, got {e}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn every_name_of_the_trace_is_served_from_one_template() {
    let (dir, _) = trace(86);
    let w = workload(
        dir.path(),
        "trace_models:\n  classes:\n    - { arch: opt-1.3b, max_batch: 8, slo_ms: 500 }\n",
    )
    .unwrap();
    assert_eq!(w.models.len(), 86);
    assert_eq!(w.models[0].name, "m0");
    assert!(w
        .models
        .iter()
        .all(|m| m.max_batch == 8 && m.slo_s == Some(0.5)));
    let s = arrivals::generate(&w).unwrap();
    assert_eq!(s.requests.len(), 86 * 87 / 2);
}

#[test]
fn rank_classes_give_the_most_requested_names_the_first_template() {
    let (dir, _) = trace(10);
    let w = workload(
        dir.path(),
        "trace_models:\n  rule: rank\n  classes:\n    - { share: 0.2, arch: opt-6.7b }\n    - { share: 0.8, arch: opt-125m }\n",
    )
    .unwrap();
    let big: Vec<&str> = w
        .models
        .iter()
        .filter(|m| m.shape.arch == "opt-6.7b")
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(big, ["m8", "m9"]);
}

#[test]
fn explicit_models_keep_their_entry_and_the_rest_come_from_the_template() {
    let (dir, _) = trace(5);
    let w = workload(
        dir.path(),
        "models:\n  - { arch: opt-2.7b, name: m3, max_batch: 2 }\ntrace_models:\n  classes:\n    - { arch: bert-base }\n",
    )
    .unwrap();
    assert_eq!(w.models.len(), 5);
    assert_eq!(
        (w.models[0].name.as_str(), w.models[0].max_batch),
        ("m3", 2)
    );
    assert_eq!(
        w.models
            .iter()
            .filter(|m| m.shape.arch == "bert-base")
            .count(),
        4
    );
}

#[test]
fn a_bad_class_field_names_its_key_path_and_line() {
    let (dir, _) = trace(3);
    let e = input_error(workload(
        dir.path(),
        "trace_models:\n  classes:\n    - { share: 1, arch: opt-125m }\n    - { share: 1, arch: opt-125m, max_batch: 4, micro_batch: 8 }\n",
    ));
    assert_eq!(e.field, "trace_models.classes[1].micro_batch", "{e}");
    assert_eq!(e.line, Some(8), "{e}");
    let e = input_error(workload(
        dir.path(),
        "trace_models:\n  classes:\n    - { share: 1, arch: opt-125m }\n    - { arch: opt-125m }\n",
    ));
    assert_eq!(e.field, "trace_models.classes[1].share", "{e}");
    let e = input_error(workload(
        dir.path(),
        "trace_models:\n  classes:\n    - { arch: opt-125m, colour: red }\n",
    ));
    assert!(e.field.contains("colour"), "{e}");
}

#[test]
fn a_name_that_is_not_one_csv_field_names_the_trace_line() {
    let (dir, p) = trace(2);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text += "9.0,\"a,b\"\n";
    std::fs::write(&p, text).unwrap();
    let e = input_error(workload(
        dir.path(),
        "trace_models:\n  classes:\n    - { arch: opt-125m }\n",
    ));
    assert_eq!(
        (e.file.as_path(), e.line, e.field.as_str()),
        (p.as_path(), Some(5), "model"),
        "{e}"
    );
}

#[test]
fn without_models_or_trace_models_the_workload_is_refused() {
    let (dir, _) = trace(2);
    let e = input_error(workload(dir.path(), ""));
    assert_eq!(e.field, "models", "{e}");
}

#[test]
fn burstgpt_columns_give_times_and_model_names() {
    // A hand-written fixture in BurstGPT's published column layout.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.csv"),
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
         5,ChatGPT,10,20,30,Conversation log\n\
         7.5,GPT-4,10,20,30,API log\n\
         9,ChatGPT,10,20,30,API log\n",
    )
    .unwrap();
    let text = "name: b\nseed: 1\nduration_s: 100\ncluster: { hardware: a100-pcie4, gpus: 1 }\n\
                trace_models:\n  classes: [{ arch: opt-125m }]\n\
                arrivals: { process: trace, path: b.csv, format: burstgpt }\npolicy: { system: pipeswitch }\n";
    let p = dir.path().join("w.yaml");
    std::fs::write(&p, text).unwrap();
    let w = Workload::load(&p).unwrap();
    assert_eq!(w.model_names(), ["ChatGPT", "GPT-4"]);
    let s = arrivals::generate(&w).unwrap();
    let got: Vec<(f64, u32)> = s.requests.iter().map(|r| (r.arrival_s, r.model)).collect();
    assert_eq!(got, [(5.0, 0), (7.5, 1), (9.0, 0)]);
}
