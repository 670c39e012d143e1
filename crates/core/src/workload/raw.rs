//! The workload file as written (with each value's location), and its
//! validation into [`super::Workload`].

use super::*;
use crate::arch;
use crate::error::InputError;
use crate::model::Dtype;
use crate::yaml::Ctx;
use serde_saphyr::Spanned;

/// Largest gamma coefficient of variation accepted.
pub const MAX_CV: f64 = 100.0;
/// Smallest gamma coefficient of variation accepted (near-deterministic).
pub const MIN_CV: f64 = 1e-3;
/// Largest arrival rate accepted, requests per second.
pub const MAX_RATE: f64 = 1e9;
/// Shortest mean on or off period accepted, seconds.
pub const MIN_PERIOD_S: f64 = 1e-6;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub(super) name: String,
    pub(super) seed: u64,
    pub(super) duration_s: Spanned<f64>,
    pub(super) cluster: RawCluster,
    pub(super) models: Option<Spanned<Vec<Spanned<RawModel>>>>,
    pub(super) trace_models: Option<Spanned<super::trace_models::RawTraceModels>>,
    pub(super) arrivals: Spanned<RawArrivals>,
    pub(super) policy: RawPolicy,
    #[serde(default)]
    pub(super) background: Option<Spanned<Vec<Spanned<super::background::RawBackground>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) hardware: Spanned<String>,
    pub(super) gpus: Spanned<u64>,
    pub(super) gpu_memory_gib: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParallel {
    #[serde(default)]
    pub(super) tp: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) pp: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub(super) arch: Option<Spanned<String>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) copies: Option<Spanned<u64>>,
    pub(super) parallel: Option<RawParallel>,
    pub(super) max_batch: Option<Spanned<u64>>,
    pub(super) micro_batch: Option<Spanned<u64>>,
    pub(super) slo_ms: Option<Spanned<f64>>,
    pub(super) seq_len: Option<Spanned<u64>>,
    pub(super) layers: Option<Spanned<u64>>,
    pub(super) layer_mb: Option<Spanned<f64>>,
    pub(super) layer_ms: Option<Spanned<f64>>,
    /// Weight type (`fp16`, `fp32`, `bf16`); default fp16.
    #[serde(default)]
    pub(super) dtype: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSkew {
    pub(super) zipf: Option<Spanned<f64>>,
    pub(super) weights: Option<Spanned<Vec<f64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ProcessName {
    Poisson,
    Gamma,
    RoundRobin,
    OnOff,
    Trace,
    ClosedLoop,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArrivals {
    pub(super) process: Spanned<ProcessName>,
    pub(super) rate: Option<Spanned<f64>>,
    pub(super) cv: Option<Spanned<f64>>,
    pub(super) skew: Option<Spanned<RawSkew>>,
    #[serde(default)]
    pub(super) per_model: bool,
    pub(super) rate_on: Option<Spanned<f64>>,
    pub(super) rate_off: Option<Spanned<f64>>,
    pub(super) mean_on_s: Option<Spanned<f64>>,
    pub(super) mean_off_s: Option<Spanned<f64>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) format: Option<TraceFormat>,
    pub(super) time_scale: Option<Spanned<f64>>,
    /// `closed_loop`: clients, think time, scheduling cycle ([`super::closed_loop`]).
    pub(super) clients: Option<Spanned<u64>>,
    pub(super) think_ms: Option<Spanned<f64>>,
    pub(super) cycle_s: Option<Spanned<f64>>,
    pub(super) cycle_task: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) system: System,
    #[serde(default = "default_eviction")]
    pub(super) eviction: Eviction,
    #[serde(default = "default_grouping")]
    pub(super) grouping: Grouping,
    /// `direct` (default) or `multipath` ([`super::loading`]).
    pub(super) loading: Option<Spanned<super::Loading>>,
    /// Helper GPUs per load (`multipath` only; default 1).
    pub(super) multipath_helpers: Option<Spanned<u64>>,
    /// Staging memory reserved per GPU, MiB (`multipath` only).
    pub(super) multipath_staging_mib: Option<Spanned<f64>>,
    /// `helpers` (default) or `one_link`: what copy time the grouping DP
    /// plans a multi-path load's groups with (`multipath` only).
    pub(super) multipath_grouping: Option<Spanned<super::MultipathGrouping>>,
    /// Layers the grouping DP picks run from mapped pinned host memory
    /// ([`super::loading`]; default false).
    #[serde(default)]
    pub(super) direct_host: Option<Spanned<bool>>,
    /// Most models loaded on one GPU at once (Computron's `max_loaded`).
    #[serde(default)]
    pub(super) max_loaded: Option<Spanned<u64>>,
    /// Evictions copy the weights back to host memory (default false).
    #[serde(default)]
    pub(super) offload: Option<Spanned<bool>>,
    /// Models in GPU memory when the clock starts (a warm start).
    #[serde(default)]
    pub(super) preload: Option<Spanned<Vec<String>>>,
}

fn default_eviction() -> Eviction {
    Eviction::Lru
}

fn default_grouping() -> Grouping {
    Grouping::Optimal
}

pub(super) fn validate_models(
    ctx: &Ctx,
    raw: &Spanned<Vec<Spanned<RawModel>>>,
    cluster: &Cluster,
    max_models: u64,
    dtypes: &mut Vec<Dtype>,
) -> Result<Vec<ModelSpec>, InputError> {
    validate_models_at(ctx, raw, cluster, "models", max_models, dtypes)
}

/// [`validate_models`] for a list found at key path `at` (errors name
/// `{at}[i].field`). Each model's weight type is pushed to `dtypes` (one
/// per model, copies expanded); its shape's bytes are already scaled to it.
pub(super) fn validate_models_at(
    ctx: &Ctx,
    raw: &Spanned<Vec<Spanned<RawModel>>>,
    cluster: &Cluster,
    at: &str,
    max_models: u64,
    dtypes: &mut Vec<Dtype>,
) -> Result<Vec<ModelSpec>, InputError> {
    if raw.value.is_empty() {
        return Err(ctx.err(&raw.referenced, at, "expected at least one model"));
    }
    let mut out: Vec<ModelSpec> = Vec::new();
    // Names taken so far: a hash set, so parsing stays linear in models.
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (i, entry) in raw.value.iter().enumerate() {
        let m = &entry.value;
        let f = |name: &str| format!("{at}[{i}].{name}");
        let (shape, base_name) = match (&m.arch, &m.layers) {
            (Some(a), None) => {
                let mut shape = arch::builtin(&a.value).ok_or_else(|| {
                    ctx.err(
                        &a.referenced,
                        f("arch"),
                        format!("unknown architecture `{}`; expected one of: {}", a.value, arch::NAMES.join(", ")),
                    )
                })?;
                if let Some(s) = &m.seq_len {
                    shape.items_per_request = ctx.at_least_one(s, &f("seq_len"))?;
                }
                let name = m.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| a.value.clone());
                (shape, name)
            }
            (None, Some(layers)) => {
                let name = m.name.as_ref().ok_or_else(|| {
                    ctx.err(&entry.referenced, f("name"), "a synthetic model (with `layers`) needs a `name`")
                })?;
                let n = ctx.at_least_one(layers, &f("layers"))?;
                let mb = m
                    .layer_mb
                    .as_ref()
                    .ok_or_else(|| ctx.err(&entry.referenced, f("layer_mb"), "a synthetic model needs `layer_mb` (MB of fp16 weights per layer)"))?;
                let ms = m
                    .layer_ms
                    .as_ref()
                    .ok_or_else(|| ctx.err(&entry.referenced, f("layer_ms"), "a synthetic model needs `layer_ms` (ms per layer at batch 1)"))?;
                let bytes = (ctx.positive(mb, &f("layer_mb"), "MB, 1e6 bytes")? * 1e6) as u64;
                let secs = ctx.positive(ms, &f("layer_ms"), "milliseconds")? * 1e-3;
                (ModelShape::synthetic(&name.value, n as usize, bytes, secs), name.value.clone())
            }
            (Some(a), Some(_)) => {
                return Err(ctx.err(&a.referenced, f("arch"), "give either `arch` (built-in) or `layers`/`layer_mb`/`layer_ms` (synthetic), not both"))
            }
            (None, None) => {
                return Err(ctx.err(&entry.referenced, f("arch"), "expected `arch` (a built-in architecture) or `layers` (a synthetic model)"))
            }
        };
        let dtype = match &m.dtype {
            Some(d) => {
                Dtype::from_name(&d.value).map_err(|e| ctx.err(&d.referenced, f("dtype"), e))?
            }
            None => Dtype::Fp16,
        };
        let shape = shape.with_dtype(dtype);
        if let Some(n) = &m.name {
            let bad = |c: char| c == ',' || c == '"' || c.is_control();
            if n.value.is_empty() || n.value.trim() != n.value || n.value.contains(bad) {
                return Err(ctx.err(
                    &n.referenced,
                    f("name"),
                    format!(
                        "model name {:?} cannot be written as one CSV field: use no commas, quotes, line breaks or surrounding spaces",
                        n.value
                    ),
                ));
            }
        }
        let copies = match &m.copies {
            Some(c) => {
                let n = ctx.at_least_one(c, &f("copies"))?;
                if out.len() as u64 + n > max_models {
                    return Err(ctx.err(
                        &c.referenced,
                        f("copies"),
                        super::too_many_models(max_models),
                    ));
                }
                n
            }
            None if out.len() as u64 >= max_models => {
                return Err(ctx.err(
                    &entry.referenced,
                    format!("{at}[{i}]"),
                    super::too_many_models(max_models),
                ));
            }
            None => 1,
        };
        let tp = match m.parallel.as_ref().and_then(|p| p.tp.as_ref()) {
            Some(v) => ctx.at_least_one(v, &f("parallel.tp"))? as u32,
            None => 1,
        };
        let pp = match m.parallel.as_ref().and_then(|p| p.pp.as_ref()) {
            Some(v) => ctx.at_least_one(v, &f("parallel.pp"))? as u32,
            None => 1,
        };
        let max_batch = match &m.max_batch {
            Some(v) => ctx.at_least_one(v, &f("max_batch"))? as u32,
            None => 1,
        };
        let micro_batch = match &m.micro_batch {
            Some(v) => {
                let k = ctx.at_least_one(v, &f("micro_batch"))? as u32;
                if k > max_batch {
                    return Err(ctx.err(
                        &v.referenced,
                        f("micro_batch"),
                        format!("expected at most max_batch ({max_batch}), got {k}"),
                    ));
                }
                k
            }
            None => max_batch,
        };
        let slo_s = match &m.slo_ms {
            Some(v) => Some(ctx.positive(v, &f("slo_ms"), "milliseconds")? * 1e-3),
            None => None,
        };
        let parallel_loc = m
            .parallel
            .as_ref()
            .and_then(|p| p.pp.as_ref().or(p.tp.as_ref()))
            .map(|v| v.referenced)
            .unwrap_or(entry.referenced);
        if tp * pp > cluster.gpus {
            return Err(ctx.err(
                &parallel_loc,
                f("parallel"),
                format!(
                    "tp * pp = {} GPUs, but cluster.gpus is {}",
                    tp * pp,
                    cluster.gpus
                ),
            ));
        }
        if pp as usize > shape.layers.len() {
            return Err(ctx.err(
                &parallel_loc,
                f("parallel.pp"),
                format!(
                    "{pp} pipeline stages, but the model has only {} layers",
                    shape.layers.len()
                ),
            ));
        }
        for c in 0..copies {
            let name = if copies == 1 {
                base_name.clone()
            } else {
                format!("{base_name}-{c}")
            };
            if !names.insert(name.clone()) {
                return Err(ctx.err(
                    &entry.referenced,
                    f("name"),
                    format!("model name `{name}` is used twice"),
                ));
            }
            let spec = ModelSpec {
                name,
                shape: shape.clone(),
                tp,
                pp,
                max_batch,
                micro_batch,
                slo_s,
            };
            let shard = spec.largest_shard_bytes();
            let usable = cluster.hardware.usable_bytes();
            if shard > usable {
                return Err(ctx.err(
                    &entry.referenced,
                    f("parallel"),
                    format!(
                        "model `{}` cannot fit: its largest shard with tp={tp}, pp={pp} is {:.2} GiB \
                         ({} weights), but a GPU of `{}` has {:.2} GiB for weights; raise tp or pp",
                        spec.name,
                        shard as f64 / crate::hardware::GIB,
                        dtype.name(),
                        cluster.hardware.name,
                        usable as f64 / crate::hardware::GIB
                    ),
                ));
            }
            out.push(spec);
            dtypes.push(dtype);
        }
    }
    Ok(out)
}

fn require<'a>(
    ctx: &Ctx,
    v: &'a Option<Spanned<f64>>,
    at: &Spanned<RawArrivals>,
    field: &str,
    why: &str,
) -> Result<&'a Spanned<f64>, InputError> {
    v.as_ref()
        .ok_or_else(|| ctx.err(&at.referenced, field, format!("missing: {why}")))
}

pub(super) fn validate_arrivals(
    ctx: &Ctx,
    raw: &Spanned<RawArrivals>,
    models: &[ModelSpec],
    base: &Path,
) -> Result<ArrivalSpec, InputError> {
    let n_models = models.len();
    let a = &raw.value;
    // Rates past this are no workload, and their gaps underflow.
    let at_most = |rate: f64, v: &Spanned<f64>, field: &str| {
        if rate <= MAX_RATE {
            Ok(rate)
        } else {
            Err(ctx.err(
                &v.referenced,
                field,
                format!("expected at most {MAX_RATE:e} requests per second, got {rate:e}"),
            ))
        }
    };
    let rate = |name: &str| -> Result<f64, InputError> {
        let v = require(
            ctx,
            &a.rate,
            raw,
            "arrivals.rate",
            &format!("`{name}` needs `rate` (requests/s)"),
        )?;
        at_most(
            ctx.positive(v, "arrivals.rate", "requests per second")?,
            v,
            "arrivals.rate",
        )
    };
    if !matches!(a.process.value, ProcessName::ClosedLoop) {
        super::closed_loop::refuse_stray(ctx, raw)?;
    }
    let process = match a.process.value {
        ProcessName::Poisson => Process::Poisson {
            rate: rate("poisson")?,
        },
        ProcessName::RoundRobin => Process::RoundRobin {
            rate: rate("round_robin")?,
        },
        ProcessName::Gamma => {
            let rate = rate("gamma")?;
            let cv = require(ctx, &a.cv, raw, "arrivals.cv", "`gamma` needs `cv`")?;
            let cv = ctx.positive(cv, "arrivals.cv", "coefficient of variation")?;
            // Past this the gamma law's shape (1/cv^2) underflows: almost
            // every gap is 0 and the schedule explodes.
            if !(MIN_CV..=MAX_CV).contains(&cv) {
                return Err(ctx.err(
                    &a.cv.as_ref().expect("required above").referenced,
                    "arrivals.cv",
                    format!("expected a coefficient of variation from {MIN_CV} to at most {MAX_CV}, got {cv}"),
                ));
            }
            Process::Gamma { rate, cv }
        }
        ProcessName::OnOff => {
            // Each period is drawn one by one: a microsecond at least.
            let period = |secs: f64, v: &Option<Spanned<f64>>, field: &str| {
                if secs >= MIN_PERIOD_S {
                    Ok(secs)
                } else {
                    Err(ctx.err(
                        &v.as_ref().expect("required above").referenced,
                        field,
                        format!(
                            "expected a mean period of at least {MIN_PERIOD_S} s, got {secs:e}"
                        ),
                    ))
                }
            };
            let get = |v: &Option<Spanned<f64>>,
                       field: &str,
                       unit: &str,
                       positive: bool|
             -> Result<f64, InputError> {
                let v = require(
                    ctx,
                    v,
                    raw,
                    field,
                    &format!("`on_off` needs `{}` ({unit})", &field[9..]),
                )?;
                if positive {
                    ctx.positive(v, field, unit)
                } else {
                    ctx.non_negative(v, field, unit)
                }
            };
            Process::OnOff {
                rate_on: at_most(
                    get(&a.rate_on, "arrivals.rate_on", "requests per second", true)?,
                    a.rate_on.as_ref().expect("required above"),
                    "arrivals.rate_on",
                )?,
                rate_off: match &a.rate_off {
                    Some(v) => at_most(
                        ctx.non_negative(v, "arrivals.rate_off", "requests per second")?,
                        v,
                        "arrivals.rate_off",
                    )?,
                    None => 0.0,
                },
                mean_on_s: period(
                    get(&a.mean_on_s, "arrivals.mean_on_s", "seconds", true)?,
                    &a.mean_on_s,
                    "arrivals.mean_on_s",
                )?,
                mean_off_s: period(
                    get(&a.mean_off_s, "arrivals.mean_off_s", "seconds", true)?,
                    &a.mean_off_s,
                    "arrivals.mean_off_s",
                )?,
            }
        }
        ProcessName::ClosedLoop => super::closed_loop::validate(ctx, raw, models)?,
        ProcessName::Trace => {
            let p = a.path.as_ref().ok_or_else(|| {
                ctx.err(
                    &raw.referenced,
                    "arrivals.path",
                    "missing: `trace` needs `path` (a trace file)",
                )
            })?;
            let mut path = PathBuf::from(&p.value);
            if path.is_relative() && !path.exists() {
                path = base.join(&path);
            }
            if !path.exists() {
                return Err(ctx.err(
                    &p.referenced,
                    "arrivals.path",
                    format!("trace file `{}` not found", p.value),
                ));
            }
            let time_scale = match &a.time_scale {
                Some(v) => ctx.positive(v, "arrivals.time_scale", "factor on trace times")?,
                None => 1.0,
            };
            Process::Trace {
                path,
                format: a.format.unwrap_or(TraceFormat::Csv),
                time_scale,
            }
        }
    };
    let skew = match &a.skew {
        None => Skew::Uniform,
        Some(s) => {
            match (&s.value.zipf, &s.value.weights) {
                (Some(z), None) => {
                    Skew::Zipf(ctx.non_negative(z, "arrivals.skew.zipf", "Zipf exponent")?)
                }
                (None, Some(w)) => {
                    if w.value.len() != n_models {
                        return Err(ctx.err(
                        &w.referenced,
                        "arrivals.skew.weights",
                        format!("{} weights given, but there are {n_models} models (copies expanded)", w.value.len()),
                    ));
                    }
                    if w.value.iter().any(|x| !x.is_finite() || *x < 0.0)
                        || w.value.iter().sum::<f64>() <= 0.0
                    {
                        return Err(ctx.err(
                            &w.referenced,
                            "arrivals.skew.weights",
                            "expected weights >= 0 with a positive sum",
                        ));
                    }
                    Skew::Weights(w.value.clone())
                }
                _ => {
                    return Err(ctx.err(
                        &s.referenced,
                        "arrivals.skew",
                        "expected exactly one of `zipf: S` or `weights: [...]`",
                    ))
                }
            }
        }
    };
    Ok(ArrivalSpec {
        process,
        skew,
        per_model: a.per_model,
    })
}
