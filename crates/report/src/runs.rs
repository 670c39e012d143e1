//! Runs to compare: a `requests.csv` (or a folder holding one), its label,
//! and the SLO attainment of a `summary.json` beside it, if any.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use switchyard_core::records::{self, RequestRecord};
use switchyard_core::summary;
use switchyard_core::{Error, InputError, Result};

/// One run loaded for comparison: its records and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Label used in legends and tables.
    pub label: String,
    /// The `requests.csv` it was read from (used in error messages).
    pub source: PathBuf,
    /// Per-request records in file order (record `i` is on line `i + 2`).
    pub records: Vec<RequestRecord>,
    /// `slo_attainment` of a `summary.json` next to the CSV, when present.
    pub summary_slo_attainment: Option<f64>,
}

impl Run {
    /// A run from records already in memory (as `sim` and `replay` hold them).
    pub fn new(
        label: impl Into<String>,
        source: impl Into<PathBuf>,
        records: Vec<RequestRecord>,
    ) -> Run {
        Run {
            label: label.into(),
            source: source.into(),
            records,
            summary_slo_attainment: None,
        }
    }

    /// Loads `path`: a `requests.csv`, or a folder holding one. The label is
    /// the folder's name (for `DIR` or `DIR/requests.csv`) or the file stem.
    /// Records are checked (finite, non-negative latency and arrival; ids
    /// unique); a `summary.json` beside the CSV supplies
    /// [`Run::summary_slo_attainment`] from its `slo_attainment`.
    pub fn load(path: &Path) -> Result<Run> {
        let csv = if path.is_dir() {
            path.join("requests.csv")
        } else {
            path.to_path_buf()
        };
        if !csv.exists() {
            return Err(Error::Input(InputError::new(
                path,
                None,
                "",
                "no such requests.csv (give a requests.csv or a folder holding one)",
            )));
        }
        let records = records::read(&csv)?;
        validate_records(&csv, &records)?;
        let summary = csv.with_file_name("summary.json");
        let summary_slo_attainment = if summary.is_file() {
            read_summary_slo(&summary)?
        } else {
            None
        };
        Ok(Run {
            label: default_label(&csv),
            source: csv,
            records,
            summary_slo_attainment,
        })
    }

    /// Latencies in seconds, in record order.
    pub fn latencies_s(&self) -> Vec<f64> {
        self.records.iter().map(|r| r.latency_s).collect()
    }
}

/// Label of a run read from `csv`: its folder's name when the file is
/// `requests.csv`, else the file stem.
fn default_label(csv: &Path) -> String {
    let stem = csv
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem == "requests" {
        if let Some(dir) = csv
            .parent()
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        {
            return dir;
        }
    }
    stem
}

/// Checks what comparisons rely on: latency and arrival finite and not
/// negative, and each request id at most once. Errors name the line.
pub fn validate_records(path: &Path, records: &[RequestRecord]) -> Result<()> {
    let mut seen: HashMap<u64, usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let line = Some(i as u64 + 2);
        for (field, v) in [("latency_s", r.latency_s), ("arrival_s", r.arrival_s)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Input(InputError::new(
                    path,
                    line,
                    field,
                    format!("expected a finite number >= 0, found {v}"),
                )));
            }
        }
        if let Some(first) = seen.insert(r.id, i) {
            return Err(Error::Input(InputError::new(
                path,
                line,
                "id",
                format!(
                    "request id {} appears twice (also line {})",
                    r.id,
                    first + 2
                ),
            )));
        }
    }
    Ok(())
}

/// Reads `slo_attainment` (a number in 0..=1) from `summary.json`, the
/// file `sim` and `replay` write ([`switchyard_core::summary`]); `None`
/// when it is absent or undefined (`null`: no requests).
fn read_summary_slo(path: &Path) -> Result<Option<f64>> {
    let x = summary::read(path)?.summary.slo_attainment;
    if x.is_nan() {
        Ok(None)
    } else if (0.0..=1.0).contains(&x) {
        Ok(Some(x))
    } else {
        Err(Error::Input(InputError::new(
            path,
            None,
            "slo_attainment",
            format!("expected a number in 0..=1, found {x}"),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::records::HEADER;

    #[test]
    fn loads_folder_with_summary() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("sim-bursty");
        std::fs::create_dir(&run_dir).unwrap();
        std::fs::write(
            run_dir.join("requests.csv"),
            format!("{HEADER}\n0,m,0,0,1,1,1,0\n"),
        )
        .unwrap();
        std::fs::write(run_dir.join("summary.json"), r#"{"slo_attainment": 0.75}"#).unwrap();
        let run = Run::load(&run_dir).unwrap();
        assert_eq!(run.label, "sim-bursty");
        assert_eq!(run.summary_slo_attainment, Some(0.75));
        assert_eq!(run.latencies_s(), vec![1.0]);
    }

    #[test]
    fn duplicate_id_names_both_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, format!("{HEADER}\n3,m,0,0,1,1,1,0\n3,m,0,0,1,1,1,0\n")).unwrap();
        let Error::Input(e) = Run::load(&p).unwrap_err() else {
            panic!()
        };
        assert_eq!((e.line, e.field.as_str()), (Some(3), "id"));
        assert!(e.message.contains("line 2"), "{}", e.message);
    }

    #[test]
    fn negative_latency_and_bad_summary_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requests.csv");
        std::fs::write(&p, format!("{HEADER}\n0,m,0,0,1,-1,1,0\n")).unwrap();
        let Error::Input(e) = Run::load(&p).unwrap_err() else {
            panic!()
        };
        assert_eq!((e.line, e.field.as_str()), (Some(2), "latency_s"));
        std::fs::write(&p, format!("{HEADER}\n0,m,0,0,1,1,1,0\n")).unwrap();
        std::fs::write(
            dir.path().join("summary.json"),
            r#"{"slo_attainment": "x"}"#,
        )
        .unwrap();
        assert_eq!(Run::load(&p).unwrap_err().exit_code(), 2);
        assert_eq!(
            Run::load(&dir.path().join("nope")).unwrap_err().exit_code(),
            2
        );
    }
}
