//! A profile's host topology: what copies of several GPUs share (host
//! memory, upstream links), its YAML form and its validation.

use super::spanned;
use crate::error::InputError;
use crate::yaml::Ctx;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// What copies between host and GPUs share: the host memory's bandwidth,
/// and upstream links (a PCIe switch, a root port) in front of several
/// GPUs. The simulator splits a shared bandwidth evenly among the GPUs
/// copying through it at once (see `sim`'s engine); empty: nothing shared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostTopology {
    /// Bandwidth of host memory that every GPU's copies draw on, bytes/s.
    pub memory_bytes_per_s: Option<f64>,
    /// Upstream links, each shared by the GPUs behind it.
    pub upstream: Vec<SharedLink>,
}

/// An upstream link several GPUs copy through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedLink {
    /// The GPUs behind it (indices in the cluster; others are ignored).
    pub gpus: Vec<u32>,
    /// Its bandwidth, bytes/s.
    pub bytes_per_s: f64,
}

impl HostTopology {
    /// True when nothing is shared (today's model: each link on its own).
    pub fn is_empty(&self) -> bool {
        self.memory_bytes_per_s.is_none() && self.upstream.is_empty()
    }

    /// Bandwidth, bytes/s, that one of `active` GPUs copying at once
    /// (`gpu` among them) gets from what they share, if anything limits
    /// it: host memory split over all of them, an upstream link over those
    /// behind it.
    pub fn share_bytes_per_s(&self, gpu: u32, active: &[u32]) -> Option<f64> {
        let mut bw: Option<f64> = None;
        let mut cap = |b: f64| bw = Some(bw.map_or(b, |x: f64| x.min(b)));
        if let Some(m) = self.memory_bytes_per_s {
            cap(m / active.len().max(1) as f64);
        }
        for up in &self.upstream {
            if up.gpus.contains(&gpu) {
                let n = active.iter().filter(|g| up.gpus.contains(g)).count();
                cap(up.bytes_per_s / n.max(1) as f64);
            }
        }
        bw
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory_gbps: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    upstream: Vec<RawUpstream>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    gpus: Spanned<Vec<u32>>,
    gbps: Spanned<f64>,
}

/// Checks the `host` section: positive bandwidths, each upstream link with
/// GPUs, no GPU behind two of them.
pub(super) fn host_topology(ctx: &Ctx, raw: &Option<RawHost>) -> Result<HostTopology, InputError> {
    let Some(h) = raw else {
        return Ok(HostTopology::default());
    };
    let memory_bytes_per_s = match &h.memory_gbps {
        Some(v) => Some(ctx.positive(v, "host.memory_gbps", "GB/s")? * 1e9),
        None => None,
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut upstream = Vec::with_capacity(h.upstream.len());
    for (i, u) in h.upstream.iter().enumerate() {
        let field = format!("host.upstream[{i}]");
        if u.gpus.value.is_empty() {
            return Err(ctx.err(
                &u.gpus.referenced,
                format!("{field}.gpus"),
                "expected at least one GPU",
            ));
        }
        for &g in &u.gpus.value {
            if !seen.insert(g) {
                return Err(ctx.err(
                    &u.gpus.referenced,
                    format!("{field}.gpus"),
                    format!("GPU {g} is behind two upstream links (or listed twice)"),
                ));
            }
        }
        upstream.push(SharedLink {
            gpus: u.gpus.value.clone(),
            bytes_per_s: ctx.positive(&u.gbps, &format!("{field}.gbps"), "GB/s")? * 1e9,
        });
    }
    Ok(HostTopology {
        memory_bytes_per_s,
        upstream,
    })
}

impl RawHost {
    /// The YAML form of `t`; `None` when nothing is shared.
    pub(super) fn of(t: &HostTopology) -> Option<RawHost> {
        (!t.is_empty()).then(|| RawHost {
            memory_gbps: t.memory_bytes_per_s.map(|b| spanned(b / 1e9)),
            upstream: t
                .upstream
                .iter()
                .map(|u| RawUpstream {
                    gpus: spanned(u.gpus.clone()),
                    gbps: spanned(u.bytes_per_s / 1e9),
                })
                .collect(),
        })
    }
}
