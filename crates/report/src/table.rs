//! The comparison table: per run mean, p50, p90, p99, max and SLO
//! attainment, and each run's error against the first run (relative error
//! of mean and percentiles, Kolmogorov-Smirnov distance, mean per-request
//! absolute error), as markdown and CSV.

use crate::join::{mean_abs_error_s, DEFAULT_ARRIVAL_TOL_S};
use crate::runs::Run;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use switchyard_core::output::write_atomic;
use switchyard_core::stats::{ks_distance, Summary};
use switchyard_core::{Error, InputError, Result};

/// How [`compare`] computes SLO attainment and per-request errors.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// One SLO (seconds) for every request. When set, attainment is the
    /// fraction of requests with `latency_s <= slo_s`; when not, it is the
    /// run's `summary.json` value, or unknown (`NaN`, shown `n/a`).
    pub slo_s: Option<f64>,
    /// When true, a run whose schedule differs from the first run's is an
    /// error; when false its per-request error is left out (`None`) and a
    /// note says why.
    pub require_join: bool,
    /// Arrival-time tolerance in seconds when matching schedules.
    pub arrival_tol_s: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            slo_s: None,
            require_join: false,
            arrival_tol_s: DEFAULT_ARRIVAL_TOL_S,
        }
    }
}

/// One row of the table: a run's statistics and its error against the
/// first run (all error fields `None` for the first run itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Run label.
    pub label: String,
    /// The file it came from.
    pub source: PathBuf,
    /// Latency summary (seconds); `slo_attainment` is `NaN` when unknown.
    pub summary: Summary,
    /// `(mean - ref mean) / ref mean`.
    pub rel_err_mean: Option<f64>,
    /// `(p50 - ref p50) / ref p50`.
    pub rel_err_p50: Option<f64>,
    /// `(p90 - ref p90) / ref p90`.
    pub rel_err_p90: Option<f64>,
    /// `(p99 - ref p99) / ref p99`.
    pub rel_err_p99: Option<f64>,
    /// Two-sample KS distance between this run's latencies and the first's.
    pub ks: Option<f64>,
    /// Mean over requests of `|latency - ref latency|`, seconds (joined by
    /// request id); `None` when the schedules differ.
    pub mean_abs_err_s: Option<f64>,
}

/// The comparison of runs: one row per run, the first is the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One row per run, in the order given.
    pub rows: Vec<Row>,
    /// Remarks for the reader (e.g. why a per-request error is missing).
    pub notes: Vec<String>,
}

fn rel(x: f64, reference: f64) -> f64 {
    (x - reference) / reference
}

fn sorted_latencies(run: &Run) -> Vec<f64> {
    let mut v = run.latencies_s();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// Compares `runs` against the first. Errors (bad input, exit 2): no runs,
/// a non-positive `slo_s`, or with `require_join` a run whose schedule
/// differs from the first run's (the error names both files and the first
/// differing request id).
pub fn compare(runs: &[Run], opts: &CompareOptions) -> Result<Comparison> {
    let Some(first) = runs.first() else {
        return Err(Error::Input(InputError::new(
            "<flags>",
            None,
            "",
            "no runs to compare",
        )));
    };
    if let Some(slo) = opts.slo_s.filter(|s| !(s.is_finite() && *s > 0.0)) {
        let msg = format!("expected a positive SLO, found {} ms", slo * 1e3);
        return Err(Error::Input(InputError::new(
            "<flags>", None, "--slo-ms", msg,
        )));
    }
    let ref_sorted = sorted_latencies(first);
    let mut reference: Option<Summary> = None;
    let mut rows = Vec::with_capacity(runs.len());
    let mut notes = Vec::new();
    for run in runs {
        let sorted = sorted_latencies(run);
        let within = opts
            .slo_s
            .map(|slo| sorted.partition_point(|&l| l <= slo) as u64)
            .unwrap_or(0);
        let mut summary = Summary::of(&sorted, within);
        if opts.slo_s.is_none() {
            summary.slo_attainment = run.summary_slo_attainment.unwrap_or(f64::NAN);
        }
        let mut row = Row {
            label: run.label.clone(),
            source: run.source.clone(),
            summary: summary.clone(),
            rel_err_mean: None,
            rel_err_p50: None,
            rel_err_p90: None,
            rel_err_p99: None,
            ks: None,
            mean_abs_err_s: None,
        };
        if let Some(r) = &reference {
            row.rel_err_mean = Some(rel(summary.mean_s, r.mean_s));
            row.rel_err_p50 = Some(rel(summary.p50_s, r.p50_s));
            row.rel_err_p90 = Some(rel(summary.p90_s, r.p90_s));
            row.rel_err_p99 = Some(rel(summary.p99_s, r.p99_s));
            row.ks = Some(ks_distance(&sorted, &ref_sorted));
            match mean_abs_error_s(first, run, opts.arrival_tol_s) {
                Ok(e) => row.mean_abs_err_s = Some(e),
                Err(e) if opts.require_join => return Err(Error::Input(e)),
                Err(e) => notes.push(format!(
                    "no per-request error for `{}`: {}",
                    run.label, e.message
                )),
            }
        } else {
            reference = Some(summary);
        }
        rows.push(row);
    }
    Ok(Comparison { rows, notes })
}

/// Milliseconds with three decimals, or `n/a`.
fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{:.3}", v * 1e3)
    } else {
        "n/a".into()
    }
}

/// A signed percentage, `ref` for the reference row, `n/a` when undefined.
fn pct(v: Option<f64>) -> String {
    match v {
        None => "ref".into(),
        Some(x) if x.is_finite() => format!("{:+.2}%", x * 100.0),
        Some(_) => "n/a".into(),
    }
}

/// A CSV number with `digits` decimals, or an empty cell.
fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => String::new(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Header of the CSV table: latencies in ms (6 decimals), attainment,
/// relative errors and KS distance as fractions (9 decimals).
pub const CSV_HEADER: &str = "run,source,requests,mean_ms,p50_ms,p90_ms,p99_ms,max_ms,\
slo_attainment,rel_err_mean,rel_err_p50,rel_err_p90,rel_err_p99,ks_distance,mean_abs_err_ms";

impl Comparison {
    /// The table as markdown (ms with three decimals, errors as signed
    /// percentages), followed by the notes.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "| run | requests | mean ms | p50 ms | p90 ms | p99 ms | max ms | SLO attainment \
             | err mean | err p50 | err p90 | err p99 | KS distance | mean abs err ms |\n",
        );
        s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.rows {
            let m = &r.summary;
            let slo = if m.slo_attainment.is_finite() {
                format!("{:.2}%", m.slo_attainment * 100.0)
            } else {
                "n/a".into()
            };
            let is_ref = r.ks.is_none();
            let ks = match r.ks {
                None => "ref".into(),
                Some(k) => format!("{k:.4}"),
            };
            let mae = match r.mean_abs_err_s {
                None if is_ref => "ref".into(),
                None => "n/a".into(),
                Some(e) => ms(e),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.label.replace('|', "\\|"),
                m.requests,
                ms(m.mean_s),
                ms(m.p50_s),
                ms(m.p90_s),
                ms(m.p99_s),
                ms(m.max_s),
                slo,
                pct(r.rel_err_mean),
                pct(r.rel_err_p50),
                pct(r.rel_err_p90),
                pct(r.rel_err_p99),
                ks,
                mae
            );
        }
        if let Some(first) = self.rows.first() {
            let _ = write!(
                s,
                "\nErrors are against the first run, `{}`: relative error of the \
                 mean and percentiles, two-sample Kolmogorov-Smirnov distance of the \
                 latency distributions, and mean absolute per-request latency error \
                 (requests joined by id).\n",
                first.label
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "\nNote: {n}");
        }
        s
    }

    /// The table as CSV ([`CSV_HEADER`]); cells with no value are empty.
    pub fn to_csv(&self) -> String {
        let mut s = format!("{CSV_HEADER}\n");
        for r in &self.rows {
            let m = &r.summary;
            let fin = |x: f64| num(Some(x * 1e3), 6);
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&r.label),
                csv_field(&r.source.display().to_string()),
                m.requests,
                fin(m.mean_s),
                fin(m.p50_s),
                fin(m.p90_s),
                fin(m.p99_s),
                fin(m.max_s),
                num(Some(m.slo_attainment), 9),
                num(r.rel_err_mean, 9),
                num(r.rel_err_p50, 9),
                num(r.rel_err_p90, 9),
                num(r.rel_err_p99, 9),
                num(r.ks, 9),
                num(r.mean_abs_err_s.map(|e| e * 1e3), 6),
            );
        }
        s
    }

    /// Writes the markdown and CSV tables, each atomically.
    pub fn write(&self, markdown: &Path, csv: &Path) -> Result<()> {
        write_atomic(markdown, self.to_markdown().as_bytes())?;
        write_atomic(csv, self.to_csv().as_bytes())
    }
}
