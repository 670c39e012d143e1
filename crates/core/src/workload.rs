//! The workload language: a YAML file naming the cluster, the models, the
//! arrival process and the policy. `Workload::load` parses and validates it;
//! every error names the file, the line and the field.

use crate::arch;
use crate::error::{Error, InputError, Result};
use crate::hardware::HardwareProfile;
use crate::model::{stage_partition, ModelShape};
use crate::yaml::{self, Ctx};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};

/// A validated workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Workload name.
    pub name: String,
    /// Seed of every random generator the run uses.
    pub seed: u64,
    /// Length of the generated arrival process, seconds.
    pub duration_s: f64,
    /// The GPU server.
    pub cluster: Cluster,
    /// Models served, copies expanded (`opt-13b-0` .. `opt-13b-7`).
    pub models: Vec<ModelSpec>,
    /// How requests arrive.
    pub arrivals: ArrivalSpec,
    /// Which serving system and eviction policy.
    pub policy: PolicySpec,
    /// The file it came from (for errors and relative paths).
    pub source: PathBuf,
}

/// The GPU server.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Hardware profile of every GPU and link.
    pub hardware: HardwareProfile,
    /// Number of GPUs.
    pub gpus: u32,
}

/// One served model.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// Unique name, e.g. `opt-13b-3`.
    pub name: String,
    /// Its layers.
    pub shape: ModelShape,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Pipeline-parallel degree (stages).
    pub pp: u32,
    /// Largest batch the scheduler may form.
    pub max_batch: u32,
    /// Latency objective, seconds.
    pub slo_s: Option<f64>,
}

impl ModelSpec {
    /// GPUs one replica of the model occupies (`tp * pp`).
    pub fn gpus(&self) -> u32 {
        self.tp * self.pp
    }

    /// Bytes of the largest shard: the largest stage divided over `tp` GPUs.
    pub fn largest_shard_bytes(&self) -> u64 {
        stage_partition(&self.shape, self.pp as usize)
            .iter()
            .map(|r| self.shape.layers[r.clone()].iter().map(|l| l.param_bytes).sum::<u64>())
            .max()
            .unwrap_or(0)
            .div_ceil(self.tp as u64)
    }
}

/// The arrival process of the whole workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalSpec {
    /// The process generating arrival times.
    pub process: Process,
    /// Share of the rate each model gets.
    pub skew: Skew,
    /// Each model gets its own stream at its share of the rate (true), or one
    /// global stream is split among models by share (false, the default).
    pub per_model: bool,
}

/// Arrival time processes.
#[derive(Debug, Clone, PartialEq)]
pub enum Process {
    /// Exponential inter-arrivals at `rate` requests/s.
    Poisson {
        /// Requests per second.
        rate: f64,
    },
    /// Gamma inter-arrivals with mean `1/rate` and coefficient of variation `cv`.
    Gamma {
        /// Requests per second.
        rate: f64,
        /// Coefficient of variation of inter-arrival times.
        cv: f64,
    },
    /// Models take turns at fixed spacing `1/rate`: every request finds its
    /// model swapped out (Computron's worst case).
    RoundRobin {
        /// Requests per second.
        rate: f64,
    },
    /// Two-state Markov-modulated Poisson process (bursty on/off).
    OnOff {
        /// Rate while on, requests/s.
        rate_on: f64,
        /// Rate while off, requests/s.
        rate_off: f64,
        /// Mean length of an on period, seconds (exponential).
        mean_on_s: f64,
        /// Mean length of an off period, seconds (exponential).
        mean_off_s: f64,
    },
    /// Arrivals replayed from a trace file.
    Trace {
        /// The trace file (resolved relative to the workload file).
        path: PathBuf,
        /// Its format.
        format: TraceFormat,
        /// Multiply trace times by this (e.g. 0.01 to compress a day).
        time_scale: f64,
    },
}

/// Formats of arrival traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// `arrival_s,model` CSV with a header; model is a model name.
    Csv,
    /// Azure LLM inference trace 2023: `TIMESTAMP,ContextTokens,GeneratedTokens`.
    AzureLlm,
    /// Azure Functions 2019 invocations per minute:
    /// `HashOwner,HashApp,HashFunction,Trigger,1,..,1440`.
    AzureFunctions,
}

/// How the request rate is shared among models.
#[derive(Debug, Clone, PartialEq)]
pub enum Skew {
    /// Every model gets the same share.
    Uniform,
    /// Model `i` (0-based, in file order) gets a share proportional to `1/(i+1)^s`.
    Zipf(f64),
    /// Explicit shares, one per model (normalised).
    Weights(Vec<f64>),
}

impl Skew {
    /// Normalised shares for `n` models.
    pub fn shares(&self, n: usize) -> Vec<f64> {
        let raw: Vec<f64> = match self {
            Skew::Uniform => vec![1.0; n],
            Skew::Zipf(s) => (0..n).map(|i| 1.0 / ((i + 1) as f64).powf(*s)).collect(),
            Skew::Weights(w) => w.clone(),
        };
        let total: f64 = raw.iter().sum();
        raw.iter().map(|w| w / total).collect()
    }
}

/// Which serving system runs the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// Model-parallel swapping over all shards' links at once (Computron).
    Computron,
    /// Pipelined layer-group loading on one GPU (PipeSwitch).
    Pipeswitch,
    /// Pageable copy of the whole model, then run.
    StopAndStart,
    /// No swapping: every model stays in GPU memory.
    Resident,
    /// Every request streams its layers; nothing is cached.
    Streaming,
}

impl System {
    /// Every system, in the order `--compare-systems` runs them.
    pub const ALL: [System; 5] = [
        System::Computron,
        System::Pipeswitch,
        System::StopAndStart,
        System::Resident,
        System::Streaming,
    ];

    /// The name used in YAML and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            System::Computron => "computron",
            System::Pipeswitch => "pipeswitch",
            System::StopAndStart => "stop-and-start",
            System::Resident => "resident",
            System::Streaming => "streaming",
        }
    }
}

/// Which model to evict when memory is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eviction {
    /// Least recently used.
    Lru,
    /// Least frequently used.
    Lfu,
    /// Offline optimum: the model whose next request is furthest ahead.
    Belady,
}

/// How a model's layers are grouped into copies (PipeSwitch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The grouping that minimises the pipeline's finish time (dynamic program).
    Optimal,
    /// One layer per group.
    PerLayer,
    /// The whole model in one group (no pipelining).
    OneGroup,
}

/// The serving policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySpec {
    /// Serving system.
    pub system: System,
    /// Eviction policy.
    pub eviction: Eviction,
    /// Layer grouping for pipelined loads.
    pub grouping: Grouping,
}

// ---------------------------------------------------------------- raw YAML

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: String,
    seed: u64,
    duration_s: Spanned<f64>,
    cluster: RawCluster,
    models: Spanned<Vec<Spanned<RawModel>>>,
    arrivals: Spanned<RawArrivals>,
    policy: RawPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    hardware: Spanned<String>,
    gpus: Spanned<u64>,
    gpu_memory_gib: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParallel {
    #[serde(default)]
    tp: Option<Spanned<u64>>,
    #[serde(default)]
    pp: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    arch: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    copies: Option<Spanned<u64>>,
    parallel: Option<RawParallel>,
    max_batch: Option<Spanned<u64>>,
    slo_ms: Option<Spanned<f64>>,
    seq_len: Option<Spanned<u64>>,
    layers: Option<Spanned<u64>>,
    layer_mb: Option<Spanned<f64>>,
    layer_ms: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSkew {
    zipf: Option<Spanned<f64>>,
    weights: Option<Spanned<Vec<f64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProcessName {
    Poisson,
    Gamma,
    RoundRobin,
    OnOff,
    Trace,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrivals {
    process: Spanned<ProcessName>,
    rate: Option<Spanned<f64>>,
    cv: Option<Spanned<f64>>,
    skew: Option<Spanned<RawSkew>>,
    #[serde(default)]
    per_model: bool,
    rate_on: Option<Spanned<f64>>,
    rate_off: Option<Spanned<f64>>,
    mean_on_s: Option<Spanned<f64>>,
    mean_off_s: Option<Spanned<f64>>,
    path: Option<Spanned<String>>,
    format: Option<TraceFormat>,
    time_scale: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    system: System,
    #[serde(default = "default_eviction")]
    eviction: Eviction,
    #[serde(default = "default_grouping")]
    grouping: Grouping,
}

fn default_eviction() -> Eviction {
    Eviction::Lru
}

fn default_grouping() -> Grouping {
    Grouping::Optimal
}

impl Workload {
    /// Reads and validates the workload file at `path`.
    pub fn load(path: &Path) -> Result<Workload> {
        Workload::load_with_hardware(path, None)
    }

    /// Reads `path` like [`Workload::load`], with `cluster.hardware` replaced
    /// by `hardware` (a preset name or a profile path) when given.
    pub fn load_with_hardware(path: &Path, hardware: Option<&str>) -> Result<Workload> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Workload::parse_with_hardware(path, &text, hardware)
    }

    /// Parses and validates workload YAML `text`; `path` names it in errors
    /// and anchors relative paths (hardware profiles, traces).
    pub fn parse(path: &Path, text: &str) -> Result<Workload> {
        Workload::parse_with_hardware(path, text, None)
    }

    /// Parses like [`Workload::parse`], with `cluster.hardware` replaced by
    /// `hardware` when given (a relative profile path is taken from the
    /// current folder). The models are checked against that hardware.
    pub fn parse_with_hardware(path: &Path, text: &str, hardware: Option<&str>) -> Result<Workload> {
        let mut raw: RawWorkload = yaml::parse(path, text)?;
        if let Some(h) = hardware {
            let abs = std::path::absolute(h).map(|p| p.to_string_lossy().into_owned());
            let name = if crate::hardware::PRESETS.contains(&h) { h.to_string() } else { abs.unwrap_or_else(|_| h.to_string()) };
            raw.cluster.hardware.value = name;
        }
        let ctx = Ctx::new(path);
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let duration_s = ctx.positive(&raw.duration_s, "duration_s", "seconds")?;
        let gpus = ctx.at_least_one(&raw.cluster.gpus, "cluster.gpus")? as u32;
        let hardware = HardwareProfile::resolve(&raw.cluster.hardware.value, Some(&base)).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::Input(ctx.err(
                &raw.cluster.hardware.referenced,
                "cluster.hardware",
                format!(
                    "`{}` is neither a built-in preset ({}) nor a profile file",
                    raw.cluster.hardware.value,
                    crate::hardware::PRESETS.join(", ")
                ),
            )),
            other => other,
        })?;
        let mut hardware = hardware;
        if let Some(mem) = &raw.cluster.gpu_memory_gib {
            let gib = ctx.positive(mem, "cluster.gpu_memory_gib", "GiB")?;
            let bytes = (gib * (1u64 << 30) as f64) as u64;
            if bytes > hardware.gpu_memory_bytes || bytes <= hardware.reserved_bytes {
                return Err(ctx
                    .err(
                        &mem.referenced,
                        "cluster.gpu_memory_gib",
                        format!(
                            "expected more than the profile's reserved {:.2} GiB and at most its {:.2} GiB",
                            hardware.reserved_bytes as f64 / (1u64 << 30) as f64,
                            hardware.gpu_memory_bytes as f64 / (1u64 << 30) as f64
                        ),
                    )
                    .into());
            }
            hardware.gpu_memory_bytes = bytes;
        }
        let cluster = Cluster { hardware, gpus };
        let models = validate_models(&ctx, &raw.models, &cluster)?;
        let arrivals = validate_arrivals(&ctx, &raw.arrivals, models.len(), &base)?;
        let policy = PolicySpec {
            system: raw.policy.system,
            eviction: raw.policy.eviction,
            grouping: raw.policy.grouping,
        };
        Ok(Workload {
            name: raw.name,
            seed: raw.seed,
            duration_s,
            cluster,
            models,
            arrivals,
            policy,
            source: path.to_path_buf(),
        })
    }

    /// Index of the model called `name`.
    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.models.iter().position(|m| m.name == name)
    }

    /// Names of the models, in order.
    pub fn model_names(&self) -> Vec<String> {
        self.models.iter().map(|m| m.name.clone()).collect()
    }
}

fn validate_models(
    ctx: &Ctx,
    raw: &Spanned<Vec<Spanned<RawModel>>>,
    cluster: &Cluster,
) -> Result<Vec<ModelSpec>, InputError> {
    if raw.value.is_empty() {
        return Err(ctx.err(&raw.referenced, "models", "expected at least one model"));
    }
    let mut out: Vec<ModelSpec> = Vec::new();
    for (i, entry) in raw.value.iter().enumerate() {
        let m = &entry.value;
        let f = |name: &str| format!("models[{i}].{name}");
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
        let copies = match &m.copies {
            Some(c) => ctx.at_least_one(c, &f("copies"))?,
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
                format!("tp * pp = {} GPUs, but cluster.gpus is {}", tp * pp, cluster.gpus),
            ));
        }
        if pp as usize > shape.layers.len() {
            return Err(ctx.err(
                &parallel_loc,
                f("parallel.pp"),
                format!("{pp} pipeline stages, but the model has only {} layers", shape.layers.len()),
            ));
        }
        for c in 0..copies {
            let name = if copies == 1 { base_name.clone() } else { format!("{base_name}-{c}") };
            if out.iter().any(|o| o.name == name) {
                return Err(ctx.err(&entry.referenced, f("name"), format!("model name `{name}` is used twice")));
            }
            let spec = ModelSpec { name, shape: shape.clone(), tp, pp, max_batch, slo_s };
            let shard = spec.largest_shard_bytes();
            let usable = cluster.hardware.usable_bytes();
            if shard > usable {
                return Err(ctx.err(
                    &entry.referenced,
                    f("parallel"),
                    format!(
                        "model `{}` cannot fit: its largest shard with tp={tp}, pp={pp} is {:.2} GiB, \
                         but a GPU of `{}` has {:.2} GiB for weights; raise tp or pp",
                        spec.name,
                        shard as f64 / (1u64 << 30) as f64,
                        cluster.hardware.name,
                        usable as f64 / (1u64 << 30) as f64
                    ),
                ));
            }
            out.push(spec);
        }
    }
    Ok(out)
}

fn require<'a>(ctx: &Ctx, v: &'a Option<Spanned<f64>>, at: &Spanned<RawArrivals>, field: &str, why: &str) -> Result<&'a Spanned<f64>, InputError> {
    v.as_ref().ok_or_else(|| ctx.err(&at.referenced, field, format!("missing: {why}")))
}

fn validate_arrivals(ctx: &Ctx, raw: &Spanned<RawArrivals>, n_models: usize, base: &Path) -> Result<ArrivalSpec, InputError> {
    let a = &raw.value;
    let rate = |name: &str| -> Result<f64, InputError> {
        let v = require(ctx, &a.rate, raw, "arrivals.rate", &format!("`{name}` needs `rate` (requests/s)"))?;
        ctx.positive(v, "arrivals.rate", "requests per second")
    };
    let process = match a.process.value {
        ProcessName::Poisson => Process::Poisson { rate: rate("poisson")? },
        ProcessName::RoundRobin => Process::RoundRobin { rate: rate("round_robin")? },
        ProcessName::Gamma => {
            let rate = rate("gamma")?;
            let cv = require(ctx, &a.cv, raw, "arrivals.cv", "`gamma` needs `cv`")?;
            Process::Gamma { rate, cv: ctx.positive(cv, "arrivals.cv", "coefficient of variation")? }
        }
        ProcessName::OnOff => {
            let get = |v: &Option<Spanned<f64>>, field: &str, unit: &str, positive: bool| -> Result<f64, InputError> {
                let v = require(ctx, v, raw, field, &format!("`on_off` needs `{}` ({unit})", &field[9..]))?;
                if positive { ctx.positive(v, field, unit) } else { ctx.non_negative(v, field, unit) }
            };
            Process::OnOff {
                rate_on: get(&a.rate_on, "arrivals.rate_on", "requests per second", true)?,
                rate_off: match &a.rate_off {
                    Some(v) => ctx.non_negative(v, "arrivals.rate_off", "requests per second")?,
                    None => 0.0,
                },
                mean_on_s: get(&a.mean_on_s, "arrivals.mean_on_s", "seconds", true)?,
                mean_off_s: get(&a.mean_off_s, "arrivals.mean_off_s", "seconds", true)?,
            }
        }
        ProcessName::Trace => {
            let p = a.path.as_ref().ok_or_else(|| ctx.err(&raw.referenced, "arrivals.path", "missing: `trace` needs `path` (a trace file)"))?;
            let mut path = PathBuf::from(&p.value);
            if path.is_relative() && !path.exists() {
                path = base.join(&path);
            }
            if !path.exists() {
                return Err(ctx.err(&p.referenced, "arrivals.path", format!("trace file `{}` not found", p.value)));
            }
            let time_scale = match &a.time_scale {
                Some(v) => ctx.positive(v, "arrivals.time_scale", "factor on trace times")?,
                None => 1.0,
            };
            Process::Trace { path, format: a.format.unwrap_or(TraceFormat::Csv), time_scale }
        }
    };
    let skew = match &a.skew {
        None => Skew::Uniform,
        Some(s) => match (&s.value.zipf, &s.value.weights) {
            (Some(z), None) => Skew::Zipf(ctx.non_negative(z, "arrivals.skew.zipf", "Zipf exponent")?),
            (None, Some(w)) => {
                if w.value.len() != n_models {
                    return Err(ctx.err(
                        &w.referenced,
                        "arrivals.skew.weights",
                        format!("{} weights given, but there are {n_models} models (copies expanded)", w.value.len()),
                    ));
                }
                if w.value.iter().any(|x| !x.is_finite() || *x < 0.0) || w.value.iter().sum::<f64>() <= 0.0 {
                    return Err(ctx.err(&w.referenced, "arrivals.skew.weights", "expected weights >= 0 with a positive sum"));
                }
                Skew::Weights(w.value.clone())
            }
            _ => return Err(ctx.err(&s.referenced, "arrivals.skew", "expected exactly one of `zipf: S` or `weights: [...]`")),
        },
    };
    Ok(ArrivalSpec { process, skew, per_model: a.per_model })
}
