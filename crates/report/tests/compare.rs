//! `plot compare` logic on small CSVs whose answers were computed by hand.

use std::path::{Path, PathBuf};
use switchyard_core::records::HEADER;
use switchyard_core::Error;
use switchyard_report::{compare, write_comparison, CompareOptions, Run};

/// Writes `dir/name/requests.csv` with rows `(id, model, arrival_s, latency_s)`.
fn csv(dir: &Path, name: &str, rows: &[(u64, &str, f64, f64)]) -> PathBuf {
    let mut text = format!("{HEADER}\n");
    for (id, model, arr, lat) in rows {
        text += &format!("{id},{model},{arr},{arr},{},{lat},1,0\n", arr + lat);
    }
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("requests.csv"), text).unwrap();
    folder
}

// sim latencies 10, 20, 30, 40 ms; real 12, 18, 36, 40 ms (same ids and arrivals).
const SIM: [(u64, &str, f64, f64); 4] = [
    (0, "a", 0.0, 0.010),
    (1, "b", 0.1, 0.020),
    (2, "a", 0.2, 0.030),
    (3, "b", 0.3, 0.040),
];
const REAL: [(u64, &str, f64, f64); 4] = [
    (3, "b", 0.3, 0.040),
    (0, "a", 0.0, 0.012),
    (1, "b", 0.1, 0.018),
    (2, "a", 0.2, 0.036),
];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn known_errors_against_the_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Run::load(&csv(dir.path(), "sim", &SIM)).unwrap();
    let real = Run::load(&csv(dir.path(), "real", &REAL)).unwrap();
    let opts = CompareOptions {
        slo_s: Some(0.025),
        ..CompareOptions::default()
    };
    let cmp = compare(&[sim, real], &opts).unwrap();
    let (s, r) = (&cmp.rows[0], &cmp.rows[1]);
    assert_eq!((s.label.as_str(), r.label.as_str()), ("sim", "real"));
    // Reference row: no errors.
    assert_eq!((s.ks, s.rel_err_p50, s.mean_abs_err_s), (None, None, None));
    // Type-7 percentiles: sim p50 = 25, p90 = 30 + 0.7*10 = 37, p99 = 30 + 0.97*10 = 39.7;
    // real (12, 18, 36, 40): p50 = 27, p90 = 36 + 0.7*4 = 38.8, p99 = 36 + 0.97*4 = 39.88.
    assert!(close(s.summary.p90_s, 0.037) && close(r.summary.p99_s, 0.03988));
    assert!(close(r.rel_err_mean.unwrap(), (26.5 - 25.0) / 25.0));
    assert!(close(r.rel_err_p50.unwrap(), (27.0 - 25.0) / 25.0));
    assert!(close(r.rel_err_p90.unwrap(), (38.8 - 37.0) / 37.0));
    assert!(close(r.rel_err_p99.unwrap(), (39.88 - 39.7) / 39.7));
    // At 10 ms the sim CDF is 0.25 and the real one 0: KS = 0.25.
    assert_eq!(r.ks, Some(0.25));
    // |12-10| + |18-20| + |36-30| + |40-40| = 10 ms over 4 requests.
    assert!(close(r.mean_abs_err_s.unwrap(), 0.0025));
    // SLO 25 ms: 10, 20 and 12, 18 meet it.
    assert_eq!(
        (s.summary.slo_attainment, r.summary.slo_attainment),
        (0.5, 0.5)
    );
    assert!(cmp.notes.is_empty());

    let md = cmp.to_markdown();
    assert!(
        md.contains(
            "| real | 4 | 26.500 | 27.000 | 38.800 | 39.880 | 40.000 | 50.00% | +6.00% | +8.00% |"
        ),
        "{md}"
    );
    let csv_text = cmp.to_csv();
    let line = csv_text.lines().nth(2).unwrap();
    assert!(line.starts_with("real,"), "{line}");
    assert!(line.ends_with(",0.250000000,2.500000"), "{line}");
}

#[test]
fn slo_attainment_from_summary_json_or_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let a = csv(dir.path(), "a", &SIM);
    std::fs::write(a.join("summary.json"), r#"{"slo_attainment": 0.9}"#).unwrap();
    let b = csv(dir.path(), "b", &REAL);
    let runs = [Run::load(&a).unwrap(), Run::load(&b).unwrap()];
    let cmp = compare(&runs, &CompareOptions::default()).unwrap();
    assert_eq!(cmp.rows[0].summary.slo_attainment, 0.9);
    assert!(cmp.rows[1].summary.slo_attainment.is_nan());
    assert!(cmp.to_markdown().contains("| 90.00% |"));
    let bad = CompareOptions {
        slo_s: Some(-1.0),
        ..CompareOptions::default()
    };
    assert_eq!(compare(&runs, &bad).unwrap_err().exit_code(), 2);
}

#[test]
fn differing_schedules_error_or_note() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Run::load(&csv(dir.path(), "sim", &SIM)).unwrap();
    let mut moved = REAL;
    moved[2].2 = 0.15; // request 1 arrives 50 ms later
    let real = Run::load(&csv(dir.path(), "real", &moved)).unwrap();
    let runs = [sim, real];

    let lenient = compare(&runs, &CompareOptions::default()).unwrap();
    assert_eq!(lenient.rows[1].mean_abs_err_s, None);
    assert_eq!(lenient.rows[1].ks, Some(0.25));
    assert_eq!(lenient.notes.len(), 1);
    assert!(lenient.to_markdown().contains("n/a |\n"));

    let strict = CompareOptions {
        require_join: true,
        ..CompareOptions::default()
    };
    let out = dir.path().join("out");
    let err = write_comparison(&runs, &out, "t", false, &strict).unwrap_err();
    let Error::Input(e) = &err else {
        panic!("{err}")
    };
    let text = e.to_string();
    assert!(
        text.contains("sim/requests.csv") && text.contains("real/requests.csv"),
        "{text}"
    );
    assert!(
        text.contains("request id 1 arrives at 0.100000000 s"),
        "{text}"
    );
    assert_eq!(e.line, Some(4));
    assert_eq!(err.exit_code(), 2);
    assert!(!out.exists(), "nothing is written on a schedule mismatch");

    // A generous tolerance accepts the shifted arrival.
    let tolerant = CompareOptions {
        arrival_tol_s: 0.1,
        ..strict
    };
    assert!(compare(&runs, &tolerant).unwrap().rows[1]
        .mean_abs_err_s
        .is_some());
}

#[test]
fn writes_all_figures_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let runs = [
        Run::load(&csv(dir.path(), "sim", &SIM)).unwrap(),
        Run::load(&csv(dir.path(), "real", &REAL)).unwrap(),
    ];
    let out = dir.path().join("out");
    for log_x in [false, true] {
        write_comparison(&runs, &out, "Latency", log_x, &CompareOptions::default()).unwrap();
        for f in [
            "cdf.svg",
            "cdf.png",
            "per_model.svg",
            "per_model.png",
            "table.md",
            "table.csv",
        ] {
            assert!(std::fs::metadata(out.join(f)).unwrap().len() > 0, "{f}");
        }
        let svg = std::fs::read_to_string(out.join("cdf.svg")).unwrap();
        assert!(svg.contains("sim (n=4)") && svg.contains("real (n=4)"));
        assert!(svg.contains("latency (ms)"));
        let panels = std::fs::read_to_string(out.join("per_model.svg")).unwrap();
        assert!(
            panels.contains("sim (n=2)") && panels.contains(">\nb\n<"),
            "model panels"
        );
        let png = std::fs::read(out.join("cdf.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
    // Only the six outputs: no temporary files left behind.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 6);
}

#[test]
fn figures_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let lat: Vec<f64> = (1..200).map(|i| 0.001 * i as f64).collect();
    let runs = [("only", lat)];
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        switchyard_report::cdf_figure(&runs, "t", true, &d.join("c.svg"), &d.join("c.png"))
            .unwrap();
    }
    for f in ["c.svg", "c.png"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap()
        );
    }
}
