//! Mutation fuzzing of every input parser: workload YAML (and the schedule
//! it generates, under a request limit), schedule CSV, each trace format
//! and profile YAML. Inputs are files of `tests/fuzz_corpus/` mutated by
//! proptest-chosen edits (tokens inserted, bytes deleted, numbers replaced,
//! lines doubled, files cut short). The property: a parser returns, never
//! panics, and an error names the file it read.
//!
//! CI runs proptest's default number of cases; `scripts/fuzz.sh` runs many
//! more (`PROPTEST_CASES`) for a bounded time and records what it found in
//! `results/fuzz/README.md`.

use proptest::prelude::*;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use switchyard_core::workload::TraceFormat;
use switchyard_core::{arrivals, hardware, traces, Schedule, Workload};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz_corpus");

/// Tokens the mutator inserts or puts in place of a number.
const TOKENS: &[&str] = &[
    "1e308",
    "-1",
    "0",
    "nan",
    "inf",
    "1e-300",
    "18446744073709551616",
    "",
    ",",
    "\n",
    ":",
    "{",
    "}",
    "[",
    "]",
    "- ",
    "\"",
    "'",
    "#",
    "&a",
    "*a",
    "!!str",
    "~",
    "null",
    "true",
    "é",
    "\u{0}",
    "poisson",
    "gamma",
    "on_off",
    "trace",
    "copies: ",
    "tp: ",
    "  ",
    "a,b",
];

/// One edit: where (a fraction of the length), what, and which token.
type Edit = (f64, u8, usize);

fn seed(prefix: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seed starting with {prefix}");
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for &(at, op, tok) in edits {
        let i = ((at * bytes.len() as f64) as usize).min(bytes.len());
        let token = TOKENS[tok % TOKENS.len()].as_bytes();
        match op % 5 {
            0 => {
                bytes.splice(i..i, token.iter().copied());
            }
            1 => {
                let end = (i + 1 + tok % 8).min(bytes.len());
                bytes.drain(i..end);
            }
            2 => {
                // Replace the next run of digits (a number) with the token.
                if let Some(s) = (i..bytes.len()).find(|&j| bytes[j].is_ascii_digit()) {
                    let e = (s..bytes.len())
                        .find(|&j| !(bytes[j].is_ascii_digit() || bytes[j] == b'.'))
                        .unwrap_or(bytes.len());
                    bytes.splice(s..e, token.iter().copied());
                }
            }
            3 => {
                // Double the line holding `i`.
                let s = bytes[..i]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let e = (i..bytes.len())
                    .find(|&j| bytes[j] == b'\n')
                    .map_or(bytes.len(), |p| p + 1);
                let line = bytes[s..e].to_vec();
                bytes.splice(e..e, line);
            }
            _ => bytes.truncate(i),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((0.0..1.0f64, any::<u8>(), any::<usize>()), 1..6)
}

/// Writes `bytes` to `name` in a fresh folder; the folder lives as long as
/// the returned guard.
fn file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn names_file(e: &dyn std::fmt::Display, path: &Path) -> bool {
    e.to_string()
        .contains(&*path.file_name().unwrap().to_string_lossy())
}

proptest! {
    #[test]
    fn workloads_parse_or_fail_cleanly(pick in any::<usize>(), edits in edits()) {
        let seeds = seed("workload_");
        let bytes = mutate(seeds[pick % seeds.len()].clone(), &edits);
        let (_dir, path) = file("fuzz.yaml", &bytes);
        match Workload::load(&path) {
            Ok(w) => {
                // Generating stays bounded; any error is about this file.
                if let Err(e) = arrivals::generate_capped(&w, 100_000) {
                    let s = e.to_string();
                    prop_assert!(s.contains("fuzz.yaml") || s.contains(".csv"), "{s}");
                }
            }
            Err(e) => prop_assert!(names_file(&e, &path), "{e}"),
        }
    }

    #[test]
    fn schedules_parse_or_fail_cleanly(edits in edits()) {
        let bytes = mutate(seed("schedule_")[0].clone(), &edits);
        let (_dir, path) = file("schedule.csv", &bytes);
        if let Err(e) = Schedule::read_csv(&path, &["a".into(), "b".into()]) {
            prop_assert!(names_file(&e, &path), "{e}");
        }
    }

    #[test]
    fn traces_parse_or_fail_cleanly(pick in 0usize..3, edits in edits()) {
        let (prefix, format) = [
            ("trace_short_row", TraceFormat::Csv),
            ("trace_azure_llm", TraceFormat::AzureLlm),
            ("trace_azure_functions", TraceFormat::AzureFunctions),
        ][pick];
        let bytes = mutate(seed(prefix)[0].clone(), &edits);
        let (_dir, path) = file("trace.csv", &bytes);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let models = ["a".to_string(), "b".to_string()];
        if let Err(e) = traces::load(&path, format, 1.0, &models, &[0.5, 0.5], &mut rng, 100_000) {
            prop_assert!(names_file(&e, &path), "{e}");
        }
    }

    #[test]
    fn profiles_parse_or_fail_cleanly(edits in edits()) {
        let bytes = mutate(seed("profile_")[0].clone(), &edits);
        let text = String::from_utf8_lossy(&bytes);
        let path = Path::new("profile.yaml");
        if let Err(e) = hardware::parse(path, &text) {
            prop_assert!(names_file(&e, path), "{e}");
        }
    }
}
