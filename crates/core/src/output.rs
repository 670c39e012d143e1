//! Atomic output: results appear whole or not at all.
//!
//! Every file is written to a temporary sibling and renamed into place, so a
//! crash or a bad input never leaves a half-written result behind.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (temporary sibling, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Streams into `path` atomically: `fill` writes into a buffered temporary
/// file, which is synced and renamed into place only if `fill` succeeds.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    let mut file = AtomicFile::create(path)?;
    fill(&mut file).map_err(|e| Error::io(path, e))?;
    file.finish_synced()
}

/// A file written through a temporary sibling: [`AtomicFile::finish`]
/// renames it into place; dropped unfinished (an error, a panic), it
/// removes the temporary, so no partial file is ever left.
pub struct AtomicFile {
    w: std::io::BufWriter<fs::File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts writing `path` (its folder is created), through a 1 MiB buffer.
    pub fn create(path: &Path) -> Result<AtomicFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = temp_sibling(path);
        let file = fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
        Ok(AtomicFile {
            w: std::io::BufWriter::with_capacity(1 << 20, file),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Where the file will be once finished.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and renames the file into place.
    pub fn finish(self) -> Result<()> {
        self.finish_inner(false)
    }

    /// Flushes, syncs to disk and renames the file into place.
    pub fn finish_synced(self) -> Result<()> {
        self.finish_inner(true)
    }

    fn finish_inner(mut self, sync: bool) -> Result<()> {
        self.w.flush().map_err(|e| Error::io(&self.path, e))?;
        if sync {
            self.w
                .get_ref()
                .sync_all()
                .map_err(|e| Error::io(&self.path, e))?;
        }
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.w.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Checks, before a long run, that `dir` can hold its outputs: creates it
/// if needed and writes (then removes) a probe file there.
pub fn check_writable(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = temp_sibling(&dir.join("probe"));
    fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    fs::remove_file(&probe).map_err(|e| Error::io(dir, e))
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_check_creates_the_folder_and_leaves_it_empty() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b");
        check_writable(&out).unwrap();
        assert!(out.is_dir());
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
        // A file where the folder should be.
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert!(check_writable(&file).is_err());
    }

    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let err = write_atomic_with(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert!(!path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn writes_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        write_atomic(&path, b"hello").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
    }
}
