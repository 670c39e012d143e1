//! `sim`: predicts per-request latency of a serving system on a workload.
//! A thin binary: argument parsing and output live in `cli.rs`.

mod cli;
mod sweep_cli;

fn main() {
    std::process::exit(cli::run());
}
