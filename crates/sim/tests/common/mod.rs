//! What the CLI tests share.

use std::process::{Command, Output};

/// Runs the `sim` binary with `args`.
pub fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .unwrap()
}
