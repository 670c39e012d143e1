//! Figures and tables from latency records: empirical CDFs (one chart, or
//! one panel per model), and the comparison table of runs against the first
//! (percentile errors, Kolmogorov-Smirnov distance, per-request error).
//! `sim` and `replay` call these; the `plot` binary wraps them.

pub mod cdf;
pub mod join;
pub mod panels;
pub mod render;
pub mod runs;
pub mod sweep;
pub mod table;

pub use cdf::cdf_figure;
pub use join::{join, mean_abs_error_s};
pub use panels::per_model_figure;
pub use runs::Run;
pub use sweep::{sweep_figure, SweepPanel, SweepSeries};
pub use table::{compare, CompareOptions, Comparison, Row};

use std::path::Path;
use switchyard_core::Result;

/// Writes the CDF of every run to `out/cdf.svg` and `out/cdf.png`.
pub fn write_cdf(runs: &[Run], out: &Path, title: &str, log_x: bool) -> Result<()> {
    let lines: Vec<(&str, Vec<f64>)> = runs
        .iter()
        .map(|r| (r.label.as_str(), r.latencies_s()))
        .collect();
    cdf_figure(
        &lines,
        title,
        log_x,
        &out.join("cdf.svg"),
        &out.join("cdf.png"),
    )
}

/// Compares `runs` against the first and writes everything `plot compare`
/// writes into `out`: `cdf.svg/.png`, `per_model.svg/.png`, `table.md` and
/// `table.csv`. The comparison is computed first, so a schedule mismatch
/// under `opts.require_join` writes nothing.
pub fn write_comparison(
    runs: &[Run],
    out: &Path,
    title: &str,
    log_x: bool,
    opts: &CompareOptions,
) -> Result<Comparison> {
    let cmp = compare(runs, opts)?;
    write_cdf(runs, out, title, log_x)?;
    let per_model: Vec<(&str, &[switchyard_core::records::RequestRecord])> = runs
        .iter()
        .map(|r| (r.label.as_str(), r.records.as_slice()))
        .collect();
    per_model_figure(
        &per_model,
        &format!("{title}, per model"),
        log_x,
        &out.join("per_model.svg"),
        &out.join("per_model.png"),
    )?;
    cmp.write(&out.join("table.md"), &out.join("table.csv"))?;
    Ok(cmp)
}
