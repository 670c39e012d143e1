//! Per-request latency records: `requests.csv`, written by `sim` and
//! `replay` alike and read by `plot`.

use crate::error::{Error, InputError, Result};
use crate::output::AtomicFile;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

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

impl RequestRecord {
    /// Appends the record's CSV line to `buf`: the bytes of
    /// [`RequestRecord::write_line`], with numbers formatted by integer
    /// arithmetic instead of `format!` (the float formatting otherwise
    /// dominates a million-request run).
    pub fn push_line(&self, b: &mut Vec<u8>) {
        push_u64(b, self.id);
        b.push(b',');
        b.extend_from_slice(self.model.as_bytes());
        for x in [self.arrival_s, self.start_s, self.finish_s, self.latency_s] {
            b.push(b',');
            push_fixed9(b, x);
        }
        b.push(b',');
        push_u64(b, self.batch_size as u64);
        b.push(b',');
        b.push(if self.cold { b'1' } else { b'0' });
        b.push(b'\n');
    }
}

/// Streams records into `requests.csv` through a temporary file
/// ([`AtomicFile`]); `finish` renames it into place, so memory stays flat
/// and no partial file remains. Used by `sim` and `replay` alike.
pub struct RecordWriter {
    file: AtomicFile,
    line: Vec<u8>,
}

impl RecordWriter {
    /// Starts writing `path` (its folder is created).
    pub fn create(path: &Path) -> Result<RecordWriter> {
        let mut file = AtomicFile::create(path)?;
        writeln!(file, "{HEADER}").map_err(|e| Error::io(path, e))?;
        Ok(RecordWriter {
            file,
            line: Vec::with_capacity(128),
        })
    }

    /// Appends one record.
    pub fn write(&mut self, r: &RequestRecord) -> Result<()> {
        self.line.clear();
        r.push_line(&mut self.line);
        self.file
            .write_all(&self.line)
            .map_err(|e| Error::io(self.file.path(), e))
    }

    /// Flushes and renames the file into place.
    pub fn finish(self) -> Result<()> {
        self.file.finish()
    }
}

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while v >= 100 {
        i -= 2;
        digits[i..i + 2].copy_from_slice(pair((v % 100) as usize));
        v /= 100;
    }
    if v >= 10 {
        i -= 2;
        digits[i..i + 2].copy_from_slice(pair(v as usize));
    } else {
        i -= 1;
        digits[i] = b'0' + v as u8;
    }
    buf.extend_from_slice(&digits[i..]);
}

/// The two decimal digits of `n` (< 100).
fn pair(n: usize) -> &'static [u8] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";
    &PAIRS[2 * n..2 * n + 2]
}

/// Appends `x` exactly as `format!("{x:.9}")` writes it: the binary value
/// rounded to nine decimals, ties to even.
pub(crate) fn push_fixed9(buf: &mut Vec<u8>, x: f64) {
    const SCALE: u128 = 1_000_000_000;
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i64;
    if x.is_sign_negative() || exp_bits == 0x7ff || x >= 1e12 {
        let _ = write!(buf, "{x:.9}");
        return;
    }
    let frac = bits & ((1u64 << 52) - 1);
    let (m, e) = if exp_bits == 0 {
        (frac, -1074i64)
    } else {
        (frac | (1u64 << 52), exp_bits - 1075)
    };
    // x = m * 2^e; q = x * 1e9 rounded half to even.
    let q: u128 = if e >= 0 {
        ((m as u128) << e) * SCALE
    } else {
        let s = (-e) as u32;
        let num = m as u128 * SCALE;
        if s >= 127 {
            0
        } else {
            let q = num >> s;
            let r = num & ((1u128 << s) - 1);
            let half = 1u128 << (s - 1);
            if r > half || (r == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        }
    };
    // Below 2^64 (x under about 1.8e10 s) by 64-bit arithmetic, which
    // divides by a constant without a call.
    let (int, f) = match u64::try_from(q) {
        Ok(q) => (q / SCALE as u64, (q % SCALE as u64) as usize),
        Err(_) => ((q / SCALE) as u64, (q % SCALE) as usize),
    };
    push_u64(buf, int);
    buf.push(b'.');
    let mut digits = [0u8; 9];
    digits[0] = b'0' + (f / 100_000_000) as u8;
    let r = f % 100_000_000;
    digits[1..3].copy_from_slice(pair(r / 1_000_000));
    digits[3..5].copy_from_slice(pair(r / 10_000 % 100));
    digits[5..7].copy_from_slice(pair(r / 100 % 100));
    digits[7..9].copy_from_slice(pair(r % 100));
    buf.extend_from_slice(&digits);
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

    fn fast(x: f64) -> String {
        let mut b = Vec::new();
        push_fixed9(&mut b, x);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn integers_match_std_formatting() {
        let mut v = vec![
            0,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            u64::MAX,
            u64::MAX - 1,
        ];
        v.extend((0..64).map(|k| 1u64 << k));
        v.extend((1..20).map(|k| 10u64.pow(k) - 1));
        v.extend((1..20).map(|k| 10u64.pow(k)));
        for n in v {
            let mut b = Vec::new();
            push_u64(&mut b, n);
            assert_eq!(String::from_utf8(b).unwrap(), n.to_string());
        }
    }

    #[test]
    fn fast_numbers_match_std_formatting() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let specials = [
            0.0,
            1.0 / 1024.0,
            3.0 / 1024.0,
            1.0 / 2048.0,
            0.5,
            1e-10,
            4.9e-324,
            123456.0000000005,
            999.9999999995,
            1e11,
            1.8446744073709e10,
            1.8446744074e10,
            2e10 + 0.5e-9,
            5e11 + 0.999999999,
            999999999999.9999,
        ];
        for &x in &specials {
            assert_eq!(fast(x), format!("{x:.9}"), "{x:e}");
        }
        for _ in 0..1_000_000 {
            let x: f64 = match rng.random_range(0..4) {
                0 => rng.random::<f64>(),
                1 => rng.random::<f64>() * 1e5,
                2 => {
                    (rng.random_range(0u64..1 << 40) as f64)
                        / (1u64 << rng.random_range(0..40)) as f64
                }
                _ => f64::from_bits(rng.random_range(0..0x4200_0000_0000_0000u64)),
            };
            assert_eq!(fast(x), format!("{x:.9}"), "{x:e}");
        }
    }

    #[test]
    fn fast_line_is_write_line() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (mut quick, mut slow) = (Vec::new(), Vec::new());
        for id in 0..10_000u64 {
            let arrival = rng.random::<f64>() * 100.0;
            let r = RequestRecord {
                id: id * 7919,
                model: format!("m{}", id % 5),
                arrival_s: arrival,
                start_s: arrival + rng.random::<f64>(),
                finish_s: arrival + 2.0,
                latency_s: 2.0 + rng.random::<f64>() * 1e-6,
                batch_size: rng.random_range(1..64),
                cold: rng.random(),
            };
            r.push_line(&mut quick);
            r.write_line(&mut slow).unwrap();
        }
        assert_eq!(quick, slow);
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
