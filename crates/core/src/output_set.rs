//! One run's outputs, all new or all old.
//!
//! A run writes every file into a fresh hidden sibling of its output folder
//! (`.NAME.PID.tmp`), then [`OutputSet::commit`] swaps that folder into
//! place. A run killed half-way leaves the old folder as it was; the next
//! run into the same place removes the dead run's temporaries. A lock file
//! (`.NAME.lock`, holding the writer's process id) refuses a second run
//! into the same folder while one is writing.
//!
//! The folder replaced must be new, empty, or a run's (it holds a
//! `schedule.csv`, `summary.json` or `compare.json` of `sim` or `replay`,
//! or a `table.csv` or `cdf.svg` of `plot`), so a mistyped
//! `--out` never swaps away a folder of other files.

use crate::error::{Error, InputError, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Files whose presence marks a folder as a run's outputs.
const RUN_FILES: &[&str] = &[
    "schedule.csv",
    "summary.json",
    "compare.json",
    "table.csv",
    "cdf.svg",
];

/// A run's output folder being written; see the module docs.
#[derive(Debug)]
pub struct OutputSet {
    target: PathBuf,
    staging: PathBuf,
    lock: PathBuf,
    committed: bool,
}

fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

impl OutputSet {
    /// Starts writing the outputs that will replace `target`: checks it can
    /// be replaced, takes its lock, removes dead runs' temporaries and
    /// creates the staging folder ([`OutputSet::path`]).
    pub fn begin(target: &Path) -> Result<OutputSet> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .ok_or_else(|| {
                Error::Input(InputError::new(
                    target,
                    None,
                    "--out",
                    "expected a folder name (not `.`, `..` or `/`)",
                ))
            })?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| Error::io(target, e))?;
        if target.exists() {
            let replaceable = target.is_dir()
                && (fs::read_dir(target)
                    .map_err(|e| Error::io(target, e))?
                    .next()
                    .is_none()
                    || RUN_FILES.iter().any(|f| target.join(f).exists()));
            if !replaceable {
                return Err(Error::Input(InputError::new(
                    target,
                    None,
                    "--out",
                    "exists and holds no run's outputs (schedule.csv, summary.json, compare.json, table.csv or cdf.svg): choose a new or empty folder",
                )));
            }
        }
        let lock = parent.join(format!(".{name}.lock"));
        Self::take_lock(&lock, target)?;
        let pid = std::process::id();
        // Temporaries of runs that died: `.NAME.PID.tmp` and `.NAME.PID.old`.
        if let Ok(entries) = fs::read_dir(&parent) {
            let prefix = format!(".{name}.");
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(rest) = file.strip_prefix(&prefix) else {
                    continue;
                };
                let Some(id) = rest
                    .strip_suffix(".tmp")
                    .or_else(|| rest.strip_suffix(".old"))
                else {
                    continue;
                };
                if id.parse::<u32>().is_ok_and(|id| id == pid || !alive(id)) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let staging = parent.join(format!(".{name}.{pid}.tmp"));
        fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
        Ok(OutputSet {
            target: target.to_path_buf(),
            staging,
            lock,
            committed: false,
        })
    }

    fn take_lock(lock: &Path, target: &Path) -> Result<()> {
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(lock)
            {
                Ok(f) => {
                    use std::io::Write;
                    let mut f = f;
                    return write!(f, "{}", std::process::id()).map_err(|e| Error::io(lock, e));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(lock)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if alive(pid) => {
                            return Err(Error::Input(InputError::new(
                                target,
                                None,
                                "--out",
                                format!("another run (process {pid}) is writing here; wait for it or choose another folder"),
                            )))
                        }
                        // A dead run's lock.
                        _ => {
                            let _ = fs::remove_file(lock);
                        }
                    }
                }
                Err(e) => return Err(Error::io(lock, e)),
            }
        }
        Err(Error::io(
            lock,
            std::io::Error::other("cannot take the lock"),
        ))
    }

    /// The folder to write every output into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Puts the outputs in place of the target folder (the old one, if
    /// any, is removed) and releases the lock.
    pub fn commit(mut self) -> Result<()> {
        let old = self.staging.with_extension("old");
        if self.target.exists() {
            fs::rename(&self.target, &old).map_err(|e| Error::io(&self.target, e))?;
        }
        fs::rename(&self.staging, &self.target).map_err(|e| Error::io(&self.target, e))?;
        let _ = fs::remove_dir_all(&old);
        self.committed = true;
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
        let _ = fs::remove_file(&self.lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_replace_the_folder_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        // A first run.
        let set = OutputSet::begin(&out).unwrap();
        fs::write(set.path().join("schedule.csv"), "a").unwrap();
        fs::write(set.path().join("extra.txt"), "old").unwrap();
        set.commit().unwrap();
        assert_eq!(fs::read_to_string(out.join("schedule.csv")).unwrap(), "a");
        // A second run that fails half-way leaves the first one whole.
        let set = OutputSet::begin(&out).unwrap();
        fs::write(set.path().join("schedule.csv"), "b").unwrap();
        drop(set);
        assert_eq!(fs::read_to_string(out.join("schedule.csv")).unwrap(), "a");
        // One that finishes replaces every file: nothing of the old is left.
        let set = OutputSet::begin(&out).unwrap();
        fs::write(set.path().join("schedule.csv"), "c").unwrap();
        // While it writes, another run is refused.
        let e = OutputSet::begin(&out).unwrap_err().to_string();
        assert!(e.contains("another run"), "{e}");
        set.commit().unwrap();
        assert_eq!(fs::read_to_string(out.join("schedule.csv")).unwrap(), "c");
        assert!(!out.join("extra.txt").exists());
        // No temporaries or lock left beside it.
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["run".to_string()]);
    }

    #[test]
    fn dead_runs_temporaries_go_and_other_folders_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        // A run killed mid-way (no such process) left its staging and lock.
        let dead = u32::MAX - 1;
        fs::create_dir(dir.path().join(format!(".run.{dead}.tmp"))).unwrap();
        fs::write(dir.path().join(".run.lock"), dead.to_string()).unwrap();
        let set = OutputSet::begin(&out).unwrap();
        assert!(!dir.path().join(format!(".run.{dead}.tmp")).exists());
        drop(set);
        // A folder of other files is never replaced.
        let mine = dir.path().join("notes");
        fs::create_dir(&mine).unwrap();
        fs::write(mine.join("todo.txt"), "x").unwrap();
        let e = OutputSet::begin(&mine).unwrap_err().to_string();
        assert!(e.contains("holds no run's outputs"), "{e}");
        assert!(OutputSet::begin(Path::new(".")).is_err());
    }
}
