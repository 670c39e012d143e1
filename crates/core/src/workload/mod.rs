//! The workload language: a YAML file naming the cluster, the models, the
//! arrival process and the policy. `Workload::load` parses and validates it;
//! every error names the file, the line and the field.

use crate::error::{Error, Result};
use crate::hardware::HardwareProfile;
use crate::model::{stage_partition, Dtype, ModelShape};
use crate::yaml::{self, Ctx};
use raw::{validate_arrivals, validate_models, RawWorkload};
use serde::Deserialize;
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
    /// Weight type of each model, in `models` order (their shapes' bytes
    /// are already of this type). Kept beside `models`, not in
    /// [`ModelSpec`], so code that builds a `ModelSpec` itself is
    /// unchanged; read it through [`Workload::dtype`].
    pub dtypes: Vec<Dtype>,
    /// How requests arrive.
    pub arrivals: ArrivalSpec,
    /// Which serving system and eviction policy.
    pub policy: PolicySpec,
    /// Which links carry loads (`policy.loading`; every system honours it).
    pub loading: LoadingSpec,
    /// Best-effort jobs sharing GPUs with the served models (at most one per GPU).
    pub background: Vec<BackgroundJob>,
    /// Models (indices into `models`) whose weights are in GPU memory when
    /// the clock starts, loaded in this order (`policy.preload`).
    pub preload: Vec<u32>,
    /// Line of `policy.preload` in [`Workload::source`], for the refusals
    /// only the scheduler can make once the system is known (`--system`).
    pub preload_line: Option<u64>,
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
    /// Requests per micro-batch (at most `max_batch`; default `max_batch`,
    /// no split). A batch of a model split into pipeline stages is cut into
    /// micro-batches of this size that follow each other through the
    /// stages, so stage `k + 1` runs one while stage `k` runs the next.
    pub micro_batch: u32,
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
            .map(|r| {
                self.shape.layers[r.clone()]
                    .iter()
                    .map(|l| l.param_bytes)
                    .sum::<u64>()
            })
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
    /// Closed-loop clients: each sends its next request when its previous
    /// one completes (plus a think time), optionally in turns with another
    /// task ([`crate::closed_loop`]). Drawn by the run, never ahead.
    ClosedLoop(crate::closed_loop::ClosedLoopSpec),
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
    /// BurstGPT (ChatGPT and GPT-4 requests): `Timestamp` (seconds) and
    /// `Model` (a model name) among its columns.
    Burstgpt,
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
        let mut total: f64 = raw.iter().sum();
        let mut raw = raw;
        if !total.is_finite() {
            // Weights near f64::MAX overflow their sum: scale them by the
            // largest first (only then, so other shares stay bit-identical).
            let max = raw.iter().copied().fold(0.0f64, f64::max);
            raw.iter_mut().for_each(|w| *w /= max);
            total = raw.iter().sum();
        }
        raw.iter().map(|w| w / total).collect()
    }
}

mod background;
mod closed_loop;
mod loading;
mod policy;
mod raw;
mod trace_models;

pub use background::BackgroundJob;
pub use loading::{
    direct_host_refusal, offload_refusal, Loading, LoadingSpec, MultipathGrouping,
    DEFAULT_STAGING_MIB,
};
pub use policy::{Eviction, Grouping, PolicyName, PolicySpec, System};

/// Default of [`Limits::max_models`].
pub const DEFAULT_MAX_MODELS: u64 = 1_000_000;
/// Default of [`Limits::max_gpus`].
pub const DEFAULT_MAX_GPUS: u64 = 4096;

/// Caps on a workload's size, checked while it is parsed, before any
/// memory grows with them; `sim` and `replay` raise them with
/// `--max-models` and `--max-gpus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most models (copies and trace names expanded) a workload may serve.
    pub max_models: u64,
    /// Most GPUs a cluster may have.
    pub max_gpus: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_models: DEFAULT_MAX_MODELS,
            max_gpus: DEFAULT_MAX_GPUS,
        }
    }
}

/// The message of a workload over [`Limits::max_models`].
fn too_many_models(max: u64) -> String {
    format!("the workload would serve more than {max} models (--max-models raises the limit)")
}

pub use trace_models::{assign_classes, name_hash, TraceModelRule};

impl Workload {
    /// Reads and validates the workload file at `path`.
    pub fn load(path: &Path) -> Result<Workload> {
        Workload::load_with_hardware(path, None)
    }

    /// Reads `path` like [`Workload::load`], with `cluster.hardware` replaced
    /// by `hardware` (a preset name or a profile path) when given.
    pub fn load_with_hardware(path: &Path, hardware: Option<&str>) -> Result<Workload> {
        Workload::load_with(path, hardware, &Limits::default())
    }

    /// Reads `path` like [`Workload::load_with_hardware`], under `limits`.
    pub fn load_with(path: &Path, hardware: Option<&str>, limits: &Limits) -> Result<Workload> {
        let text = crate::line_cap::read_text(path).map_err(|e| Error::unreadable(path, e))?;
        Workload::parse_with(path, &text, hardware, limits)
    }

    /// Parses and validates workload YAML `text`; `path` names it in errors
    /// and anchors relative paths (hardware profiles, traces).
    pub fn parse(path: &Path, text: &str) -> Result<Workload> {
        Workload::parse_with_hardware(path, text, None)
    }

    /// Parses like [`Workload::parse`], with `cluster.hardware` replaced by
    /// `hardware` when given (a relative profile path is taken from the
    /// current folder). The models are checked against that hardware.
    pub fn parse_with_hardware(
        path: &Path,
        text: &str,
        hardware: Option<&str>,
    ) -> Result<Workload> {
        Workload::parse_with(path, text, hardware, &Limits::default())
    }

    /// Parses like [`Workload::parse_with_hardware`], refusing a workload
    /// over `limits` with an error naming the field.
    pub fn parse_with(
        path: &Path,
        text: &str,
        hardware: Option<&str>,
        limits: &Limits,
    ) -> Result<Workload> {
        let mut raw: RawWorkload = yaml::parse(path, text)?;
        if let Some(h) = hardware {
            let abs = std::path::absolute(h).map(|p| p.to_string_lossy().into_owned());
            let name = if crate::hardware::PRESETS.contains(&h) {
                h.to_string()
            } else {
                abs.unwrap_or_else(|_| h.to_string())
            };
            raw.cluster.hardware.value = name;
        }
        let ctx = Ctx::new(path);
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let duration_s = ctx.positive(&raw.duration_s, "duration_s", "seconds")?;
        let gpus = ctx.at_least_one(&raw.cluster.gpus, "cluster.gpus")?;
        if gpus > limits.max_gpus {
            return Err(ctx
                .err(
                    &raw.cluster.gpus.referenced,
                    "cluster.gpus",
                    format!(
                        "expected at most {} GPUs, got {gpus} (--max-gpus raises the limit)",
                        limits.max_gpus
                    ),
                )
                .into());
        }
        let gpus = gpus as u32;
        let hardware = HardwareProfile::resolve(&raw.cluster.hardware.value, Some(&base)).map_err(
            |e| match e {
                Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
                    Error::Input(ctx.err(
                        &raw.cluster.hardware.referenced,
                        "cluster.hardware",
                        format!(
                            "`{}` is neither a built-in preset ({}) nor a profile file",
                            raw.cluster.hardware.value,
                            crate::hardware::PRESETS.join(", ")
                        ),
                    ))
                }
                other => other,
            },
        )?;
        let mut hardware = hardware;
        if let Some(mem) = &raw.cluster.gpu_memory_gib {
            let gib = ctx.positive(mem, "cluster.gpu_memory_gib", "GiB")?;
            let bytes = (gib * crate::hardware::GIB) as u64;
            if bytes > hardware.gpu_memory_bytes || bytes <= hardware.reserved_bytes {
                return Err(ctx
                    .err(
                        &mem.referenced,
                        "cluster.gpu_memory_gib",
                        format!(
                            "expected more than the profile's reserved {:.2} GiB and at most its {:.2} GiB",
                            hardware.reserved_bytes as f64 / crate::hardware::GIB,
                            hardware.gpu_memory_bytes as f64 / crate::hardware::GIB
                        ),
                    )
                    .into());
            }
            hardware.gpu_memory_bytes = bytes;
        }
        let cluster = Cluster { hardware, gpus };
        let mut dtypes = Vec::new();
        let mut models = match &raw.models {
            Some(m) => validate_models(&ctx, m, &cluster, limits.max_models, &mut dtypes)?,
            None => Vec::new(),
        };
        if let Some(tm) = &raw.trace_models {
            trace_models::expand(
                &ctx,
                tm,
                &raw.arrivals,
                &base,
                &cluster,
                raw.seed,
                &mut models,
            )?;
            // The trace is bounded by the file-size cap, so its names are too.
            if models.len() as u64 > limits.max_models {
                return Err(ctx
                    .err(
                        &tm.referenced,
                        "trace_models",
                        too_many_models(limits.max_models),
                    )
                    .into());
            }
        }
        if models.is_empty() {
            return Err(crate::InputError::new(
                path,
                None,
                "models",
                "missing: give `models` (a list) or `trace_models` (every model a trace names)",
            )
            .into());
        }
        // Models a trace adds (`trace_models`) hold fp16 weights.
        dtypes.resize(models.len(), Dtype::Fp16);
        let arrivals = validate_arrivals(&ctx, &raw.arrivals, &models, &base)?;
        let max_loaded = match &raw.policy.max_loaded {
            Some(v) => Some(
                ctx.at_least_one(v, "policy.max_loaded")?
                    .min(u32::MAX as u64) as u32,
            ),
            None => None,
        };
        let mut preload: Vec<u32> = Vec::new();
        if let Some(p) = &raw.policy.preload {
            for name in &p.value {
                let i = models.iter().position(|m| &m.name == name).ok_or_else(|| {
                    ctx.err(
                        &p.referenced,
                        "policy.preload",
                        format!(
                            "no model is called `{name}` (copies are named NAME-0, NAME-1, ...)"
                        ),
                    )
                })? as u32;
                if preload.contains(&i) {
                    return Err(ctx
                        .err(
                            &p.referenced,
                            "policy.preload",
                            format!("`{name}` is listed twice"),
                        )
                        .into());
                }
                preload.push(i);
            }
        }
        let background = match &raw.background {
            Some(b) => background::validate(&ctx, b, &cluster)?,
            None => Vec::new(),
        };
        let policy = PolicySpec {
            system: raw.policy.system,
            eviction: raw.policy.eviction,
            grouping: raw.policy.grouping,
            max_loaded,
            offload: loading::validate_offload(&ctx, &raw.policy)?,
        };
        let loading = loading::validate(&ctx, &raw.policy, &cluster)?;
        Ok(Workload {
            name: raw.name,
            seed: raw.seed,
            duration_s,
            cluster,
            models,
            dtypes,
            arrivals,
            policy,
            loading,
            background,
            preload,
            preload_line: raw
                .policy
                .preload
                .as_ref()
                .map(|p| p.referenced.line())
                .filter(|&l| l > 0),
            source: path.to_path_buf(),
        })
    }

    /// Weight type of model `i` (fp16 for a model `dtypes` does not cover).
    pub fn dtype(&self, i: usize) -> Dtype {
        self.dtypes.get(i).copied().unwrap_or_default()
    }

    /// The background job on GPU `gpu`, if any.
    pub fn background_on(&self, gpu: u32) -> Option<&BackgroundJob> {
        self.background.iter().find(|b| b.gpu == gpu)
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
