//! The request schedule: who asks for which model when. Written by `sim`
//! as `schedule.csv` (`id,arrival_s,model`) and read back by `sim --schedule`
//! and `replay`, so both halves serve exactly the same requests.

use crate::error::{Error, InputError, Result};

/// Latest arrival a schedule file may hold, seconds (about 32 years): past
/// it a real-time replay could not even represent its release instant.
pub const MAX_ARRIVAL_S: f64 = 1e9;
use crate::names::NameTable;
use crate::output::{write_atomic_with, AtomicFile};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// One request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Request id, 0-based in arrival order.
    pub id: u64,
    /// Arrival time, seconds from the start of the run.
    pub arrival_s: f64,
    /// Index of the model in the workload's model list.
    pub model: u32,
}

/// A sorted list of requests over a fixed set of models.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Model names; `Request::model` indexes this.
    pub models: Vec<String>,
    /// Requests sorted by arrival time (ties by id).
    pub requests: Vec<Request>,
}

/// Rounds a time to the nanosecond, the resolution of `schedule.csv`, so a
/// schedule read back from its file is the schedule that was generated.
pub fn round_ns(t: f64) -> f64 {
    (t * 1e9).round() / 1e9
}

impl Schedule {
    /// Builds a schedule from `(arrival_s, model)` pairs: sorts them by time
    /// (stable, so equal times keep their order) and numbers them from 0.
    pub fn from_arrivals(models: Vec<String>, mut arrivals: Vec<(f64, u32)>) -> Schedule {
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let requests = arrivals
            .into_iter()
            .enumerate()
            .map(|(i, (t, m))| Request {
                id: i as u64,
                arrival_s: round_ns(t),
                model: m,
            })
            .collect();
        Schedule { models, requests }
    }

    /// Writes the CSV text of the schedule to `w`.
    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        write_requests(w, &self.models, self.requests.iter().copied()).map(|_| ())
    }

    /// Writes `path` atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomic_with(path, |w| self.write_to(w))
    }

    /// Reads a schedule CSV whose `model` column names models of `models`.
    ///
    /// Extra columns are ignored. Rows must be sorted by `arrival_s`; ids must be unique.
    pub fn read_csv(path: &Path, models: &[String]) -> Result<Schedule> {
        let file = std::fs::File::open(path).map_err(|e| Error::unreadable(path, e))?;
        let file = crate::line_cap::LineCapped::new(file, crate::line_cap::MAX_LINE_BYTES);
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
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
            headers.iter().position(|h| h == name).ok_or_else(|| {
                bad(
                    1,
                    name,
                    format!("missing column `{name}`; expected header `id,arrival_s,model`"),
                )
            })
        };
        let (c_id, c_t, c_m) = (col("id")?, col("arrival_s")?, col("model")?);
        let mut requests = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let index: std::collections::HashMap<&str, usize> = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.as_str(), i))
            .collect();
        let mut last = f64::NEG_INFINITY;
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad(line, "", format!("malformed CSV: {e}"))
            })?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let id: u64 = rec[c_id].parse().map_err(|_| {
                bad(
                    line,
                    "id",
                    format!("expected a non-negative integer, got `{}`", &rec[c_id]),
                )
            })?;
            let t: f64 = rec[c_t]
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite() && (0.0..=MAX_ARRIVAL_S).contains(t))
                .ok_or_else(|| {
                    bad(
                        line,
                        "arrival_s",
                        format!(
                            "expected seconds from 0 to {MAX_ARRIVAL_S:e}, got `{}`",
                            &rec[c_t]
                        ),
                    )
                })?;
            let model = index.get(&rec[c_m]).copied().ok_or_else(|| {
                bad(
                    line,
                    "model",
                    format!(
                        "unknown model `{}`; the workload has: {}",
                        &rec[c_m],
                        preview(models)
                    ),
                )
            })?;
            if t < last {
                return Err(bad(
                    line,
                    "arrival_s",
                    format!("rows must be sorted by arrival_s; {t} comes after {last}"),
                ));
            }
            if !seen.insert(id) {
                return Err(bad(line, "id", format!("id {id} appears twice")));
            }
            last = t;
            requests.push(Request {
                id,
                arrival_s: t,
                model: model as u32,
            });
        }
        if requests.is_empty() {
            return Err(bad(
                1,
                "",
                "holds no requests: there is nothing to run".to_string(),
            ));
        }
        Ok(Schedule {
            models: models.to_vec(),
            requests,
        })
    }

    /// Time of the last arrival (0 for an empty schedule).
    pub fn span_s(&self) -> f64 {
        self.requests.last().map(|r| r.arrival_s).unwrap_or(0.0)
    }
}

/// Formats `schedule.csv` lines by integer arithmetic (the bytes of
/// `format!("{},{:.9},{}")`) into a buffer written out in blocks.
struct ScheduleLines {
    buf: Vec<u8>,
    /// The model names, by index (shared with the simulator's engine).
    names: Arc<NameTable>,
    /// Lines so far, and the last arrival.
    n: u64,
    last: f64,
}

impl ScheduleLines {
    fn new(names: Arc<NameTable>) -> ScheduleLines {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(b"id,arrival_s,model\n");
        ScheduleLines {
            buf,
            names,
            n: 0,
            last: 0.0,
        }
    }

    /// Adds `r`'s line, writing the buffer to `w` when it is full.
    fn push(&mut self, w: &mut dyn Write, r: &Request) -> std::io::Result<()> {
        let buf = &mut self.buf;
        crate::records::push_u64(buf, r.id);
        buf.push(b',');
        crate::records::push_fixed9(buf, r.arrival_s);
        buf.push(b',');
        buf.extend_from_slice(self.names.bytes(r.model));
        buf.push(b'\n');
        if buf.len() >= (1 << 16) - 256 {
            w.write_all(buf)?;
            buf.clear();
        }
        self.n += 1;
        self.last = r.arrival_s;
        Ok(())
    }

    /// Writes what is buffered; returns the lines and the last arrival.
    fn flush(&mut self, w: &mut dyn Write) -> std::io::Result<(u64, f64)> {
        w.write_all(&self.buf)?;
        self.buf.clear();
        Ok((self.n, self.last))
    }
}

/// Writes the CSV text of `requests` (over `models`) to `w` as they come,
/// holding none; returns how many there were and the last arrival.
pub fn write_requests(
    w: &mut dyn Write,
    models: &[String],
    requests: impl Iterator<Item = Request>,
) -> std::io::Result<(u64, f64)> {
    let mut lines = ScheduleLines::new(Arc::new(NameTable::new(models)));
    for r in requests {
        lines.push(w, &r)?;
    }
    lines.flush(w)
}

/// [`write_requests`] into `path`, atomically: the file appears whole or
/// not at all.
pub fn write_requests_csv(
    path: &Path,
    models: &[String],
    requests: impl Iterator<Item = Request>,
) -> Result<(u64, f64)> {
    let mut out = (0, 0.0);
    write_atomic_with(path, |w| {
        out = write_requests(w, models, requests)?;
        Ok(())
    })?;
    Ok(out)
}

/// `schedule.csv` written a request at a time, as a run draws them (so
/// the requests are drawn once, not once for the file and again for the
/// run) or produces them (closed-loop arrivals, which depend on the run);
/// the file appears whole at [`ScheduleWriter::finish`] or not at all.
pub struct ScheduleWriter {
    file: AtomicFile,
    lines: ScheduleLines,
}

impl ScheduleWriter {
    /// Starts `path` for requests over the models `names` names.
    pub fn create(path: &Path, names: Arc<NameTable>) -> Result<ScheduleWriter> {
        Ok(ScheduleWriter {
            file: AtomicFile::create(path)?,
            lines: ScheduleLines::new(names),
        })
    }

    /// Adds request `r` (the bytes [`write_requests`] gives it; requests
    /// come in arrival order, numbered from 0).
    pub fn push(&mut self, r: &Request) -> Result<()> {
        self.lines
            .push(&mut self.file, r)
            .map_err(|e| Error::io(self.file.path(), e))
    }

    /// Writes out the rest and renames the file into place; returns how
    /// many requests it holds and the last arrival.
    pub fn finish(mut self) -> Result<(u64, f64)> {
        let out = self
            .lines
            .flush(&mut self.file)
            .map_err(|e| Error::io(self.file.path(), e))?;
        self.file.finish_synced()?;
        Ok(out)
    }
}

fn preview(models: &[String]) -> String {
    if models.len() <= 8 {
        models.join(", ")
    } else {
        format!("{}, ... ({} in all)", models[..8].join(", "), models.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn lines_are_those_of_format() {
        let names = vec!["a".to_string(), "model-b".to_string(), String::new()];
        let mut x = 0.0f64;
        let requests: Vec<Request> = (0..2000u64)
            .map(|i| {
                x += (i as f64).sin().abs() * 1e-3 + 1.0 / 3.0e6;
                Request {
                    id: i * 7919,
                    arrival_s: x * (1.0 + (i % 5) as f64 * 1e3),
                    model: (i % 3) as u32,
                }
            })
            .collect();
        let mut want = String::from("id,arrival_s,model\n");
        for r in &requests {
            want += &format!("{},{:.9},{}\n", r.id, r.arrival_s, names[r.model as usize]);
        }
        let mut got = Vec::new();
        let (n, last) = write_requests(&mut got, &names, requests.iter().copied()).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
        assert_eq!((n, last), (2000, requests[1999].arrival_s));
    }

    #[test]
    fn round_trips_through_csv() {
        let s = Schedule::from_arrivals(names(), vec![(0.5, 1), (0.25, 0), (1.0 / 3.0, 1)]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        s.write_csv(&p).unwrap();
        assert_eq!(Schedule::read_csv(&p, &names()).unwrap(), s);
        assert_eq!(s.requests[0].model, 0);
    }

    #[test]
    fn unknown_model_names_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, "id,arrival_s,model\n0,0.1,a\n1,0.2,zzz\n").unwrap();
        let Error::Input(e) = Schedule::read_csv(&p, &names()).unwrap_err() else {
            panic!()
        };
        assert_eq!((e.line, e.field.as_str()), (Some(3), "model"));
        assert!(e.message.contains("zzz"));
    }

    #[test]
    fn unsorted_negative_and_far_future_rows_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, "id,arrival_s,model\n0,0.5,a\n1,0.2,b\n").unwrap();
        let Error::Input(e) = Schedule::read_csv(&p, &names()).unwrap_err() else {
            panic!()
        };
        assert_eq!((e.line, e.field.as_str()), (Some(3), "arrival_s"));
        std::fs::write(&p, "id,arrival_s,model\n0,1e300,a\n").unwrap();
        let Error::Input(e) = Schedule::read_csv(&p, &names()).unwrap_err() else {
            panic!()
        };
        assert_eq!((e.line, e.field.as_str()), (Some(2), "arrival_s"));
        std::fs::write(&p, "id,arrival_s,model\n0,-1,a\n").unwrap();
        let Error::Input(e) = Schedule::read_csv(&p, &names()).unwrap_err() else {
            panic!()
        };
        assert_eq!((e.line, e.field.as_str()), (Some(2), "arrival_s"));
    }
}
