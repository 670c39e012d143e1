//! Sweeps past one machine: `sim sweep --shard I/N` runs every `N`th job of
//! the grid starting at job `I` (jobs are (point, seed) pairs in grid order,
//! so slow and fast points spread over the shards) and writes its rows to
//! `shard-I-of-N.json`; `sim sweep-merge` reads the `N` files back, checks
//! that they are the slices of one sweep, each once, and rebuilds the rows
//! of the unsharded run in grid order, so its `sweep.csv`, `sweep.md` and
//! figures are the same bytes.
//!
//! A shard file keeps every float as its IEEE-754 bits (`*_bits`), so the
//! merge sees exactly the values the unsharded run would have had.

use crate::sweep::{describe, Point, SweepRow};
use crate::{SimResult, SimRun};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use switchyard_core::stats::Summary;
use switchyard_core::workload::{PolicyName, PolicySpec};
use switchyard_core::{Error, InputError};

/// Format tag of a shard file.
pub const FORMAT: &str = "switchyard-sweep-shard-1";

/// One slice of a sweep: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 0.
    pub index: u64,
    /// How many slices.
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (`0 <= I < N`).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}`: expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The jobs of this slice among `jobs` (every `count`th from `index`).
    pub fn jobs(&self, jobs: usize) -> Vec<usize> {
        (self.index as usize..jobs)
            .step_by(self.count as usize)
            .collect()
    }

    /// The file name of this slice's rows: `shard-I-of-N.json`.
    pub fn file_name(&self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }
}

/// What identifies a sweep: every shard of one sweep carries the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepHeader {
    /// Workload name (figure titles).
    pub workload: String,
    /// Seeds per point, in order.
    pub seeds: Vec<u64>,
    /// Every point of the grid in words ([`describe`]), in grid order.
    pub points: Vec<String>,
    /// `--x` as given.
    pub x: Option<String>,
    /// `--log-x`.
    pub log_x: bool,
}

/// A shard file: the sweep, which slice, and its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// [`FORMAT`].
    pub format: String,
    /// The sweep this is a slice of.
    pub sweep: SweepHeader,
    /// This slice.
    pub shard: u64,
    /// Slices in all.
    pub shards: u64,
    /// The slice's rows, by job.
    pub rows: Vec<ShardRow>,
}

/// One job's row, floats as bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRow {
    /// Job index: point `job / seeds`, seed `job % seeds`.
    pub job: u64,
    /// Seed of the run.
    pub seed: u64,
    /// The point's variables.
    pub rate_scale_bits: u64,
    /// A trace's time scale, if any.
    pub time_scale_bits: Option<u64>,
    /// Gamma CV, if any.
    pub cv_bits: Option<u64>,
    /// GPUs.
    pub gpus: u32,
    /// GiB per GPU.
    pub gpu_memory_gib_bits: u64,
    /// System name.
    pub system: String,
    /// Eviction name.
    pub eviction: String,
    /// Grouping name.
    pub grouping: String,
    /// `policy.max_loaded`.
    pub max_loaded: Option<u32>,
    /// `policy.offload` (absent when off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub offload: bool,
    /// Requests served.
    pub requests: u64,
    /// mean, p50, p90, p99, max (seconds) and SLO attainment.
    pub latency_bits: [u64; 6],
    /// Stage loads.
    pub loads: u64,
    /// Bytes loaded.
    pub bytes_loaded: u64,
    /// Virtual time at the end.
    pub simulated_s_bits: u64,
}

impl ShardRow {
    /// Job `job`'s row.
    pub fn of(job: usize, r: &SweepRow) -> ShardRow {
        let (p, s) = (&r.point, &r.result.summary);
        ShardRow {
            job: job as u64,
            seed: r.seed,
            rate_scale_bits: p.rate_scale.to_bits(),
            time_scale_bits: p.time_scale.map(f64::to_bits),
            cv_bits: p.cv.map(f64::to_bits),
            gpus: p.gpus,
            gpu_memory_gib_bits: p.gpu_memory_gib.to_bits(),
            system: p.policy.system.name().to_string(),
            eviction: p.policy.eviction.name().to_string(),
            grouping: p.policy.grouping.name().to_string(),
            max_loaded: p.policy.max_loaded,
            offload: p.policy.offload,
            requests: s.requests,
            latency_bits: [
                s.mean_s,
                s.p50_s,
                s.p90_s,
                s.p99_s,
                s.max_s,
                s.slo_attainment,
            ]
            .map(f64::to_bits),
            loads: r.result.loads,
            bytes_loaded: r.result.bytes_loaded,
            simulated_s_bits: r.result.run.simulated_s.to_bits(),
        }
    }

    /// The row back (the fields `sweep.csv`, `sweep.md` and the figures read).
    fn row(&self, header: &SweepHeader) -> Result<SweepRow, String> {
        let name = |what: &str, s: &str| format!("unknown {what} `{s}`");
        let policy = PolicySpec {
            system: PolicyName::from_name(&self.system)
                .map_err(|_| name("system", &self.system))?,
            eviction: PolicyName::from_name(&self.eviction)
                .map_err(|_| name("eviction", &self.eviction))?,
            grouping: PolicyName::from_name(&self.grouping)
                .map_err(|_| name("grouping", &self.grouping))?,
            max_loaded: self.max_loaded,
            offload: self.offload,
        };
        let l = self.latency_bits.map(f64::from_bits);
        let r = SweepRow {
            point: Point {
                rate_scale: f64::from_bits(self.rate_scale_bits),
                time_scale: self.time_scale_bits.map(f64::from_bits),
                cv: self.cv_bits.map(f64::from_bits),
                gpus: self.gpus,
                gpu_memory_gib: f64::from_bits(self.gpu_memory_gib_bits),
                policy,
            },
            seed: self.seed,
            result: SimResult {
                workload: header.workload.clone(),
                system: self.system.clone(),
                eviction: self.eviction.clone(),
                grouping: self.grouping.clone(),
                summary: Summary {
                    requests: self.requests,
                    mean_s: l[0],
                    p50_s: l[1],
                    p90_s: l[2],
                    p99_s: l[3],
                    max_s: l[4],
                    slo_attainment: l[5],
                },
                loads: self.loads,
                bytes_loaded: self.bytes_loaded,
                run: SimRun {
                    simulated_s: f64::from_bits(self.simulated_s_bits),
                    ..SimRun::default()
                },
                ..SimResult::default()
            },
        };
        let seeds = header.seeds.len().max(1) as u64;
        let expected = header.points.get((self.job / seeds) as usize);
        if expected != Some(&describe(&r.point)) {
            return Err(format!(
                "job {} is point `{}`, but the sweep's job {} is `{}`",
                self.job,
                describe(&r.point),
                self.job,
                expected.map_or("none", String::as_str)
            ));
        }
        if header.seeds[(self.job % seeds) as usize] != self.seed {
            return Err(format!(
                "job {} has seed {}, not the sweep's",
                self.job, self.seed
            ));
        }
        Ok(r)
    }
}

/// Writes one shard's rows (`rows[k]` is job `jobs[k]`) to `path`, atomically.
pub fn write(
    path: &Path,
    header: &SweepHeader,
    shard: Shard,
    jobs: &[usize],
    rows: &[SweepRow],
) -> Result<(), Error> {
    let file = ShardFile {
        format: FORMAT.to_string(),
        sweep: header.clone(),
        shard: shard.index,
        shards: shard.count,
        rows: jobs
            .iter()
            .zip(rows)
            .map(|(&j, r)| ShardRow::of(j, r))
            .collect(),
    };
    switchyard_core::summary::write(path, &file)
}

/// Reads a shard file; errors name the file (and the line of bad JSON).
pub fn read(path: &Path) -> Result<ShardFile, Error> {
    let text =
        switchyard_core::line_cap::read_text(path).map_err(|e| Error::unreadable(path, e))?;
    let file: ShardFile = serde_json::from_str(&text).map_err(|e| {
        InputError::new(
            path,
            Some(e.line() as u64),
            "",
            format!("not a sweep shard file: {e}"),
        )
    })?;
    if file.format != FORMAT {
        return Err(InputError::new(path, None, "format", format!("expected `{FORMAT}`")).into());
    }
    Ok(file)
}

/// The shard files named by `inputs`: files as given, folders for every
/// `shard-*-of-*.json` in them (sorted by name).
pub fn shard_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::unreadable(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with("shard-") && n.contains("-of-") && n.ends_with(".json")
                    })
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(InputError::new(p, None, "", "holds no shard-I-of-N.json file").into());
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Joins the shards of one sweep: checks that they share its header and
/// count, that every slice is there once and holds exactly its jobs, and
/// returns the header and the rows in grid order.
pub fn merge(files: &[(PathBuf, ShardFile)]) -> Result<(SweepHeader, Vec<SweepRow>), Error> {
    let bad = |p: &Path, field: &str, msg: String| -> Error {
        InputError::new(p, None, field, msg).into()
    };
    let Some((first_path, first)) = files.first() else {
        return Err(bad(Path::new("<flags>"), "", "no shard files given".into()));
    };
    let n = first.shards;
    let mut seen: Vec<Option<&Path>> = vec![None; n as usize];
    for (p, f) in files {
        if f.sweep != first.sweep || f.shards != n {
            return Err(bad(
                p,
                "sweep",
                format!(
                    "a slice of another sweep than {} (workload, grid, seeds, --x, --log-x \
                     and shard count must all match)",
                    first_path.display()
                ),
            ));
        }
        match seen.get_mut(f.shard as usize) {
            Some(Some(other)) => {
                return Err(bad(
                    p,
                    "shard",
                    format!(
                        "shard {}/{n} given twice (also {})",
                        f.shard,
                        other.display()
                    ),
                ))
            }
            Some(slot) => *slot = Some(p),
            None => return Err(bad(p, "shard", format!("shard {} of {n}?", f.shard))),
        }
    }
    if let Some(i) = seen.iter().position(Option::is_none) {
        return Err(bad(
            first_path,
            "shard",
            format!(
                "shard {i}/{n} is missing: {n} shards are needed, {} given",
                files.len()
            ),
        ));
    }
    let header = &first.sweep;
    let jobs = header.points.len() * header.seeds.len();
    let mut rows: Vec<Option<SweepRow>> = vec![None; jobs];
    for (p, f) in files {
        let want = Shard {
            index: f.shard,
            count: n,
        }
        .jobs(jobs);
        let got: Vec<usize> = f.rows.iter().map(|r| r.job as usize).collect();
        if got != want {
            return Err(bad(
                p,
                "rows",
                format!(
                    "holds jobs {got:?}, but shard {}/{n} of {jobs} jobs is {want:?}",
                    f.shard
                ),
            ));
        }
        for r in &f.rows {
            rows[r.job as usize] = Some(r.row(header).map_err(|m| bad(p, "rows", m))?);
        }
    }
    Ok((header.clone(), rows.into_iter().flatten().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_the_jobs() {
        assert_eq!(Shard::parse("2/5"), Ok(Shard { index: 2, count: 5 }));
        for bad in ["5/5", "1", "a/2", "1/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let all: Vec<Vec<usize>> = (0..3)
            .map(|i| Shard { index: i, count: 3 }.jobs(7))
            .collect();
        assert_eq!(all, vec![vec![0, 3, 6], vec![1, 4], vec![2, 5]]);
        assert!(Shard { index: 4, count: 5 }.jobs(3).is_empty());
    }
}
