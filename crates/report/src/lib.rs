//! Figures and tables from latency records: empirical CDFs (one chart, or
//! one panel per model), and the comparison table of runs against the first
//! (percentile errors, Kolmogorov-Smirnov distance, per-request error).
//! `sim` and `replay` call these; the `plot` binary wraps them.

pub mod cdf;
pub mod panels;
pub mod render;

pub use cdf::cdf_figure;
pub use panels::per_model_figure;
