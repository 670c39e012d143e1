//! Hardware profiles: what the cost model needs to know about a GPU server.
//!
//! A profile is a YAML file (see `profiles/`). The built-in presets are those
//! same files, compiled in, so `cluster.hardware: a100-pcie4` and
//! `cluster.hardware: profiles/a100-pcie4.yaml` mean the same thing.

use crate::error::{Error, InputError, Result};
use crate::yaml::{self, Ctx};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

/// Cost of one copy over a link: `alpha_s + bytes / beta_bytes_per_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkCost {
    /// Fixed cost per transfer, seconds.
    pub alpha_s: f64,
    /// Bandwidth, bytes per second.
    pub beta_bytes_per_s: f64,
}

impl LinkCost {
    /// Time to move `bytes` in one transfer, seconds.
    pub fn time(&self, bytes: u64) -> f64 {
        self.alpha_s + bytes as f64 / self.beta_bytes_per_s
    }
}

/// Compute model of one GPU.
///
/// A layer of `b` parameter bytes and `f` FLOPs for the batch takes
/// `launch_s + max(b / hbm_bytes_per_s, f / flops_per_s)` (a roofline),
/// unless calibrated times are given for its architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeModel {
    /// Achieved dense fp16 rate, FLOP/s (bf16 runs at it too).
    pub flops_per_s: f64,
    /// Achieved dense fp32 rate, FLOP/s, for models with fp32 weights;
    /// `None`: fp32 layers run at the fp16 rate (only their bytes double).
    #[serde(default)]
    pub fp32_flops_per_s: Option<f64>,
    /// GPU memory bandwidth, bytes/s (reading the weights bounds small batches).
    pub hbm_bytes_per_s: f64,
    /// Fixed cost per layer (kernel launches), seconds.
    pub launch_s: f64,
    /// Synthetic models: a batch of `n` takes `1 + slope * (n - 1)` times batch 1.
    pub synthetic_batch_slope: f64,
    /// Host-side time of each batch after its last layer: the output's copy
    /// to the host and the host noticing it, seconds (0 unless calibrated).
    pub request_overhead_s: f64,
    /// Extra time of a compute task that starts on a GPU whose compute
    /// stream has been idle: `(idle gap, extra)` points in seconds, gaps
    /// ascending, interpolated linearly and held flat past the last point
    /// (empty unless calibrated: `replay calibrate` measures passes issued
    /// after each gap, as replay's dispatcher issues them).
    #[serde(default)]
    pub idle_penalty: Vec<(f64, f64)>,
}

impl ComputeModel {
    /// Extra seconds of a task that starts after the GPU's compute stream
    /// was idle for `gap` seconds (see [`ComputeModel::idle_penalty`]).
    pub fn idle_extra_s(&self, gap: f64) -> f64 {
        let pts = &self.idle_penalty;
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
            return 0.0;
        };
        if gap <= first.0 {
            // From no extra at no gap up to the first point.
            return if first.0 > 0.0 {
                first.1 * (gap / first.0).max(0.0)
            } else {
                first.1
            };
        }
        if gap >= last.0 {
            return last.1;
        }
        let i = pts.partition_point(|p| p.0 <= gap);
        let (a, b) = (pts[i - 1], pts[i]);
        a.1 + (b.1 - a.1) * (gap - a.0) / (b.0 - a.0)
    }
}

/// Separates an architecture from a weight type in the keys of
/// [`HardwareProfile::calibrated`] (`bert-base@fp32`).
pub const DTYPE_KEY_SEP: char = '@';

/// The key of `arch`'s calibrated times measured in `dtype`: the
/// architecture's name for fp16 (the keys of every earlier profile), else
/// `arch@fp32` / `arch@bf16`.
pub fn calibrated_key(arch: &str, dtype: crate::model::Dtype) -> String {
    match dtype {
        crate::model::Dtype::Fp16 => arch.to_string(),
        d => format!("{arch}{DTYPE_KEY_SEP}{}", d.name()),
    }
}

/// Measured per-layer compute times of one architecture, from `replay calibrate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibratedTimes {
    /// Batch sizes measured, ascending.
    pub batch_sizes: Vec<u32>,
    /// `layer_s[i][j]`: seconds of layer `j` at `batch_sizes[i]`.
    pub layer_s: Vec<Vec<f64>>,
    /// Items (tokens) per request the times were measured at; 0 (or absent)
    /// means the architecture's built-in default. A model with another
    /// `seq_len` is looked up at the batch holding as many items.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub items_per_request: u64,
    /// Whole-pass seconds, one per batch size, of a pass whose launches
    /// were queued ahead of the GPU (it waited for a copy of its weights,
    /// as a cold pass does): the GPU's own time, without the host's issue
    /// time that `layer_s` holds for launch-bound passes. Empty: the same
    /// as `layer_s`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queued_pass_s: Vec<f64>,
    /// Host seconds spent issuing one pass, one per batch size: replay's
    /// one host thread issues every GPU's passes, so while it issues one
    /// pass the next (on another GPU) waits. Empty: not measured (issuing
    /// never waits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issue_pass_s: Vec<f64>,
    /// Passes split over `tp` GPUs (the key), measured by `replay
    /// calibrate --tp`. Each layer keeps its share of the one-GPU pass.
    /// Without an entry for a model's `tp`, the one-GPU times are divided
    /// by `tp` (ideal scaling).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tensor_parallel: BTreeMap<u32, ParallelPasses>,
}

/// Whole-pass times of one tensor-parallel degree, per batch size of the
/// architecture's `batch_sizes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelPasses {
    /// Seconds on each GPU of the group from issuing the pass to the host
    /// seeing it done, collectives included, less the per-request overhead.
    pub pass_s: Vec<f64>,
    /// The same pass queued behind a copy (see
    /// [`CalibratedTimes::queued_pass_s`]); empty: the same as `pass_s`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queued_pass_s: Vec<f64>,
    /// Host seconds spent issuing the pass (see
    /// [`CalibratedTimes::issue_pass_s`]); empty: not measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issue_pass_s: Vec<f64>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A GPU server as the cost model sees it. All GPUs of a cluster are alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareProfile {
    /// Profile name.
    pub name: String,
    /// Memory of one GPU, bytes.
    pub gpu_memory_bytes: u64,
    /// Bytes per GPU kept free for activations and workspace.
    pub reserved_bytes: u64,
    /// Host-to-device copies from pinned memory, per GPU link.
    pub pinned: LinkCost,
    /// Host-to-device copies from pageable memory.
    pub pageable: LinkCost,
    /// Whether pageable copies of every GPU share one host path (queue one
    /// after another) instead of each using its own GPU's link. True for
    /// `replay`: one host thread issues every copy, and a pageable copy
    /// holds it until the driver has staged the bytes.
    pub pageable_shared: bool,
    /// GPU-to-GPU copies (NVLink where present).
    pub peer: LinkCost,
    /// Kernels reading weights in place from mapped pinned host memory
    /// (`links.direct_host_gbps`, bytes/s per GPU); `None`: the profile
    /// does not say, and [`HardwareProfile::direct_host_bytes_per_s`]
    /// falls back to the pinned link's rate.
    pub direct_host: Option<f64>,
    /// Compute of one GPU.
    pub compute: ComputeModel,
    /// Calibrated per-layer times by architecture, when measured.
    pub calibrated: BTreeMap<String, CalibratedTimes>,
    /// Variation of copy and compute times (none unless calibrated).
    pub jitter: Jitter,
    /// What host-to-GPU copies of several GPUs share (none by default:
    /// every GPU's link is its own).
    #[serde(default)]
    pub host: HostTopology,
}

impl HardwareProfile {
    /// The profile as a model of weight type `dtype` sees it. Calibrated
    /// times measured in that type (`replay calibrate --dtypes`, kept under
    /// [`calibrated_key`]`(arch, dtype)`, e.g. `bert-base@fp32`) take the
    /// place of the architecture's fp16 times. Where none were measured:
    /// fp32 layers run on the roofline at `fp32_flops_per_s` (when given,
    /// else the fp16 rate), the fp16 times not holding for them; bf16
    /// layers keep the fp16 times and rate. fp16 sees the profile unchanged.
    pub fn for_dtype(&self, dtype: crate::model::Dtype) -> HardwareProfile {
        use crate::model::Dtype;
        let mut p = self.clone();
        if dtype == Dtype::Fp16 {
            return p;
        }
        let suffix = format!("{DTYPE_KEY_SEP}{}", dtype.name());
        let measured: Vec<(String, CalibratedTimes)> = self
            .calibrated
            .iter()
            .filter_map(|(k, c)| Some((k.strip_suffix(&suffix)?.to_string(), c.clone())))
            .collect();
        p.calibrated.retain(|k, _| !k.contains(DTYPE_KEY_SEP));
        if dtype == Dtype::Fp32 {
            if let Some(r) = self.compute.fp32_flops_per_s {
                p.compute.flops_per_s = r;
            }
            p.calibrated.clear();
        }
        p.calibrated.extend(measured);
        p
    }

    /// Rate at which a GPU's kernels read weights from mapped pinned host
    /// memory (direct host access), bytes/s: the profile's
    /// `links.direct_host_gbps`, else the pinned link's `beta`. Zero-copy
    /// reads that are coalesced into whole 128-byte lines reach the copy
    /// engine's rate over the same link (EMOGI, VLDB 2021), so the pinned
    /// rate is the default until `replay calibrate` measures it.
    pub fn direct_host_bytes_per_s(&self) -> f64 {
        self.direct_host.unwrap_or(self.pinned.beta_bytes_per_s)
    }

    /// Bytes of one GPU that model weights may use.
    pub fn usable_bytes(&self) -> u64 {
        self.gpu_memory_bytes.saturating_sub(self.reserved_bytes)
    }

    /// Loads a built-in preset by name, or a profile YAML file by path.
    pub fn resolve(name_or_path: &str, relative_to: Option<&Path>) -> Result<HardwareProfile> {
        if let Some(text) = preset_text(name_or_path) {
            return Ok(parse(Path::new(&format!("<preset {name_or_path}>")), text)?);
        }
        let mut path = Path::new(name_or_path).to_path_buf();
        if path.is_relative() {
            if let Some(base) = relative_to {
                let candidate = base.join(&path);
                if candidate.exists() {
                    path = candidate;
                }
            }
        }
        let text = crate::line_cap::read_text(&path).map_err(|e| Error::io(&path, e))?;
        Ok(parse(&path, &text)?)
    }

    /// Serialises the profile in the same YAML format `resolve` reads.
    pub fn to_yaml(&self) -> String {
        let raw = RawProfile::from(self);
        serde_saphyr::to_string(&raw).expect("a profile always serialises")
    }
}

/// Names of the built-in presets.
pub const PRESETS: &[&str] = &["a100-pcie4", "v100-pcie3", "t4-pcie3x8", "h200-pcie5"];

fn preset_text(name: &str) -> Option<&'static str> {
    Some(match name {
        "a100-pcie4" => include_str!("../../../profiles/a100-pcie4.yaml"),
        "v100-pcie3" => include_str!("../../../profiles/v100-pcie3.yaml"),
        "t4-pcie3x8" => include_str!("../../../profiles/t4-pcie3x8.yaml"),
        "h200-pcie5" => include_str!("../../../profiles/h200-pcie5.yaml"),
        _ => return None,
    })
}

/// Bytes in a GiB.
pub const GIB_BYTES: u64 = 1 << 30;

/// Bytes in a GiB, as a float for printing sizes.
pub const GIB: f64 = GIB_BYTES as f64;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    alpha_us: Spanned<f64>,
    beta_gbps: Spanned<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    pinned: RawLink,
    pageable: RawLink,
    peer: RawLink,
    /// Kernels reading mapped pinned host memory, GB/s (default: pinned beta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direct_host_gbps: Option<Spanned<f64>>,
    /// Pageable copies of all GPUs queue on one host path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pageable_shared: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompute {
    fp16_tflops: Spanned<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fp32_tflops: Option<Spanned<f64>>,
    hbm_gbps: Spanned<f64>,
    launch_us: Spanned<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    synthetic_batch_slope: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_overhead_us: Option<Spanned<f64>>,
    /// `[[idle gap us, extra us], ...]`, gaps ascending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idle_penalty_us: Option<Spanned<Vec<[f64; 2]>>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    gpu_memory_gib: Spanned<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reserved_gib: Option<Spanned<f64>>,
    links: RawLinks,
    compute: RawCompute,
    #[serde(default, skip_serializing_if = "Jitter::is_none")]
    jitter: Jitter,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    calibrated: BTreeMap<String, CalibratedTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<RawHost>,
}

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(
        value,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

impl From<&HardwareProfile> for RawProfile {
    fn from(p: &HardwareProfile) -> Self {
        let link = |l: &LinkCost| RawLink {
            alpha_us: spanned(l.alpha_s * 1e6),
            beta_gbps: spanned(l.beta_bytes_per_s / 1e9),
        };
        RawProfile {
            name: p.name.clone(),
            gpu_memory_gib: spanned(p.gpu_memory_bytes as f64 / GIB),
            reserved_gib: Some(spanned(p.reserved_bytes as f64 / GIB)),
            links: RawLinks {
                pinned: link(&p.pinned),
                pageable: link(&p.pageable),
                peer: link(&p.peer),
                direct_host_gbps: p.direct_host.map(|r| spanned(r / 1e9)),
                pageable_shared: p.pageable_shared,
            },
            compute: RawCompute {
                fp16_tflops: spanned(p.compute.flops_per_s / 1e12),
                fp32_tflops: p.compute.fp32_flops_per_s.map(|r| spanned(r / 1e12)),
                hbm_gbps: spanned(p.compute.hbm_bytes_per_s / 1e9),
                launch_us: spanned(p.compute.launch_s * 1e6),
                synthetic_batch_slope: Some(spanned(p.compute.synthetic_batch_slope)),
                request_overhead_us: (p.compute.request_overhead_s > 0.0)
                    .then(|| spanned(p.compute.request_overhead_s * 1e6)),
                idle_penalty_us: (!p.compute.idle_penalty.is_empty()).then(|| {
                    spanned(
                        p.compute
                            .idle_penalty
                            .iter()
                            .map(|&(g, e)| [round_us(g * 1e6), round_us(e * 1e6)])
                            .collect(),
                    )
                }),
            },
            jitter: p.jitter.clone(),
            calibrated: p.calibrated.clone(),
            host: RawHost::of(&p.host),
        }
    }
}

/// Microseconds rounded to 0.01, so written profiles stay readable.
fn round_us(us: f64) -> f64 {
    (us * 100.0).round() / 100.0
}

/// Checks `compute.idle_penalty_us`: finite, non-negative, gaps ascending.
fn idle_penalty(ctx: &Ctx, s: &Spanned<Vec<[f64; 2]>>) -> Result<Vec<(f64, f64)>, InputError> {
    let field = "compute.idle_penalty_us";
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(s.value.len());
    for (i, &[gap, extra]) in s.value.iter().enumerate() {
        let ok = gap.is_finite() && extra.is_finite() && gap >= 0.0 && extra >= 0.0;
        if !ok || out.last().is_some_and(|p| gap * 1e-6 <= p.0) {
            return Err(ctx.err(
                &s.referenced,
                format!("{field}[{i}]"),
                format!(
                    "expected [idle gap us, extra us] pairs of numbers >= 0 with gaps ascending, got [{gap}, {extra}]"
                ),
            ));
        }
        out.push((gap * 1e-6, extra * 1e-6));
    }
    Ok(out)
}

/// Parses a profile from YAML text; `file` names it in errors.
pub fn parse(file: &Path, text: &str) -> Result<HardwareProfile, InputError> {
    let raw: RawProfile = yaml::parse(file, text)?;
    let ctx = Ctx::new(file);
    let link = |l: &RawLink, name: &str| -> Result<LinkCost, InputError> {
        Ok(LinkCost {
            alpha_s: ctx.non_negative(
                &l.alpha_us,
                &format!("links.{name}.alpha_us"),
                "microseconds",
            )? * 1e-6,
            beta_bytes_per_s: ctx.positive(
                &l.beta_gbps,
                &format!("links.{name}.beta_gbps"),
                "GB/s",
            )? * 1e9,
        })
    };
    let gpu_memory_bytes =
        (ctx.positive(&raw.gpu_memory_gib, "gpu_memory_gib", "GiB")? * GIB) as u64;
    let reserved_bytes = match &raw.reserved_gib {
        Some(r) => (ctx.non_negative(r, "reserved_gib", "GiB")? * GIB) as u64,
        None => 0,
    };
    for (cv, field) in [
        (raw.jitter.copy_cv, "jitter.copy_cv"),
        (raw.jitter.compute_cv, "jitter.compute_cv"),
    ] {
        if !(0.0..1.0).contains(&cv) {
            return Err(InputError::new(
                file,
                None,
                field,
                format!("expected a coefficient of variation in [0, 1), got {cv}"),
            ));
        }
    }
    if let Err((field, msg)) = raw.jitter.check_host_stalls() {
        return Err(InputError::new(file, None, field, msg));
    }
    if reserved_bytes >= gpu_memory_bytes {
        let loc = raw
            .reserved_gib
            .as_ref()
            .map(|r| r.referenced)
            .unwrap_or(raw.gpu_memory_gib.referenced);
        return Err(ctx.err(&loc, "reserved_gib", "must be smaller than gpu_memory_gib"));
    }
    for (arch, c) in &raw.calibrated {
        if c.batch_sizes.is_empty() || c.batch_sizes.len() != c.layer_s.len() {
            return Err(InputError::new(
                file,
                None,
                format!("calibrated.{arch}"),
                "expected one layer_s row per batch size",
            ));
        }
        let per_batch = |v: &[f64], optional: bool| {
            (optional && v.is_empty())
                || (v.len() == c.batch_sizes.len() && v.iter().all(|t| t.is_finite() && *t > 0.0))
        };
        let one_per_batch = "expected one positive time per batch size";
        for (v, field) in [
            (&c.queued_pass_s, "queued_pass_s"),
            (&c.issue_pass_s, "issue_pass_s"),
        ] {
            if !per_batch(v, true) {
                return Err(InputError::new(
                    file,
                    None,
                    format!("calibrated.{arch}.{field}"),
                    one_per_batch,
                ));
            }
        }
        for (tp, p) in &c.tensor_parallel {
            for (v, field, optional) in [
                (&p.pass_s, "pass_s", false),
                (&p.queued_pass_s, "queued_pass_s", true),
                (&p.issue_pass_s, "issue_pass_s", true),
            ] {
                if *tp < 2 || !per_batch(v, optional) {
                    return Err(InputError::new(
                        file,
                        None,
                        format!("calibrated.{arch}.tensor_parallel.{tp}.{field}"),
                        format!("{one_per_batch}, for a tensor-parallel degree of at least 2"),
                    ));
                }
            }
        }
    }
    Ok(HardwareProfile {
        name: raw.name.clone(),
        gpu_memory_bytes,
        reserved_bytes,
        pinned: link(&raw.links.pinned, "pinned")?,
        pageable: link(&raw.links.pageable, "pageable")?,
        pageable_shared: raw.links.pageable_shared,
        peer: link(&raw.links.peer, "peer")?,
        direct_host: match &raw.links.direct_host_gbps {
            Some(v) => Some(ctx.positive(v, "links.direct_host_gbps", "GB/s")? * 1e9),
            None => None,
        },
        compute: ComputeModel {
            flops_per_s: ctx.positive(
                &raw.compute.fp16_tflops,
                "compute.fp16_tflops",
                "TFLOP/s",
            )? * 1e12,
            fp32_flops_per_s: match &raw.compute.fp32_tflops {
                Some(v) => Some(ctx.positive(v, "compute.fp32_tflops", "TFLOP/s")? * 1e12),
                None => None,
            },
            hbm_bytes_per_s: ctx.positive(&raw.compute.hbm_gbps, "compute.hbm_gbps", "GB/s")? * 1e9,
            launch_s: ctx.non_negative(
                &raw.compute.launch_us,
                "compute.launch_us",
                "microseconds",
            )? * 1e-6,
            synthetic_batch_slope: match &raw.compute.synthetic_batch_slope {
                Some(s) => ctx.non_negative(
                    s,
                    "compute.synthetic_batch_slope",
                    "fraction of batch-1 time per extra request",
                )?,
                None => 0.1,
            },
            request_overhead_s: match &raw.compute.request_overhead_us {
                Some(s) => {
                    ctx.non_negative(s, "compute.request_overhead_us", "microseconds")? * 1e-6
                }
                None => 0.0,
            },
            idle_penalty: match &raw.compute.idle_penalty_us {
                Some(s) => idle_penalty(&ctx, s)?,
                None => Vec::new(),
            },
        },
        jitter: raw.jitter,
        host: host_topology(&ctx, &raw.host)?,
        calibrated: raw.calibrated,
    })
}

mod host;
mod jitter;
#[cfg(test)]
mod tests;

use host::{host_topology, RawHost};
pub use host::{HostTopology, SharedLink};
pub use jitter::Jitter;
