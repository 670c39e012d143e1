//! Readers that refuse absurdly long lines before buffering them: a trace or
//! schedule whose line runs to gigabytes is an error naming its line, not an
//! out-of-memory kill (and the error never echoes the line).

use std::io::{self, Read};

/// Longest line any CSV input may hold, bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Wraps a reader; reading fails once a line passes `max` bytes.
#[derive(Debug)]
pub struct LineCapped<R> {
    inner: R,
    max: usize,
    /// Bytes since the last newline.
    run: usize,
    /// Newlines seen so far.
    lines: u64,
}

impl<R: Read> LineCapped<R> {
    /// `inner` with lines of at most `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        LineCapped {
            inner,
            max,
            run: 0,
            lines: 0,
        }
    }
}

impl<R: Read> Read for LineCapped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.run = 0;
                self.lines += 1;
            } else {
                self.run += 1;
                if self.run > self.max {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {} is longer than {} bytes: not a CSV this tool reads",
                            self.lines + 1,
                            self.max
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// Largest YAML or JSON input file read whole, bytes.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Reads a whole text file of at most [`MAX_TEXT_BYTES`] (a workload, a
/// profile, a summary), failing on larger ones (or endless ones such as
/// `/dev/zero`) without reading them whole.
pub fn read_text(path: &std::path::Path) -> io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_TEXT_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TEXT_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not a file this tool reads",
                MAX_TEXT_BYTES >> 20
            ),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_pass_and_a_long_one_fails_naming_its_line() {
        let text = b"a,b\n1,2\n".to_vec();
        let mut out = String::new();
        LineCapped::new(&text[..], 8)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &text[..]);
        let mut long = b"a,b\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 100));
        let e = LineCapped::new(&long[..], 8)
            .read_to_string(&mut String::new())
            .unwrap_err();
        assert!(
            e.to_string().contains("line 2 is longer than 8 bytes"),
            "{e}"
        );
        assert!(!e.to_string().contains("xxx"));
    }
}
