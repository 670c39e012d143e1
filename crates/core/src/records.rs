//! Per-request latency records: `requests.csv`, written by `sim` and
//! `replay` alike and read by `plot`.

use crate::error::{Error, InputError, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id (from the schedule).
    pub id: u64,
    /// Model name.
    pub model: String,
    /// Arrival time, seconds from the start of the run.
    pub arrival_s: f64,
    /// When its batch started computing, seconds.
    pub start_s: f64,
    /// When its output was ready, seconds.
    pub finish_s: f64,
    /// `finish_s - arrival_s`.
    pub latency_s: f64,
    /// Size of the batch it ran in.
    pub batch_size: u32,
    /// Whether it waited on a load of its model.
    pub cold: bool,
}

/// Column header of `requests.csv`.
pub const HEADER: &str = "id,model,arrival_s,start_s,finish_s,latency_s,batch_size,cold";

impl RequestRecord {
    /// Writes the record as one CSV line (fixed nanosecond precision, so
    /// output bytes depend only on the values).
    pub fn write_line(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            w,
            "{},{},{:.9},{:.9},{:.9},{:.9},{},{}",
            self.id,
            self.model,
            self.arrival_s,
            self.start_s,
            self.finish_s,
            self.latency_s,
            self.batch_size,
            self.cold as u8
        )
    }
}

/// Streams records into `requests.csv` through a temporary file; `finish`
/// renames it into place, so memory stays flat and no partial file remains.
pub struct RecordWriter {
    w: std::io::BufWriter<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl RecordWriter {
    /// Starts writing `path` (its folder is created).
    pub fn create(path: &Path) -> Result<RecordWriter> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = path.with_extension(format!("csv.{}.tmp", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        writeln!(w, "{HEADER}").map_err(|e| Error::io(&tmp, e))?;
        Ok(RecordWriter {
            w,
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Appends one record.
    pub fn write(&mut self, r: &RequestRecord) -> Result<()> {
        r.write_line(&mut self.w)
            .map_err(|e| Error::io(&self.tmp, e))
    }

    /// Flushes and renames the file into place.
    pub fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Reads a `requests.csv`; errors name the line and the column.
pub fn read(path: &Path) -> Result<Vec<RequestRecord>> {
    let file = std::fs::File::open(path).map_err(|e| Error::unreadable(path, e))?;
    let mut rdr = csv::Reader::from_reader(crate::line_cap::LineCapped::new(
        file,
        crate::line_cap::MAX_LINE_BYTES,
    ));
    let headers = rdr
        .headers()
        .map_err(|e| Error::Input(InputError::new(path, Some(1), "", e.to_string())))?
        .clone();
    if !headers.iter().take(6).eq(HEADER.split(',').take(6)) {
        return Err(Error::Input(InputError::new(
            path,
            Some(1),
            "",
            "expected a header starting `id,model,arrival_s,start_s,finish_s,latency_s`",
        )));
    }
    let mut out = Vec::new();
    for rec in rdr.deserialize::<RawRecord>() {
        let r = rec.map_err(|e| {
            let line = e.position().map(|p| p.line());
            let field = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err
                    .field()
                    .and_then(|i| headers.get(i as usize))
                    .unwrap_or("")
                    .to_string(),
                _ => String::new(),
            };
            Error::Input(InputError::new(path, line, field, e.to_string()))
        })?;
        out.push(RequestRecord {
            id: r.id,
            model: r.model,
            arrival_s: r.arrival_s,
            start_s: r.start_s,
            finish_s: r.finish_s,
            latency_s: r.latency_s,
            batch_size: r.batch_size.unwrap_or(1),
            cold: r.cold.unwrap_or(0) != 0,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct RawRecord {
    id: u64,
    model: String,
    arrival_s: f64,
    start_s: f64,
    finish_s: f64,
    latency_s: f64,
    batch_size: Option<u32>,
    cold: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64) -> RequestRecord {
        RequestRecord {
            id,
            model: "m".into(),
            arrival_s: 0.5,
            start_s: 0.75,
            finish_s: 1.0,
            latency_s: 0.5,
            batch_size: 2,
            cold: true,
        }
    }

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requests.csv");
        let mut w = RecordWriter::create(&p).unwrap();
        w.write(&rec(0)).unwrap();
        w.write(&rec(1)).unwrap();
        w.finish().unwrap();
        assert_eq!(read(&p).unwrap(), vec![rec(0), rec(1)]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requests.csv");
        let mut w = RecordWriter::create(&p).unwrap();
        w.write(&rec(0)).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn bad_value_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requests.csv");
        std::fs::write(
            &p,
            format!("{HEADER}\n0,m,0,0,1,1,1,0\n1,m,0,0,oops,1,1,0\n"),
        )
        .unwrap();
        let Error::Input(e) = read(&p).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field, "finish_s");
    }
}
