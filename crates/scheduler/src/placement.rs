//! Static placement: which GPU holds each shard of each model, the layers of
//! each pipeline stage, and how each stage's shard is split into copies for
//! each batch size a load can be for.

use crate::grouping;
use crate::grouping::{DirectCosts, HelperLinks};
use crate::traits::SystemTraits;
use crate::Source;
use smallvec::SmallVec;
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;
use switchyard_core::cost::{layer_compute_s, shard_layer_bytes};
use switchyard_core::direct_host;
use switchyard_core::hardware::{HardwareProfile, LinkCost};
use switchyard_core::model::{stage_partition, Dtype, ModelShape};
use switchyard_core::workload::{Grouping, ModelSpec, System};

/// Where one model lives and how its shards are loaded.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// `gpus[stage * tp + rank]`: the GPU holding that shard. All distinct.
    pub gpus: SmallVec<[u32; 4]>,
    /// Layers of each stage (absolute layer indices).
    pub stages: SmallVec<[Range<u32>; 2]>,
    /// Bytes of one shard of each stage on one GPU (sum of the stage's
    /// per-layer shard bytes, each layer's bytes divided by `tp`, rounded
    /// up), less the layers of [`Placement::direct`], which stay in host
    /// memory: what a load copies and the stage's region in the pool.
    pub shard_bytes: SmallVec<[u64; 2]>,
    /// Per stage: the layers (absolute indices, a prefix of the stage;
    /// empty without `policy.direct_host`) that run from mapped pinned
    /// host memory: never copied, no GPU memory, read by every pass.
    pub direct: SmallVec<[Range<u32>; 2]>,
    /// Per stage: bytes of the shard's host image before its first copied
    /// byte (the layers of [`Placement::direct`]); copies start there.
    pub direct_bytes: SmallVec<[u64; 2]>,
    /// The model's largest batch: groupings are cached for batches `1..=max_batch`.
    pub max_batch: u32,
    /// `groupings[stage][batch - 1]`: the stage's copy groups planned with the
    /// compute times of that batch size (read through [`Placement::groups_for`]).
    /// Shared by every model with the same per-layer bytes and compute
    /// times (copies of one template): one plan in cache, not one each.
    groupings: Arc<Vec<Vec<StageGroups>>>,
    /// `helper_groupings[lenders - 1][stage][batch - 1]`: the copy groups
    /// of a multi-path load with that many helper links lent, planned with
    /// the copy time a group split over them takes
    /// ([`grouping::optimal_split`]); empty without helper-aware grouping
    /// (then every load uses [`Placement::groups_for`]).
    helper_groupings: Vec<Vec<Vec<StageGroups>>>,
}

/// How one stage's shard is split into copies, for one batch size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageGroups {
    /// Copy groups: absolute layer ranges, in order, covering the stage's
    /// copied layers (all but [`Placement::direct`]).
    pub ranges: Vec<Range<u32>>,
    /// For each group: `(offset within the stage's GPU region, bytes)` on
    /// one GPU; in the shard's host image the group starts
    /// [`Placement::direct_bytes`] further on.
    pub bytes: Vec<(u64, u64)>,
}

impl Placement {
    /// The GPUs of the tensor-parallel group of `stage` (rank order).
    pub fn stage_gpus(&self, stage: u32) -> &[u32] {
        let tp = self.tp as usize;
        &self.gpus[stage as usize * tp..(stage as usize + 1) * tp]
    }

    /// The copy groups of `stage` for a load whose copies a compute of
    /// `batch` requests runs behind: the grouping policy (for PipeSwitch's
    /// `optimal`, the DP of [`grouping::optimal`]) fed the per-layer compute
    /// times of that batch size. `batch` is clamped to `1..=max_batch`.
    ///
    /// Which batch a load is for is the scheduler's decision; once a load is
    /// issued, its copies (and the waits matched to them) keep the grouping
    /// it was issued with.
    pub fn groups_for(&self, stage: u32, batch: u32) -> &StageGroups {
        let b = batch.clamp(1, self.max_batch.max(1)) as usize;
        &self.groupings[stage as usize][b - 1]
    }

    /// The copy groups of `stage` for a load of `batch` that `lenders`
    /// helper links carry besides the target's: the helper-aware plan when
    /// the placement has one for that many, else [`Placement::groups_for`].
    pub fn groups_via(&self, stage: u32, batch: u32, lenders: u32) -> &StageGroups {
        match lenders
            .checked_sub(1)
            .and_then(|i| self.helper_groupings.get(i as usize))
        {
            Some(by_stage) => {
                let b = batch.clamp(1, self.max_batch.max(1)) as usize;
                &by_stage[stage as usize][b - 1]
            }
            None => self.groups_for(stage, batch),
        }
    }

    /// Copy groups of the helper-aware plan with every helper lent, at the
    /// model's largest batch, over its stages (0 without one): what
    /// `summary.json` reports beside the one-link plan's count.
    pub fn helper_groups(&self) -> (u64, u64) {
        let b = self.max_batch.max(1);
        let one: u64 = (0..self.pp)
            .map(|s| self.groups_for(s, b).ranges.len() as u64)
            .sum();
        let all = self.helper_groupings.len() as u32;
        if all == 0 {
            return (0, one);
        }
        let split = (0..self.pp)
            .map(|s| self.groups_via(s, b, all).ranges.len() as u64)
            .sum();
        (split, one)
    }

    /// Direct host access: `(layers, bytes)` of the model left in pinned
    /// host memory, over its stages (`(0, 0)` without `policy.direct_host`).
    pub fn direct_host(&self) -> (u64, u64) {
        let layers = self.direct.iter().map(|r| r.len() as u64).sum();
        (layers, self.direct_bytes.iter().sum())
    }
}

/// The copy grouping `system` uses: PipeSwitch and streaming follow
/// `grouping`; Computron, stop-and-start and resident copy a whole stage
/// shard at once ([`SystemTraits::grouped`]).
pub fn effective_grouping(system: System, grouping: Grouping) -> Grouping {
    SystemTraits::of(system).grouping(grouping)
}

/// The `(tp, pp)` `system` runs model `m` with. Computron and resident use
/// the model's `parallel` config; PipeSwitch, stop-and-start and streaming
/// are one-GPU systems, as published: each model runs whole on one GPU
/// ([`SystemTraits::model_parallel`]).
pub fn parallelism(system: System, m: &ModelSpec) -> (u32, u32) {
    if SystemTraits::of(system).model_parallel {
        (m.tp.max(1), m.pp.max(1))
    } else {
        (1, 1)
    }
}

/// Places every model (with [`parallelism`]): each takes `tp * pp` distinct GPUs starting at the
/// base GPU (wrapping) that keeps the most loaded GPU lightest (ties: lowest base).
/// Each stage's copy groups are planned once per batch size `1..=max_batch`
/// with that batch's per-layer compute times ([`Placement::groups_for`]).
pub fn place(
    models: &[ModelSpec],
    gpus: u32,
    hw: &HardwareProfile,
    system: System,
    grouping: Grouping,
) -> Vec<Placement> {
    place_typed(models, &[], gpus, hw, system, grouping)
}

/// [`place`] for models whose weights are of `dtypes[i]` (fp16 past the
/// end of `dtypes`): each model's copy groups are planned with the compute
/// times its weight type runs at ([`HardwareProfile::for_dtype`]).
pub fn place_typed(
    models: &[ModelSpec],
    dtypes: &[Dtype],
    gpus: u32,
    hw: &HardwareProfile,
    system: System,
    grouping: Grouping,
) -> Vec<Placement> {
    place_with(models, dtypes, gpus, hw, &Placing::new(system, grouping))
}

/// How models are placed besides their shapes and the cluster: the system
/// and grouping, and the options that change their plans.
#[derive(Debug, Clone, Copy)]
pub struct Placing<'a> {
    /// The serving system.
    pub system: System,
    /// The layer grouping asked for (the system may override it).
    pub grouping: Grouping,
    /// `policy.direct_host`: leave the first layers the grouping DP picks
    /// in pinned host memory.
    pub direct_host: bool,
    /// Multi-path loads' helper links and most helpers (`k`): one-GPU
    /// stages' groups also planned for `1..=k` helpers lent; `None`:
    /// one-link plans only.
    pub helpers: Option<(&'a HelperLinks, u32)>,
}

impl Placing<'_> {
    /// `system` with `grouping`, no direct host access, one-link plans.
    pub fn new(system: System, grouping: Grouping) -> Placing<'static> {
        Placing {
            system,
            grouping,
            direct_host: false,
            helpers: None,
        }
    }
}

/// The profile each weight type of `dtypes` sees, made once (fp16 is `hw`
/// itself, so absent).
fn typed_profiles(hw: &HardwareProfile, dtypes: &[Dtype]) -> Vec<(Dtype, HardwareProfile)> {
    Dtype::ALL
        .into_iter()
        .filter(|&d| d != Dtype::Fp16 && dtypes.contains(&d))
        .map(|d| (d, hw.for_dtype(d)))
        .collect()
}

/// Adds to `placed` the copy groups of one-GPU stages planned for
/// multi-path loads over `links` with `1..=k` helpers lent
/// ([`Placement::groups_via`]) when the grouping is PipeSwitch's `optimal`
/// (the other groupings do not depend on the links).
fn plan_helpers(
    placed: &mut [Placement],
    models: &[ModelSpec],
    dtypes: &[Dtype],
    (hw, typed): (&HardwareProfile, &[(Dtype, HardwareProfile)]),
    how: &Placing,
) {
    let effective = SystemTraits::of(how.system).grouping(how.grouping);
    let Some((links, k)) = how.helpers.filter(|_| effective == Grouping::Optimal) else {
        return;
    };
    for (i, p) in placed.iter_mut().enumerate() {
        if p.tp != 1 {
            continue;
        }
        let m = &models[i];
        let d = dtypes.get(i).copied().unwrap_or_default();
        let hw = typed.iter().find(|(t, _)| *t == d).map_or(hw, |(_, p)| p);
        p.helper_groupings = (1..=k)
            .map(|lenders| {
                (0..p.pp as usize)
                    .map(|s| {
                        let stage = p.stages[s].clone();
                        let copied = p.direct[s].end as usize..stage.end as usize;
                        let host = stage.start as usize..p.direct[s].end as usize;
                        let bytes: Vec<u64> = copied
                            .clone()
                            .map(|l| shard_layer_bytes(&m.shape, l, 1))
                            .collect();
                        (1..=p.max_batch)
                            .map(|b| {
                                let compute: Vec<f64> = copied
                                    .clone()
                                    .map(|l| {
                                        let c = layer_compute_s(hw, &m.shape, l, b, 1);
                                        with_host_reads(hw, &m.shape, &host, l, b, c)
                                    })
                                    .collect();
                                let gs = grouping::optimal_split(&bytes, &compute, links, lenders);
                                stage_groups(&gs, &bytes, copied.start)
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
    }
}

/// [`place_typed`] as `how` says: with `how.direct_host` the first layers
/// of each one-GPU stage that the grouping DP picks
/// ([`grouping::with_direct`], costed at the model's largest batch) left
/// in pinned host memory ([`Placement::direct`]), the copied layers then
/// grouped per batch size as before; with `how.helpers` also the groups of
/// multi-path loads ([`Placement::groups_via`]).
pub fn place_with(
    models: &[ModelSpec],
    dtypes: &[Dtype],
    gpus: u32,
    hw: &HardwareProfile,
    how: &Placing,
) -> Vec<Placement> {
    let typed = typed_profiles(hw, dtypes);
    let mut placed = place_one_link(models, dtypes, gpus, (hw, &typed), how);
    plan_helpers(&mut placed, models, dtypes, (hw, &typed), how);
    placed
}

/// [`place_with`] without the multi-path plans.
fn place_one_link(
    models: &[ModelSpec],
    dtypes: &[Dtype],
    gpus: u32,
    (hw, typed): (&HardwareProfile, &[(Dtype, HardwareProfile)]),
    how: &Placing,
) -> Vec<Placement> {
    let (system, grouping, direct_host) = (how.system, how.grouping, how.direct_host);
    let hw_of = |i: usize| -> &HardwareProfile {
        let d = dtypes.get(i).copied().unwrap_or_default();
        typed.iter().find(|(t, _)| *t == d).map_or(hw, |(_, p)| p)
    };
    let mut load = vec![0u64; gpus as usize];
    // `(load, GPU)` of every GPU: a one-GPU model's base is the first.
    let mut by_load: BTreeSet<(u64, usize)> = (0..gpus as usize).map(|g| (0, g)).collect();
    // Groupings planned so far, by their inputs' bits (per stage: the
    // layers' bytes, then per batch size their compute times).
    let mut planned: HashMap<Vec<u64>, Arc<Vec<Vec<StageGroups>>>> = HashMap::new();
    let traits = SystemTraits::of(system);
    let grouping = traits.grouping(grouping);
    let link = match traits.source {
        Source::Pageable => &hw.pageable,
        Source::Pinned => &hw.pinned,
    };
    // Everything of model `i`'s placement but its GPUs.
    let mut template = |i: usize, m: &ModelSpec, tp: u32, pp: u32| -> Placement {
        let hw = hw_of(i);
        let stages: Vec<Range<usize>> = stage_partition(&m.shape, pp as usize);
        let max_batch = m.max_batch.max(1);
        // Layers left in host memory: only where one GPU runs the
        // whole model (tp = pp = 1), from pinned memory.
        let direct: Vec<usize> = stages
            .iter()
            .map(|r| {
                let one_gpu = tp == 1 && pp == 1;
                let pinned = traits.source == Source::Pinned;
                if direct_host && one_gpu && pinned {
                    direct_prefix(
                        hw,
                        &m.shape,
                        r.clone(),
                        max_batch,
                        (grouping, link),
                        how.helpers,
                    )
                } else {
                    0
                }
            })
            .collect();
        let layer_bytes = |l| shard_layer_bytes(&m.shape, l, tp);
        let direct_bytes: SmallVec<[u64; 2]> = stages
            .iter()
            .zip(&direct)
            .map(|(r, &d)| (r.start..r.start + d).map(layer_bytes).sum())
            .collect();
        let shard_bytes: SmallVec<[u64; 2]> = stages
            .iter()
            .zip(&direct)
            .map(|(r, &d)| (r.start + d..r.end).map(layer_bytes).sum())
            .collect();
        // Per stage: its copied layers, their bytes and, per batch size,
        // their compute times (reading host memory where layers stay there).
        let inputs: Vec<StageInputs> = stages
            .iter()
            .zip(&direct)
            .map(|(r, &d)| {
                let copied = r.start + d..r.end;
                let bytes: Vec<u64> = copied.clone().map(layer_bytes).collect();
                let host = r.start..r.start + d;
                let compute = (1..=max_batch)
                    .map(|b| {
                        copied
                            .clone()
                            .map(|l| {
                                let c = layer_compute_s(hw, &m.shape, l, b, tp);
                                with_host_reads(hw, &m.shape, &host, l, b, c)
                            })
                            .collect()
                    })
                    .collect();
                (copied, bytes, compute)
            })
            .collect();
        let mut key = Vec::new();
        for (copied, bytes, compute) in &inputs {
            key.extend([copied.start as u64, copied.end as u64]);
            key.extend(bytes);
            key.extend(compute.iter().flatten().map(|x| x.to_bits()));
        }
        let groupings = planned
            .entry(key)
            .or_insert_with(|| {
                let plan = inputs
                    .iter()
                    .map(|(copied, bytes, compute)| {
                        compute
                            .iter()
                            .map(|c| {
                                let gs = grouping::groups(grouping, bytes, c, link);
                                stage_groups(&gs, bytes, copied.start)
                            })
                            .collect()
                    })
                    .collect();
                Arc::new(plan)
            })
            .clone();
        Placement {
            tp,
            pp,
            gpus: SmallVec::new(),
            stages: stages
                .iter()
                .map(|r| r.start as u32..r.end as u32)
                .collect(),
            shard_bytes,
            direct: stages
                .iter()
                .zip(&direct)
                .map(|(r, &d)| r.start as u32..(r.start + d) as u32)
                .collect(),
            direct_bytes,
            max_batch,
            groupings,
            helper_groupings: Vec::new(),
        }
    };
    let mut placed: Vec<Placement> = Vec::with_capacity(models.len());
    for (i, m) in models.iter().enumerate() {
        let (tp, pp) = parallelism(system, m);
        // A model equal to the one before (copies of one template) has its
        // layers, bytes and groupings: only its GPUs are its own.
        let same = i > 0 && {
            let prev = &models[i - 1];
            prev.shape == m.shape
                && prev.max_batch == m.max_batch
                && parallelism(system, prev) == (tp, pp)
                && dtypes.get(i - 1) == dtypes.get(i)
        };
        let mut p = match placed.last().filter(|_| same) {
            Some(prev) => Placement {
                gpus: SmallVec::new(),
                ..prev.clone()
            },
            None => template(i, m, tp, pp),
        };
        let (width, shard_bytes) = ((tp * pp) as usize, &p.shard_bytes);
        let gpu_at = |base: usize, i: usize| ((base + i) % gpus as usize) as u32;
        // The least loaded GPU (the lowest of equals) for a one-GPU
        // model: what the scan below finds, without scanning.
        let least = by_load.first().filter(|_| width == 1).map(|&(_, g)| g);
        let base = least
            .or_else(|| {
                (0..gpus as usize).min_by_key(|&b| {
                    (0..width)
                        .map(|i| load[gpu_at(b, i) as usize] + shard_bytes[i / tp as usize])
                        .max()
                        .unwrap_or(0)
                })
            })
            .unwrap_or(0);
        let placed_gpus: SmallVec<[u32; 4]> = (0..width).map(|i| gpu_at(base, i)).collect();
        for (i, g) in placed_gpus.iter().enumerate() {
            let g = *g as usize;
            by_load.remove(&(load[g], g));
            load[g] += shard_bytes[i / tp as usize];
            by_load.insert((load[g], g));
        }
        p.gpus = placed_gpus;
        placed.push(p);
    }
    placed
}

/// A stage's copied layers, their bytes and, per batch size, their compute
/// times: what its copy groups are planned from.
type StageInputs = (Range<usize>, Vec<u64>, Vec<Vec<f64>>);

/// `compute` seconds of layer `l` of `shape` for a pass of `batch`
/// requests, or longer when it reads host memory with the layers `host`
/// left there (a head tied to a host-resident embedding): its reads then
/// run at the direct-host rate, the copies being done by then.
fn with_host_reads(
    hw: &HardwareProfile,
    shape: &ModelShape,
    host: &Range<usize>,
    l: usize,
    batch: u32,
    compute: f64,
) -> f64 {
    if host.is_empty() {
        return compute;
    }
    let read = direct_host::host_read_bytes(shape, host, l, batch);
    compute.max(direct_host::read_s(hw, read, false))
}

/// Most a warm pass may slow down (as a fraction of its time) because the
/// layers left in host memory read it in every pass (`policy.direct_host`).
pub const WARM_SLOWDOWN_MAX: f64 = 0.02;

/// How many of the first layers of `stage` the grouping DP leaves in host
/// memory ([`grouping::with_direct`]), costed for a cold pass of `batch`
/// requests. With helper-aware multi-path plans (`helpers`: the links and
/// `k`) and PipeSwitch's `optimal` grouping, costed for the load the plans
/// are made for when every helper lends ([`grouping::with_direct_split`]:
/// the copies split over `k + 1` links, the host layers' reads holding
/// the target's); the choice is one per placement, whatever a load finds.
fn direct_prefix(
    hw: &HardwareProfile,
    shape: &ModelShape,
    stage: Range<usize>,
    batch: u32,
    (grouping, link): (Grouping, &LinkCost),
    helpers: Option<(&HelperLinks, u32)>,
) -> usize {
    let bytes: Vec<u64> = stage.clone().map(|l| shape.layers[l].param_bytes).collect();
    let compute: Vec<f64> = stage
        .clone()
        .map(|l| layer_compute_s(hw, shape, l, batch, 1))
        .collect();
    // The host layers are a prefix, so layer `l` among them reads what it
    // reads with `start..=l` left there; a copied layer reads host memory
    // only as a head tied to the embedding (`compute_after`).
    let first = stage.start..stage.start + 1;
    let mut costs = DirectCosts::default();
    // A warm pass with `0..m` in host memory: `warm[0..m]` then
    // `compute_after[m..]`.
    let mut warm = Vec::with_capacity(stage.len());
    for (i, l) in stage.clone().enumerate() {
        let read = direct_host::host_read_bytes(shape, &(stage.start..l + 1), l, batch);
        costs
            .time
            .push(compute[i].max(direct_host::read_s(hw, read, true)));
        costs.link.push(direct_host::link_s(hw, read));
        warm.push(compute[i].max(direct_host::read_s(hw, read, false)));
        costs
            .compute_after
            .push(with_host_reads(hw, shape, &first, l, batch, compute[i]));
    }
    // The layers stay in host memory while the model is loaded: at most
    // those that slow a warm pass by `WARM_SLOWDOWN_MAX` (its loss grows
    // with every layer added).
    let pass: f64 = compute.iter().sum();
    let after: f64 = costs.compute_after.iter().sum();
    let (mut host, mut rest) = (0.0f64, after);
    costs.max_layers = 0;
    for m in 1..=stage.len() {
        host += warm[m - 1];
        rest -= costs.compute_after[m - 1];
        if host + rest > pass * (1.0 + WARM_SLOWDOWN_MAX) {
            break;
        }
        costs.max_layers = m;
    }
    match helpers.filter(|&(_, k)| k > 0 && grouping == Grouping::Optimal) {
        Some((links, k)) => grouping::with_direct_split(&bytes, &compute, links, k, &costs).direct,
        None => grouping::with_direct(grouping, &bytes, &compute, link, &costs).direct,
    }
}

/// `gs` (ranges relative to a stage starting at layer `start`, over the
/// stage's per-layer `bytes`) as absolute ranges with their shard offsets.
fn stage_groups(gs: &[Range<usize>], bytes: &[u64], start: usize) -> StageGroups {
    let mut off = 0u64;
    let mut out = StageGroups {
        ranges: Vec::with_capacity(gs.len()),
        bytes: Vec::with_capacity(gs.len()),
    };
    for g in gs {
        let b: u64 = bytes[g.clone()].iter().sum();
        out.bytes.push((off, b));
        off += b;
        out.ranges
            .push((start + g.start) as u32..(start + g.end) as u32);
    }
    out
}
