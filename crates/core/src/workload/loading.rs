//! How stage loads travel from host memory to a GPU (`policy.loading`):
//! over the GPU's own link only, or split over the links of up to `k`
//! helper GPUs as well (multi-path loading, DeepPlan's idea): a helper's
//! piece is copied into reserved staging memory on the helper, then
//! forwarded over the peer link. Independently of the links,
//! `policy.direct_host` lets the layers the grouping DP picks run from
//! mapped pinned host memory instead of being copied (DeepPlan's direct
//! host access).

use super::raw::RawPolicy;
use super::{Cluster, System};
use crate::error::InputError;
use crate::yaml::Ctx;
use serde::Deserialize;

/// Default of [`LoadingSpec::staging_bytes`]: 1 GiB of staging per GPU.
pub const DEFAULT_STAGING_MIB: f64 = 1024.0;

/// Which links carry a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loading {
    /// Each shard over its own GPU's host link (every system's default).
    #[default]
    Direct,
    /// A one-GPU model's layer groups split over its GPU's link and the
    /// links of up to [`LoadingSpec::helpers`] other GPUs, forwarded over
    /// the peer link.
    Multipath,
}

/// What copy time the grouping DP plans a multi-path load's layer groups
/// with (`policy.multipath_grouping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MultipathGrouping {
    /// The time a group takes split over the helper links it is loaded
    /// over: staged, forwarded over the peer link, a fixed cost per piece.
    #[default]
    Helpers,
    /// One link's time, as for a direct load (groups sized for the target's
    /// link alone; for comparison).
    OneLink,
    /// Ablation of [`MultipathGrouping::Helpers`]: every load takes the
    /// plan for all `k` helpers lent, even when some are busy with their
    /// own loads at issue time (the split still uses only the lent ones;
    /// for measuring what planning per lender count is worth).
    EveryHelper,
}

impl MultipathGrouping {
    /// Whether multi-path loads are planned with the helper links' copy
    /// time (`helpers` and its ablation `every_helper`).
    pub fn helper_aware(self) -> bool {
        self != MultipathGrouping::OneLink
    }
}

impl super::PolicyName for MultipathGrouping {
    const VALUES: &'static [MultipathGrouping] = &[
        MultipathGrouping::Helpers,
        MultipathGrouping::OneLink,
        MultipathGrouping::EveryHelper,
    ];
    fn name(self) -> &'static str {
        match self {
            MultipathGrouping::Helpers => "helpers",
            MultipathGrouping::OneLink => "one_link",
            MultipathGrouping::EveryHelper => "every_helper",
        }
    }
}

/// The loading part of the policy: `policy.loading`,
/// `policy.multipath_helpers`, `policy.multipath_staging_mib`,
/// `policy.multipath_grouping`, `policy.direct_host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadingSpec {
    /// Direct or multi-path.
    pub mode: Loading,
    /// Most helper GPUs one load may borrow links from (`k`); 0 when direct.
    pub helpers: u32,
    /// Staging memory reserved on every GPU for the pieces it forwards,
    /// bytes (taken out of its weight pool at start, so never from a
    /// model loaded there); 0 when direct.
    pub staging_bytes: u64,
    /// Direct host access (`policy.direct_host`, default off): the layer
    /// grouping may leave a stage's first layers in pinned host memory,
    /// read by the kernels in place, never copied nor held in GPU memory
    /// (the scheduler's `grouping::with_direct` decides which, from the
    /// profile's `links.direct_host_gbps`).
    pub direct_host: bool,
    /// How the grouping DP costs a multi-path load's groups (ignored with
    /// direct loading).
    pub grouping: MultipathGrouping,
}

impl LoadingSpec {
    /// Whether loads may use helper links.
    pub fn multipath(&self) -> bool {
        self.mode == Loading::Multipath && self.helpers > 0
    }

    /// This spec with its mode set to `mode` (a command line's
    /// `--loading`): multi-path keeps the workload's helpers and staging
    /// when it gave them, else one helper and the default staging; direct
    /// clears them. Fails, saying why, on a one-GPU cluster.
    pub fn with_mode(self, mode: Loading, cluster: &Cluster) -> Result<LoadingSpec, String> {
        let direct_host = self.direct_host;
        let grouping = self.grouping;
        match mode {
            Loading::Direct => Ok(LoadingSpec {
                direct_host,
                ..LoadingSpec::default()
            }),
            Loading::Multipath if self.multipath() => Ok(self),
            Loading::Multipath if cluster.gpus < 2 => Err(format!(
                "`multipath` borrows other GPUs' links, but the cluster has {} GPU",
                cluster.gpus
            )),
            Loading::Multipath => Ok(LoadingSpec {
                mode,
                helpers: 1,
                staging_bytes: default_staging(cluster),
                direct_host,
                grouping,
            }),
        }
    }
}

impl LoadingSpec {
    /// This spec with direct host access set to `on` (a command line's
    /// `--direct-host`) for a run of `system`; fails, saying why, when
    /// `system` cannot read weights from host memory.
    pub fn with_direct_host(self, on: bool, system: System) -> Result<LoadingSpec, String> {
        if on {
            if let Some(why) = direct_host_refusal(system) {
                return Err(why.to_string());
            }
        }
        Ok(LoadingSpec {
            direct_host: on,
            ..self
        })
    }
}

impl super::PolicyName for Loading {
    const VALUES: &'static [Loading] = &[Loading::Direct, Loading::Multipath];
    fn name(self) -> &'static str {
        match self {
            Loading::Direct => "direct",
            Loading::Multipath => "multipath",
        }
    }
}

/// [`DEFAULT_STAGING_MIB`], at most an eighth of a GPU's usable memory.
fn default_staging(cluster: &Cluster) -> u64 {
    ((DEFAULT_STAGING_MIB * 1024.0 * 1024.0) as u64).min(cluster.hardware.usable_bytes() / 8)
}

/// Validates the loading fields of `raw` for `cluster`.
pub(super) fn validate(
    ctx: &Ctx,
    raw: &RawPolicy,
    cluster: &Cluster,
) -> Result<LoadingSpec, InputError> {
    let direct_host = validate_direct_host(ctx, raw)?;
    let mode = raw.loading.as_ref().map(|l| l.value).unwrap_or_default();
    if mode == Loading::Direct {
        if let Some(h) = &raw.multipath_helpers {
            return Err(ctx.err(
                &h.referenced,
                "policy.multipath_helpers",
                "only meaningful with `loading: multipath`",
            ));
        }
        if let Some(s) = &raw.multipath_staging_mib {
            return Err(ctx.err(
                &s.referenced,
                "policy.multipath_staging_mib",
                "only meaningful with `loading: multipath`",
            ));
        }
        if let Some(g) = &raw.multipath_grouping {
            return Err(ctx.err(
                &g.referenced,
                "policy.multipath_grouping",
                "only meaningful with `loading: multipath`",
            ));
        }
        return Ok(LoadingSpec {
            direct_host,
            ..LoadingSpec::default()
        });
    }
    let at = raw.loading.as_ref().expect("multipath was given");
    if cluster.gpus < 2 {
        return Err(ctx.err(
            &at.referenced,
            "policy.loading",
            format!(
                "`multipath` borrows other GPUs' links, but `cluster.gpus` is {}",
                cluster.gpus
            ),
        ));
    }
    let helpers = match &raw.multipath_helpers {
        Some(h) => {
            let k = ctx.at_least_one(h, "policy.multipath_helpers")?;
            if k >= cluster.gpus as u64 {
                return Err(ctx.err(
                    &h.referenced,
                    "policy.multipath_helpers",
                    format!(
                        "expected at most {} (the other GPUs of `cluster.gpus: {}`), got {k}",
                        cluster.gpus - 1,
                        cluster.gpus
                    ),
                ));
            }
            k as u32
        }
        None => 1,
    };
    let usable = cluster.hardware.usable_bytes();
    let staging_bytes = match &raw.multipath_staging_mib {
        Some(s) => {
            let mib = ctx.positive(s, "policy.multipath_staging_mib", "MiB")?;
            let bytes = (mib * 1024.0 * 1024.0).round();
            if bytes >= usable as f64 {
                return Err(ctx.err(
                    &s.referenced,
                    "policy.multipath_staging_mib",
                    format!(
                        "expected less than a GPU's usable {:.0} MiB, got {mib}",
                        usable as f64 / (1024.0 * 1024.0)
                    ),
                ));
            }
            bytes as u64
        }
        None => default_staging(cluster),
    };
    Ok(LoadingSpec {
        mode,
        helpers,
        staging_bytes,
        direct_host,
        grouping: raw
            .multipath_grouping
            .as_ref()
            .map(|g| g.value)
            .unwrap_or_default(),
    })
}

/// Why `system` cannot run layers from host memory, if it cannot: the
/// mapped memory must be pinned, and a preloaded system never loads.
pub fn direct_host_refusal(system: System) -> Option<&'static str> {
    match system {
        System::StopAndStart => Some(
            "`stop-and-start` holds weights in pageable memory, and kernels can read only pinned (mapped) host memory",
        ),
        System::Resident => Some(
            "`resident` loads every model before the clock starts, so no load is faster for it; it would only slow every pass",
        ),
        _ => None,
    }
}

/// Why `system` cannot honour `policy.offload` (`None`: it can): the
/// systems that never evict a cached stage have nothing to copy back.
pub fn offload_refusal(system: System) -> Option<&'static str> {
    match system {
        System::Resident => Some(
            "`resident` keeps every model in GPU memory and never evicts, so nothing is ever offloaded",
        ),
        System::Streaming => Some(
            "`streaming` caches nothing: its scratch weights are dropped after each pass, never offloaded",
        ),
        _ => None,
    }
}

/// Validates `policy.offload` for the policy's system.
pub(super) fn validate_offload(ctx: &Ctx, raw: &RawPolicy) -> Result<bool, InputError> {
    let Some(o) = &raw.offload else {
        return Ok(false);
    };
    if o.value {
        if let Some(why) = offload_refusal(raw.system) {
            return Err(ctx.err(&o.referenced, "policy.offload", why));
        }
    }
    Ok(o.value)
}

/// Validates `policy.direct_host` for the policy's system.
fn validate_direct_host(ctx: &Ctx, raw: &RawPolicy) -> Result<bool, InputError> {
    let Some(d) = &raw.direct_host else {
        return Ok(false);
    };
    if d.value {
        if let Some(why) = direct_host_refusal(raw.system) {
            return Err(ctx.err(&d.referenced, "policy.direct_host", why));
        }
    }
    Ok(d.value)
}
