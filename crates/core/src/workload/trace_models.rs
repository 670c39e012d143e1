//! `trace_models`: every model name found in the trace is served with a
//! template (an architecture or synthetic numbers, batch, SLO), optionally
//! in a few size classes assigned by popularity rank or by a seeded hash of
//! the name, instead of one `models` entry per name.
//!
//! ```yaml
//! trace_models:
//!   rule: rank            # rank (most requested first) | hash (seeded hash of the name)
//!   classes:              # in order; `share`: fraction of the names in the class
//!     - { share: 0.2, arch: opt-6.7b, max_batch: 4, slo_ms: 2000 }
//!     - { share: 0.8, arch: opt-1.3b, max_batch: 8, slo_ms: 500 }
//! ```

use super::raw::{validate_models_at, ProcessName, RawArrivals, RawModel, RawParallel};
use super::*;
use crate::error::{Error, InputError};
use crate::yaml::Ctx;
use serde_saphyr::Spanned;
use std::collections::{HashMap, HashSet};

/// How the names of a trace are put into size classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceModelRule {
    /// By popularity: names sorted by request count (most first, ties by
    /// first appearance); the first `share[0]` of them go to class 0, the
    /// next `share[1]` to class 1, and so on.
    Rank,
    /// By a seeded 64-bit hash of the name ([`name_hash`]): a name whose
    /// hash, as a fraction of 2^64, falls in class `k`'s slice of the
    /// cumulative shares goes to class `k`. Stable when names come and go.
    Hash,
}

/// The `trace_models` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraceModels {
    rule: Option<TraceModelRule>,
    hash_seed: Option<u64>,
    classes: Spanned<Vec<Spanned<RawClass>>>,
}

/// One size class: a model entry without `name` or `copies`, plus `share`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    share: Option<Spanned<f64>>,
    arch: Option<Spanned<String>>,
    parallel: Option<RawParallel>,
    max_batch: Option<Spanned<u64>>,
    micro_batch: Option<Spanned<u64>>,
    slo_ms: Option<Spanned<f64>>,
    seq_len: Option<Spanned<u64>>,
    layers: Option<Spanned<u64>>,
    layer_mb: Option<Spanned<f64>>,
    layer_ms: Option<Spanned<f64>>,
}

/// A seeded FNV-1a hash of `name`, finished with SplitMix64's mixer: the
/// same on every machine and every run.
pub fn name_hash(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The class of each name (`names[i]` with `counts[i]` requests, in order
/// of first appearance) under `rule`, for normalised `shares`.
pub fn assign_classes(
    rule: TraceModelRule,
    names: &[String],
    counts: &[u64],
    shares: &[f64],
    seed: u64,
) -> Vec<usize> {
    let mut cum = Vec::with_capacity(shares.len());
    let mut acc = 0.0;
    for s in shares {
        acc += s;
        cum.push(acc);
    }
    let last = shares.len().saturating_sub(1);
    match rule {
        TraceModelRule::Rank => {
            let n = names.len();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
            let ends: Vec<usize> = cum
                .iter()
                .map(|c| ((c * n as f64).round() as usize).min(n))
                .collect();
            let mut class = vec![last; n];
            for (rank, &i) in order.iter().enumerate() {
                class[i] = ends.iter().position(|&e| rank < e).unwrap_or(last);
            }
            class
        }
        TraceModelRule::Hash => names
            .iter()
            .map(|name| {
                let u = (name_hash(seed, name) >> 11) as f64 / (1u64 << 53) as f64;
                cum.iter().position(|&c| u < c).unwrap_or(last)
            })
            .collect(),
    }
}

/// Adds a model for every name of the trace of `arrivals` that `models`
/// does not already hold, built from the class the rule assigns it.
pub(super) fn expand(
    ctx: &Ctx,
    raw: &Spanned<RawTraceModels>,
    arrivals: &Spanned<RawArrivals>,
    base: &Path,
    cluster: &Cluster,
    seed: u64,
    models: &mut Vec<ModelSpec>,
) -> Result<()> {
    let tm = &raw.value;
    let a = &arrivals.value;
    let needs =
        "`trace_models` serves the model names of a trace: it needs `arrivals.process: trace`";
    if !matches!(a.process.value, ProcessName::Trace) {
        return Err(ctx.err(&raw.referenced, "trace_models", needs).into());
    }
    let format = a.format.unwrap_or(TraceFormat::Csv);
    let column = match format {
        TraceFormat::Csv => "model",
        TraceFormat::Burstgpt => "Model",
        other => {
            return Err(ctx
                .err(
                    &raw.referenced,
                    "trace_models",
                    format!(
                        "trace format {other:?} names no models; `trace_models` needs format `csv` or `burstgpt`"
                    ),
                )
                .into())
        }
    };
    let Some(p) = &a.path else {
        return Err(ctx
            .err(
                &arrivals.referenced,
                "arrivals.path",
                "missing: `trace` needs `path` (a trace file)",
            )
            .into());
    };
    let mut path = PathBuf::from(&p.value);
    if path.is_relative() && !path.exists() {
        path = base.join(&path);
    }
    if !path.exists() {
        return Err(ctx
            .err(
                &p.referenced,
                "arrivals.path",
                format!("trace file `{}` not found", p.value),
            )
            .into());
    }
    let (names, counts) = read_names(&path, column)?;

    // The classes, validated as models (errors name trace_models.classes[k]).
    let classes = &tm.classes;
    let as_models: Vec<Spanned<RawModel>> = classes
        .value
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let v = &c.value;
            let name = Spanned::new(format!("trace-class-{k}"), c.referenced, c.defined);
            let model = RawModel {
                arch: v.arch.clone(),
                name: Some(name),
                copies: None,
                parallel: v.parallel.clone(),
                max_batch: v.max_batch.clone(),
                micro_batch: v.micro_batch.clone(),
                slo_ms: v.slo_ms.clone(),
                seq_len: v.seq_len.clone(),
                layers: v.layers.clone(),
                layer_mb: v.layer_mb.clone(),
                layer_ms: v.layer_ms.clone(),
                dtype: None,
            };
            Spanned::new(model, c.referenced, c.defined)
        })
        .collect();
    let list = Spanned::new(as_models, classes.referenced, classes.defined);
    // Trace classes hold fp16 weights (no `dtype` field): their weight
    // types are all the default.
    let mut class_dtypes = Vec::new();
    let templates = validate_models_at(
        ctx,
        &list,
        cluster,
        "trace_models.classes",
        u64::MAX,
        &mut class_dtypes,
    )?;
    let mut shares = Vec::with_capacity(templates.len());
    for (k, c) in classes.value.iter().enumerate() {
        let field = format!("trace_models.classes[{k}].share");
        shares.push(match &c.value.share {
            Some(s) => ctx.positive(s, &field, "fraction of the trace's names")?,
            None if classes.value.len() == 1 => 1.0,
            None => {
                return Err(ctx
                    .err(&c.referenced, field, "missing: with several classes each needs `share` (the fraction of the trace's names in it)")
                    .into())
            }
        });
    }
    let total: f64 = shares.iter().sum();
    shares.iter_mut().for_each(|s| *s /= total);
    let rule = tm.rule.unwrap_or(TraceModelRule::Rank);
    let class = assign_classes(rule, &names, &counts, &shares, tm.hash_seed.unwrap_or(seed));
    let taken: HashSet<String> = models.iter().map(|m| m.name.clone()).collect();
    for (name, k) in names.into_iter().zip(class) {
        if taken.contains(&name) {
            continue;
        }
        models.push(ModelSpec {
            name,
            ..templates[k].clone()
        });
    }
    Ok(())
}

/// Distinct values of `column` in the trace at `path`, in order of first
/// appearance, with their counts. A name that cannot be one CSV field of
/// our outputs is an error naming its line.
fn read_names(path: &Path, column: &str) -> Result<(Vec<String>, Vec<u64>)> {
    let file = std::fs::File::open(path).map_err(|e| Error::unreadable(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let bad = |line: u64, msg: String| Error::Input(InputError::new(path, Some(line), column, msg));
    let headers = rdr
        .headers()
        .map_err(|e| bad(1, format!("cannot read the header: {e}")))?
        .clone();
    let c = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case(column))
        .ok_or_else(|| {
            bad(
                1,
                format!("missing column `{column}`: `trace_models` reads model names from it"),
            )
        })?;
    let mut index: HashMap<String, usize> = HashMap::new();
    let (mut names, mut counts) = (Vec::new(), Vec::new());
    let mut rec = csv::StringRecord::new();
    loop {
        let more = rdr
            .read_record(&mut rec)
            .map_err(|e| bad(e.position().map(|p| p.line()).unwrap_or(0), e.to_string()))?;
        if !more {
            break;
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let name = rec.get(c).ok_or_else(|| {
            bad(
                line,
                format!(
                    "the row has {} columns, fewer than the header's {}",
                    rec.len(),
                    headers.len()
                ),
            )
        })?;
        if let Some(&i) = index.get(name) {
            counts[i] += 1;
            continue;
        }
        if name.is_empty() || name.contains(|ch: char| ch == ',' || ch == '"' || ch.is_control()) {
            return Err(bad(line, format!("model name {name:?} cannot be written as one CSV field: use no commas, quotes or line breaks")));
        }
        index.insert(name.to_string(), names.len());
        names.push(name.to_string());
        counts.push(1);
    }
    if names.is_empty() {
        return Err(bad(1, "the trace has no rows, so it names no model".into()));
    }
    Ok((names, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn rank_puts_the_most_requested_in_the_first_class() {
        let counts = [5, 50, 1, 20, 20];
        let c = assign_classes(TraceModelRule::Rank, &names(5), &counts, &[0.4, 0.6], 0);
        // Ranked: m1 (50), m3 (20), m4 (20, later), m0, m2: two in class 0.
        assert_eq!(c, vec![1, 0, 1, 0, 1]);
    }

    #[test]
    fn hash_classes_follow_shares_and_the_seed() {
        let n = names(10_000);
        let counts = vec![1; n.len()];
        let c = assign_classes(TraceModelRule::Hash, &n, &counts, &[0.25, 0.75], 3);
        let small = c.iter().filter(|&&k| k == 0).count() as f64 / n.len() as f64;
        assert!((small - 0.25).abs() < 0.02, "{small}");
        assert_eq!(
            c,
            assign_classes(TraceModelRule::Hash, &n, &counts, &[0.25, 0.75], 3)
        );
        assert_ne!(
            c,
            assign_classes(TraceModelRule::Hash, &n, &counts, &[0.25, 0.75], 4)
        );
        assert_eq!(name_hash(1, "gpt-4"), name_hash(1, "gpt-4"));
    }
}
