//! Best-effort background jobs: a training loop on a GPU that holds memory
//! and compute whenever no request needs the GPU (PipeSwitch's setting).

use super::Cluster;
use crate::error::InputError;
use crate::hardware::GIB;
use crate::yaml::Ctx;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A best-effort job on one GPU: it runs iterations back to back while the
/// GPU has no request's work, holds `memory_bytes` of the GPU's memory for
/// weights all along, and yields the GPU to a request at the end of the
/// iteration it is in (then resumes once the GPU is idle again).
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundJob {
    /// Name, for summaries (`background-G` unless given).
    pub name: String,
    /// The GPU it runs on.
    pub gpu: u32,
    /// Seconds of one iteration on the GPU alone.
    pub iteration_s: f64,
    /// Bytes of GPU memory it holds.
    pub memory_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackground {
    name: Option<Spanned<String>>,
    gpu: Spanned<u64>,
    iteration_ms: Spanned<f64>,
    #[serde(default)]
    memory_gib: Option<Spanned<f64>>,
}

/// Checks the `background` list: a GPU of the cluster, one job per GPU, a
/// positive iteration time, memory that leaves room for weights.
pub(super) fn validate(
    ctx: &Ctx,
    raw: &Spanned<Vec<Spanned<RawBackground>>>,
    cluster: &Cluster,
) -> Result<Vec<BackgroundJob>, InputError> {
    let mut out: Vec<BackgroundJob> = Vec::with_capacity(raw.value.len());
    for (i, entry) in raw.value.iter().enumerate() {
        let b = &entry.value;
        let f = |name: &str| format!("background[{i}].{name}");
        let gpu = b.gpu.value;
        if gpu >= cluster.gpus as u64 {
            return Err(ctx.err(
                &b.gpu.referenced,
                f("gpu"),
                format!(
                    "expected a GPU index below cluster.gpus ({}), got {gpu}",
                    cluster.gpus
                ),
            ));
        }
        let gpu = gpu as u32;
        if out.iter().any(|j| j.gpu == gpu) {
            return Err(ctx.err(
                &b.gpu.referenced,
                f("gpu"),
                format!("GPU {gpu} already runs a background job (one per GPU)"),
            ));
        }
        let iteration_s = ctx.positive(&b.iteration_ms, &f("iteration_ms"), "milliseconds")? * 1e-3;
        let memory_bytes = match &b.memory_gib {
            Some(m) => {
                let bytes = (ctx.non_negative(m, &f("memory_gib"), "GiB")? * GIB) as u64;
                let usable = cluster.hardware.usable_bytes();
                if bytes >= usable {
                    return Err(ctx.err(
                        &m.referenced,
                        f("memory_gib"),
                        format!(
                            "expected less than the {:.2} GiB a GPU of `{}` has for weights",
                            usable as f64 / GIB,
                            cluster.hardware.name
                        ),
                    ));
                }
                bytes
            }
            None => 0,
        };
        out.push(BackgroundJob {
            name: b
                .name
                .as_ref()
                .map_or_else(|| format!("background-{gpu}"), |n| n.value.clone()),
            gpu,
            iteration_s,
            memory_bytes,
        });
    }
    Ok(out)
}
