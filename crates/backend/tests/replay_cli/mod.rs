//! Running the `replay` binary from the CPU tests.

use std::path::Path;
use std::process::Command;

/// Runs `replay` on the CPU device over workload `w` and schedule `s` into
/// `out`, with `flags`: its exit code and stderr.
pub fn replay_cpu(w: &Path, s: &Path, out: &Path, flags: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(["--device", "cpu", "-w"])
        .arg(w)
        .arg("--schedule")
        .arg(s)
        .arg("-o")
        .arg(out)
        .args(flags)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
