//! Real arrival traces: a plain `arrival_s,model` CSV, the Azure LLM
//! inference trace 2023, the Azure Functions 2019 per-minute counts, and
//! BurstGPT (`Timestamp`, `Model` columns).

use crate::error::{Error, InputError, Result};
use crate::line_cap::{LineCapped, MAX_LINE_BYTES};
use crate::workload::TraceFormat;
use chrono::NaiveDateTime;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::weighted::WeightedIndex;
use rand_distr::{Distribution, Exp};
use std::path::Path;

/// Reads `(arrival_s, model)` pairs from a trace, times multiplied by `time_scale`.
///
/// - `Csv`: `arrival_s,model` with model names from `models`.
/// - `Burstgpt`: the same from BurstGPT's `Timestamp` and `Model` columns.
/// - `AzureLlm`: one request per row at `TIMESTAMP` (seconds after the first
///   row); the model is drawn by `shares` from `rng`.
/// - `AzureFunctions`: row `i` (a function) serves model `i % models.len()`;
///   its count `c` in minute `m` becomes a Poisson process of rate `c/60` over
///   that minute (a piecewise-constant Poisson process).
pub fn load(
    path: &Path,
    format: TraceFormat,
    time_scale: f64,
    models: &[String],
    shares: &[f64],
    rng: &mut StdRng,
    max_requests: u64,
) -> Result<Vec<(f64, u32)>> {
    let file = std::fs::File::open(path).map_err(|e| Error::unreadable(path, e))?;
    let file = LineCapped::new(file, MAX_LINE_BYTES);
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(file);
    let bad = |line: u64, field: &str, msg: String| {
        Error::Input(InputError::new(
            path,
            Some(line).filter(|&l| l > 0),
            field,
            msg,
        ))
    };
    let headers = rdr
        .headers()
        .map_err(|e| bad(1, "", format!("cannot read the header: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                bad(
                    1,
                    name,
                    format!("missing column `{name}` for trace format {format:?}"),
                )
            })
    };
    // A row shorter than the header (the reader is flexible) is an error
    // naming the missing column, never an out-of-bounds index.
    let cell = |rec: &'_ csv::StringRecord, c: usize, name: &str, line: u64| {
        rec.get(c).map(str::to_owned).ok_or_else(|| {
            bad(
                line,
                name,
                format!(
                    "the row has {} columns, fewer than the header's {}: no `{name}`",
                    rec.len(),
                    headers.len()
                ),
            )
        })
    };
    let mut out = Vec::new();
    match format {
        TraceFormat::Csv | TraceFormat::Burstgpt => {
            let (t_name, m_name) = match format {
                TraceFormat::Csv => ("arrival_s", "model"),
                _ => ("Timestamp", "Model"),
            };
            let (c_t, c_m) = (col(t_name)?, col(m_name)?);
            // Names looked up in a hash map: linear in rows whatever the model count.
            let index: std::collections::HashMap<&str, u32> = models
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i as u32))
                .collect();
            for rec in rdr.records() {
                let rec = rec.map_err(|e| {
                    bad(
                        e.position().map(|p| p.line()).unwrap_or(0),
                        "",
                        e.to_string(),
                    )
                })?;
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                let (t_cell, m_cell) = (
                    cell(&rec, c_t, t_name, line)?,
                    cell(&rec, c_m, m_name, line)?,
                );
                let t = parse_time(&t_cell).ok_or_else(|| {
                    bad(
                        line,
                        t_name,
                        format!("expected seconds >= 0, got `{t_cell}`"),
                    )
                })?;
                let m = *index.get(m_cell.as_str()).ok_or_else(|| {
                    bad(
                        line,
                        m_name,
                        format!("unknown model `{m_cell}`: list it in `models`, or serve every name of the trace with `trace_models`"),
                    )
                })?;
                out.push((t * time_scale, m));
                if out.len() as u64 > max_requests {
                    return Err(bad(line, "", too_many(max_requests)));
                }
            }
        }
        TraceFormat::AzureLlm => {
            let c_t = col("TIMESTAMP")?;
            let pick = WeightedIndex::new(shares).expect("shares are validated positive");
            let mut first: Option<NaiveDateTime> = None;
            for rec in rdr.records() {
                let rec = rec.map_err(|e| {
                    bad(
                        e.position().map(|p| p.line()).unwrap_or(0),
                        "",
                        e.to_string(),
                    )
                })?;
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                let t_cell = cell(&rec, c_t, "TIMESTAMP", line)?;
                let ts = parse_timestamp(&t_cell).ok_or_else(|| {
                    bad(
                        line,
                        "TIMESTAMP",
                        format!("expected `YYYY-MM-DD HH:MM:SS[.fffffff]`, got `{t_cell}`"),
                    )
                })?;
                let t0 = *first.get_or_insert(ts);
                let secs = (ts - t0).num_nanoseconds().unwrap_or(i64::MAX) as f64 * 1e-9;
                if secs < 0.0 {
                    return Err(bad(
                        line,
                        "TIMESTAMP",
                        "timestamps must not go back before the first row".into(),
                    ));
                }
                out.push((secs * time_scale, pick.sample(rng) as u32));
                if out.len() as u64 > max_requests {
                    return Err(bad(line, "", too_many(max_requests)));
                }
            }
        }
        TraceFormat::AzureFunctions => {
            let first_minute = col("1")?;
            let mut total = 0u64;
            for (row, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(|e| {
                    bad(
                        e.position().map(|p| p.line()).unwrap_or(0),
                        "",
                        e.to_string(),
                    )
                })?;
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                let model = (row % models.len()) as u32;
                for (m, cell) in rec.iter().enumerate().skip(first_minute) {
                    let minute = (m - first_minute) as f64;
                    let count: u64 = cell.parse().map_err(|_| {
                        bad(
                            line,
                            headers.get(m).unwrap_or("?"),
                            format!("expected a count >= 0, got `{cell}`"),
                        )
                    })?;
                    if count == 0 {
                        continue;
                    }
                    total = total.saturating_add(count);
                    if total > max_requests {
                        return Err(bad(
                            line,
                            headers.get(m).unwrap_or("?"),
                            format!(
                                "the counts so far add up to {total} requests: {}",
                                too_many(max_requests)
                            ),
                        ));
                    }
                    let gap = Exp::new(count as f64 / 60.0).expect("count > 0");
                    let mut t = gap.sample(rng);
                    while t < 60.0 {
                        out.push(((minute * 60.0 + t) * time_scale, model));
                        t += gap.sample(rng);
                    }
                }
                // Keep the generator's state independent of row length.
                let _: u64 = rng.random();
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

/// The error of a trace holding more requests than `max`.
fn too_many(max: u64) -> String {
    format!("the trace holds more than the limit of {max} requests (sim --max-requests raises it)")
}

fn parse_time(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|t| t.is_finite() && *t >= 0.0)
}

fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn models(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn a_row_shorter_than_the_header_names_its_line_and_missing_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "arrival_s,model\n0.5,m0\n0.7\n").unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let e = load(
            &p,
            TraceFormat::Csv,
            1.0,
            &models(1),
            &[1.0],
            &mut rng,
            u64::MAX,
        )
        .unwrap_err();
        let Error::Input(e) = e else { panic!("{e:?}") };
        assert_eq!((e.line, e.field.as_str()), (Some(3), "model"));
        assert!(e.message.contains("fewer than the header"), "{}", e.message);
    }

    #[test]
    fn azure_llm_rows_become_arrivals_relative_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("llm.csv");
        std::fs::write(
            &p,
            "TIMESTAMP,ContextTokens,GeneratedTokens\n\
             2023-11-16 18:15:46.6805900,374,44\n\
             2023-11-16 18:15:50.9951690,396,109\n\
             2023-11-16 18:16:06.1806220,879,45\n",
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let v = load(
            &p,
            TraceFormat::AzureLlm,
            1.0,
            &models(2),
            &[0.5, 0.5],
            &mut rng,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].0, 0.0);
        assert!((v[1].0 - 4.314579).abs() < 1e-6);
        assert!((v[2].0 - 19.500032).abs() < 1e-6);
    }

    #[test]
    fn azure_llm_bad_timestamp_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("llm.csv");
        std::fs::write(
            &p,
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,1\nyesterday,1,1\n",
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let Error::Input(e) = load(
            &p,
            TraceFormat::AzureLlm,
            1.0,
            &models(1),
            &[1.0],
            &mut rng,
            u64::MAX,
        )
        .unwrap_err() else {
            panic!()
        };
        assert_eq!((e.line, e.field.as_str()), (Some(3), "TIMESTAMP"));
    }

    #[test]
    fn azure_functions_counts_become_poisson_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fn.csv");
        let minutes: Vec<String> = (1..=1440).map(|m| m.to_string()).collect();
        let mut text = format!(
            "HashOwner,HashApp,HashFunction,Trigger,{}\n",
            minutes.join(",")
        );
        // Function 0: 600 calls in minute 1, none after; function 1: 60 in minute 3.
        let mut row0 = vec!["0".to_string(); 1440];
        row0[0] = "600".into();
        let mut row1 = vec!["0".to_string(); 1440];
        row1[2] = "60".into();
        text += &format!("o,a,f0,http,{}\n", row0.join(","));
        text += &format!("o,a,f1,timer,{}\n", row1.join(","));
        std::fs::write(&p, text).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let v = load(
            &p,
            TraceFormat::AzureFunctions,
            1.0,
            &models(2),
            &[0.5, 0.5],
            &mut rng,
            u64::MAX,
        )
        .unwrap();
        // A limit below the counts: refused at the cell that passes it.
        let e = load(
            &p,
            TraceFormat::AzureFunctions,
            1.0,
            &models(2),
            &[0.5, 0.5],
            &mut rng,
            100,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":2:") && e.contains("limit of 100"), "{e}");
        let f0: Vec<_> = v.iter().filter(|(_, m)| *m == 0).collect();
        let f1: Vec<_> = v.iter().filter(|(_, m)| *m == 1).collect();
        assert!(f0.iter().all(|(t, _)| *t < 60.0));
        assert!(f1.iter().all(|(t, _)| (120.0..180.0).contains(t)));
        // Poisson counts: 600 +- 4 sigma, 60 +- 4 sigma.
        assert!(
            (f0.len() as f64 - 600.0).abs() < 4.0 * 600f64.sqrt(),
            "{}",
            f0.len()
        );
        assert!(
            (f1.len() as f64 - 60.0).abs() < 4.0 * 60f64.sqrt(),
            "{}",
            f1.len()
        );
    }
}
