//! Runs the `plot` binary on temporary files: success, and exit code 2 on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use switchyard_core::records::HEADER;

fn plot(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plot"))
        .args(args)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{HEADER}\n{body}")).unwrap();
    p
}

const A: &str = "0,m,0,0,0.01,0.01,1,0\n1,m,1,1,1.02,0.02,1,0\n";
const B: &str = "0,m,0,0,0.01,0.011,1,0\n1,m,1,1,1.02,0.019,1,0\n";
const OTHER: &str = "0,m,0,0,0.01,0.01,1,0\n7,m,1,1,1.02,0.02,1,0\n";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn compare_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (write(dir.path(), "a.csv", A), write(dir.path(), "b.csv", B));
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_plot"))
        .args([
            "compare".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
            "--out".as_ref(),
        ])
        .arg(&out)
        .args([
            "--log-x", "--join", "--labels", "sim,real", "--slo-ms", "15",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = std::fs::read_to_string(out.join("table.csv")).unwrap();
    assert!(table.contains("\nreal,"), "{table}");
    // |11-10| + |19-20| = 2 ms over 2 requests.
    assert!(table.trim_end().ends_with(",1.000000"), "{table}");
    assert!(std::fs::read_to_string(out.join("cdf.svg"))
        .unwrap()
        .contains("real (n=2)"));
    assert!(out.join("per_model.png").is_file());

    let cdf_out = dir.path().join("cdf");
    let o = plot(&["cdf".as_ref(), &a, "--out".as_ref(), &cdf_out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(cdf_out.join("cdf.png").is_file() && cdf_out.join("cdf.svg").is_file());
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", A);
    let other = write(dir.path(), "other.csv", OTHER);
    let broken = write(dir.path(), "broken.csv", "0,m,0,0,x,0.01,1,0\n");
    let out = dir.path().join("out");
    let o = |args: &[&Path]| plot(args);

    // Different schedules under --join: both files and the first differing id are named.
    let r = o(&[
        "compare".as_ref(),
        &a,
        &other,
        "--out".as_ref(),
        &out,
        "--join".as_ref(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let msg = stderr(&r);
    assert!(
        msg.contains("a.csv") && msg.contains("other.csv") && msg.contains("request id 1"),
        "{msg}"
    );
    assert!(!out.exists());

    // Unparsable CSV: file, line and column.
    let r = o(&["compare".as_ref(), &a, &broken, "--out".as_ref(), &out]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("broken.csv:2: field `finish_s`"),
        "{}",
        stderr(&r)
    );

    // Missing file, wrong number of labels, bad SLO, a single run.
    let missing = dir.path().join("missing");
    for args in [
        vec![
            "compare".as_ref(),
            a.as_path(),
            &missing,
            "--out".as_ref(),
            &out,
        ],
        vec![
            "compare".as_ref(),
            &a,
            &a,
            "--out".as_ref(),
            &out,
            "--labels".as_ref(),
            "x".as_ref(),
        ],
        vec![
            "compare".as_ref(),
            &a,
            &a,
            "--out".as_ref(),
            &out,
            "--slo-ms".as_ref(),
            "0".as_ref(),
        ],
        vec!["compare".as_ref(), &a, "--out".as_ref(), &out],
    ] {
        let r = o(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
    }
    assert!(!out.exists());
}
