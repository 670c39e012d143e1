//! `multipath-bench` on the CPU device (emulated GPUs, so no speed-up is
//! expected): it runs the scheduler's copies both ways and writes its
//! results with the command and machine.

#[test]
fn multipath_bench_writes_rows_with_command_and_machine() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mp");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_multipath-bench"))
        .args([
            "--device",
            "cpu",
            "--models",
            "name: syn, layers: 8, layer_mb: 4, layer_ms: 1;name: big, layers: 4, layer_mb: 8, layer_ms: 1",
            "--gpu-memory-gib",
            "4.2",
            "--staging-mib",
            "16",
            "--reps",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("multipath.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for r in rows {
        let f: Vec<&str> = r.split(',').collect();
        let bytes: u64 = f[1].parse().unwrap();
        let copies: usize = f[8].parse().unwrap();
        let helper: u64 = f[9].parse().unwrap();
        // The multi-path swap-in was split, about half over the helper.
        assert!(copies > 1 && helper > bytes / 4 && helper < bytes, "{r}");
        assert!(f[4].parse::<f64>().unwrap() > 0.0 && f[5].parse::<f64>().unwrap() > 0.0);
    }
    let md = std::fs::read_to_string(out.join("multipath.md")).unwrap();
    assert!(
        md.contains("command: `") && md.contains("machine: cpu"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("multipath.json")).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 2);
}
