//! A fast writer of `requests.csv`: the same bytes as
//! [`switchyard_core::records::RecordWriter`], with numbers formatted by
//! integer arithmetic instead of `format!` (the float formatting otherwise
//! dominates a million-request run).

use crate::sink::RecordSink;
use std::io::Write;
use std::path::{Path, PathBuf};
use switchyard_core::records::{RequestRecord, HEADER};
use switchyard_core::Error;

/// Streams records into `requests.csv` through a temporary file; `finish`
/// renames it into place. Output is byte-identical to `RecordWriter`'s.
pub struct RecordFile {
    w: std::io::BufWriter<std::fs::File>,
    line: Vec<u8>,
    tmp: PathBuf,
    path: PathBuf,
}

impl RecordFile {
    /// Starts writing `path` (its folder is created).
    pub fn create(path: &Path) -> Result<RecordFile, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = path.with_extension(format!("csv.{}.tmp", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        writeln!(w, "{HEADER}").map_err(|e| Error::io(&tmp, e))?;
        Ok(RecordFile {
            w,
            line: Vec::with_capacity(128),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Flushes and renames the file into place.
    pub fn finish(mut self) -> Result<(), Error> {
        self.w.flush().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for RecordFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl RecordSink for RecordFile {
    fn record(&mut self, r: &RequestRecord) -> Result<(), Error> {
        let b = &mut self.line;
        b.clear();
        push_u64(b, r.id);
        b.push(b',');
        b.extend_from_slice(r.model.as_bytes());
        for x in [r.arrival_s, r.start_s, r.finish_s, r.latency_s] {
            b.push(b',');
            push_fixed9(b, x);
        }
        b.push(b',');
        push_u64(b, r.batch_size as u64);
        b.push(b',');
        b.push(if r.cold { b'1' } else { b'0' });
        b.push(b'\n');
        self.w.write_all(b).map_err(|e| Error::io(&self.tmp, e))
    }
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
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
    push_u64(buf, (q / SCALE) as u64);
    buf.push(b'.');
    let f = (q % SCALE) as u64;
    let mut digits = [b'0'; 9];
    let mut v = f;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn fast(x: f64) -> String {
        let mut b = Vec::new();
        push_fixed9(&mut b, x);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn matches_std_formatting() {
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
    fn same_bytes_as_record_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let mut slow = switchyard_core::records::RecordWriter::create(&a).unwrap();
        let mut quick = RecordFile::create(&b).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
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
            slow.write(&r).unwrap();
            quick.record(&r).unwrap();
        }
        slow.finish().unwrap();
        quick.finish().unwrap();
        assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    }
}
