//! The cost model shared by the scheduler (optimal layer grouping) and the
//! simulator (timing): a copy of `b` bytes over a link costs
//! `alpha + b / beta`, and a layer's compute time comes from calibrated
//! times, the synthetic model's `layer_s`, or a roofline of the profile.

use crate::hardware::{CalibratedTimes, HardwareProfile, LinkCost, ParallelPasses};
use crate::model::{Family, ModelShape, DTYPE_BYTES};
use std::ops::Range;

/// Seconds to move `bytes` over `link` in one transfer: `alpha + bytes / beta`.
pub fn copy_s(link: &LinkCost, bytes: u64) -> f64 {
    link.time(bytes)
}

/// Bytes of one tensor-parallel shard of layer `layer`: its parameter bytes
/// divided over `tp` GPUs, rounded up.
pub fn shard_layer_bytes(shape: &ModelShape, layer: usize, tp: u32) -> u64 {
    shape.layers[layer].param_bytes.div_ceil(tp.max(1) as u64)
}

/// Bytes of the activations a pipeline stage hands to the next one for a
/// batch of `batch` requests (fp16 hidden states of every item). Models
/// without known dimensions hand over nothing measurable (0 bytes; the
/// peer link's `alpha` still applies).
pub fn activation_bytes(shape: &ModelShape, batch: u32) -> u64 {
    match &shape.family {
        Family::Transformer(d) => batch as u64 * shape.items_per_request * d.hidden * DTYPE_BYTES,
        _ => 0,
    }
}

/// Seconds one GPU of a `tp`-way tensor-parallel group spends on layer
/// `layer` for a batch of `batch` requests.
///
/// - calibrated times for the model's architecture, when the profile has
///   them: linear interpolation between measured batch sizes (linear
///   extrapolation past the largest), divided by `tp`; a model whose
///   requests hold another number of items (`seq_len`) than the calibration
///   is looked up at the batch holding the same number of items (below the
///   smallest measured batch, that batch's time: launch-bound); with
///   `tp > 1` and a measured `tensor_parallel_pass_s` for that `tp`, the
///   layer keeps its share of the one-GPU pass, scaled to the measured
///   tensor-parallel pass (collectives and launch costs included);
/// - synthetic models: `layer_s * (1 + synthetic_batch_slope * (batch - 1)) / tp`;
/// - otherwise a roofline: `launch_s + max(shard bytes / hbm, FLOPs / tp / rate)`.
pub fn layer_compute_s(
    hw: &HardwareProfile,
    shape: &ModelShape,
    layer: usize,
    batch: u32,
    tp: u32,
) -> f64 {
    let tp = tp.max(1);
    let batch = batch.max(1);
    if let Some((c, at)) = calibration(hw, shape, batch) {
        let row = |i: usize| c.layer_s.get(i).and_then(|r| r.get(layer)).copied();
        if let Some(t) = calibrated(&c.batch_sizes, row, at) {
            let measured = c.tensor_parallel.get(&tp).and_then(|p| {
                let pass_tp = calibrated(&c.batch_sizes, |i| p.pass_s.get(i).copied(), at)?;
                let pass_1 = one_gpu_pass(c, at)?;
                (pass_1 > 0.0).then(|| t * pass_tp / pass_1)
            });
            return measured.unwrap_or(t / tp as f64);
        }
    }
    let tp = tp as f64;
    match &shape.family {
        Family::Synthetic { layer_s } => {
            layer_s * (1.0 + hw.compute.synthetic_batch_slope * (batch - 1) as f64) / tp
        }
        _ => {
            let l = &shape.layers[layer];
            let read = l.param_bytes as f64 / tp / hw.compute.hbm_bytes_per_s;
            let flops = l.flops_per_item * (shape.items_per_request * batch as u64) as f64 / tp;
            hw.compute.launch_s + read.max(flops / hw.compute.flops_per_s)
        }
    }
}

/// Seconds of layer `layer` as [`layer_compute_s`], for a pass whose
/// launches were queued ahead of the GPU (it waited for a copy, as a cold
/// pass does): the GPU's own time. The calibrated pass time is scaled by
/// the measured ratio of queued to issued passes (`queued_pass_s`), never
/// above 1; without a measurement, the same as [`layer_compute_s`].
pub fn layer_queued_s(
    hw: &HardwareProfile,
    shape: &ModelShape,
    layer: usize,
    batch: u32,
    tp: u32,
) -> f64 {
    measured_share(hw, shape, layer, batch, tp, queued, queued_tp)
        .unwrap_or_else(|| layer_compute_s(hw, shape, layer, batch, tp))
}

/// Host seconds replay spends issuing layer `layer` of a pass (the
/// calibrated pass time scaled by the measured share the host spent
/// issuing it, `issue_pass_s`, at most all of it); 0 without a
/// measurement, so passes on different GPUs never wait for the host.
pub fn layer_issue_s(
    hw: &HardwareProfile,
    shape: &ModelShape,
    layer: usize,
    batch: u32,
    tp: u32,
) -> f64 {
    measured_share(hw, shape, layer, batch, tp, issue, issue_tp).unwrap_or(0.0)
}

/// [`layer_compute_s`] scaled by [`pass_share`]; `None` without that
/// measurement.
fn measured_share(
    hw: &HardwareProfile,
    shape: &ModelShape,
    layer: usize,
    batch: u32,
    tp: u32,
    one_gpu: fn(&CalibratedTimes) -> &[f64],
    parallel: fn(&ParallelPasses) -> &[f64],
) -> Option<f64> {
    pass_share(hw, shape, batch, tp, one_gpu, parallel)
        .map(|share| layer_compute_s(hw, shape, layer, batch, tp) * share)
}

/// The share of the issued pass at `batch` that a measured part of it (per
/// batch size: `one_gpu` of the one-GPU times, or `parallel` of the `tp`
/// entry) makes, at most 1; the same for every layer. `None` without that
/// measurement.
fn pass_share(
    hw: &HardwareProfile,
    shape: &ModelShape,
    batch: u32,
    tp: u32,
    one_gpu: fn(&CalibratedTimes) -> &[f64],
    parallel: fn(&ParallelPasses) -> &[f64],
) -> Option<f64> {
    let (c, at) = calibration(hw, shape, batch.max(1))?;
    let sizes = &c.batch_sizes;
    let (part, pass) = match c.tensor_parallel.get(&tp.max(1)) {
        Some(p) if tp > 1 => (
            calibrated(sizes, |i| parallel(p).get(i).copied(), at)?,
            calibrated(sizes, |i| p.pass_s.get(i).copied(), at)?,
        ),
        _ => (
            calibrated(sizes, |i| one_gpu(c).get(i).copied(), at)?,
            one_gpu_pass(c, at)?,
        ),
    };
    (pass > 0.0).then(|| (part / pass).clamp(0.0, 1.0))
}

fn queued(c: &CalibratedTimes) -> &[f64] {
    &c.queued_pass_s
}

fn queued_tp(p: &ParallelPasses) -> &[f64] {
    &p.queued_pass_s
}

fn issue(c: &CalibratedTimes) -> &[f64] {
    &c.issue_pass_s
}

fn issue_tp(p: &ParallelPasses) -> &[f64] {
    &p.issue_pass_s
}

/// The calibrated times of `shape`'s architecture, if the profile has them,
/// and the (possibly fractional) batch of the measured request size that
/// holds as many items as a batch of `batch` of `shape`'s.
fn calibration<'a>(
    hw: &'a HardwareProfile,
    shape: &ModelShape,
    batch: u32,
) -> Option<(&'a CalibratedTimes, f64)> {
    let c = hw.calibrated.get(&shape.arch)?;
    let measured_items = match c.items_per_request {
        0 => crate::arch::builtin(&shape.arch)
            .map_or(shape.items_per_request, |s| s.items_per_request),
        n => n,
    };
    let items = (batch as u64 * shape.items_per_request) as f64;
    Some((c, items / measured_items as f64))
}

/// The calibrated one-GPU pass (every layer) at fractional batch `at`.
fn one_gpu_pass(c: &CalibratedTimes, at: f64) -> Option<f64> {
    calibrated(
        &c.batch_sizes,
        |i| c.layer_s.get(i).map(|r| r.iter().sum()),
        at,
    )
}

/// A measured value (`at(i)`: at batch size `sizes[i]`) at a (possibly
/// fractional) `batch` of the measured request size: linear between
/// measured sizes, extrapolated past the last.
fn calibrated(sizes: &[u32], at: impl Fn(usize) -> Option<f64>, batch: f64) -> Option<f64> {
    let n = sizes.len();
    if n == 0 {
        return None;
    }
    if n == 1 || batch <= sizes[0] as f64 {
        return at(0);
    }
    // The segment [i, i+1] holding `batch`, or the last one to extrapolate.
    let i = (0..n - 1)
        .find(|&i| batch <= sizes[i + 1] as f64)
        .unwrap_or(n - 2);
    let (b0, b1) = (sizes[i] as f64, sizes[i + 1] as f64);
    let (t0, t1) = (at(i)?, at(i + 1)?);
    if b1 <= b0 {
        return Some(t1);
    }
    Some(t0 + (t1 - t0) * (batch - b0) / (b1 - b0))
}

/// Prefix sums of per-layer compute times of one model at every batch size
/// up to `max_batch`, so a layer range costs two lookups.
#[derive(Debug, Clone)]
pub struct ComputeTable {
    layers: usize,
    /// `prefix[(batch - 1) * (layers + 1) + i]`: seconds of layers `0..i`.
    prefix: Vec<f64>,
    /// The same for passes queued ahead of the GPU ([`layer_queued_s`]).
    queued: Vec<f64>,
    /// The same for the host's issuing ([`layer_issue_s`]).
    issue: Vec<f64>,
}

impl ComputeTable {
    /// Builds the table for `shape` on `hw` with `tp`-way tensor parallelism.
    pub fn new(hw: &HardwareProfile, shape: &ModelShape, tp: u32, max_batch: u32) -> ComputeTable {
        let layers = shape.layers.len();
        let size = max_batch.max(1) as usize * (layers + 1);
        let (mut prefix, mut queued, mut issued) = (
            Vec::with_capacity(size),
            Vec::with_capacity(size),
            Vec::with_capacity(size),
        );
        for b in 1..=max_batch.max(1) {
            // The measured shares are per pass: once per batch size (as
            // layer_queued_s and layer_issue_s give them per layer).
            let queued_share = pass_share(hw, shape, b, tp, self::queued, queued_tp);
            let issue_share = pass_share(hw, shape, b, tp, self::issue, issue_tp);
            let (mut acc, mut acc_queued, mut acc_issue) = (0.0, 0.0, 0.0);
            prefix.push(0.0);
            queued.push(0.0);
            issued.push(0.0);
            for l in 0..layers {
                let t = layer_compute_s(hw, shape, l, b, tp);
                acc += t;
                acc_queued += queued_share.map_or(t, |share| t * share);
                acc_issue += issue_share.map_or(0.0, |share| t * share);
                prefix.push(acc);
                queued.push(acc_queued);
                issued.push(acc_issue);
            }
        }
        let issue = issued;
        ComputeTable {
            layers,
            prefix,
            queued,
            issue,
        }
    }

    /// The table's times as bits, in one sequence: two tables with equal
    /// keys give every lookup the same answer (models copied from one
    /// template share a table: [`ComputeTable::dedup`]).
    fn key(&self) -> impl Iterator<Item = u64> + '_ {
        std::iter::once(self.layers as u64).chain(
            self.prefix
                .iter()
                .chain(&self.queued)
                .chain(&self.issue)
                .map(|x| x.to_bits()),
        )
    }

    /// Tables with equal ones kept once: the distinct tables, in order of
    /// first appearance, and for each input its index among them. Many
    /// models copied from one template then read one table, which stays in
    /// cache, instead of one each. Inputs `i` in `0..n` are `build(i)`, except that one which
    /// `same_as_before(i)` says equals input `i - 1` is not built at all
    /// (models copied from one template are consecutive: 100,000 of them
    /// build one table).
    pub fn dedup(
        n: usize,
        same_as_before: impl Fn(usize) -> bool,
        mut build: impl FnMut(usize) -> ComputeTable,
    ) -> (Vec<ComputeTable>, Vec<u32>) {
        let mut index: std::collections::HashMap<Vec<u64>, u32> = std::collections::HashMap::new();
        let mut distinct = Vec::new();
        let mut of: Vec<u32> = Vec::new();
        for i in 0..n {
            if i > 0 && same_as_before(i) {
                of.push(of[i - 1]);
                continue;
            }
            let t = build(i);
            of.push(*index.entry(t.key().collect()).or_insert_with(|| {
                distinct.push(t);
                (distinct.len() - 1) as u32
            }));
        }
        (distinct, of)
    }

    /// Host seconds spent issuing `layers` at `batch` ([`layer_issue_s`]).
    pub fn issue_time(&self, layers: Range<usize>, batch: u32) -> f64 {
        Self::span(&self.issue, self.layers, layers, batch)
    }

    /// Seconds to run `layers` for a batch of `batch` (clamped to the
    /// table's range), issued by the host as they run.
    pub fn time(&self, layers: Range<usize>, batch: u32) -> f64 {
        Self::span(&self.prefix, self.layers, layers, batch)
    }

    /// Seconds the GPU takes for `layers` at `batch` when their launches
    /// were queued ahead of it ([`layer_queued_s`]); at most [`Self::time`].
    pub fn queued_time(&self, layers: Range<usize>, batch: u32) -> f64 {
        Self::span(&self.queued, self.layers, layers, batch)
    }

    fn span(prefix: &[f64], n: usize, layers: Range<usize>, batch: u32) -> f64 {
        let rows = prefix.len() / (n + 1);
        let b = (batch.max(1) as usize).min(rows) - 1;
        let row = &prefix[b * (n + 1)..(b + 1) * (n + 1)];
        row[layers.end] - row[layers.start]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{CalibratedTimes, ParallelPasses};

    fn hw() -> HardwareProfile {
        HardwareProfile::resolve("h200-pcie5", None).unwrap()
    }

    #[test]
    fn dedup_keeps_equal_tables_once_and_skips_repeats() {
        let h = hw();
        let a = ModelShape::synthetic("a", 4, 1000, 0.002);
        let b = ModelShape::synthetic("b", 3, 1000, 0.001);
        let shapes = [&a, &a, &b, &a, &b, &b];
        let built = std::cell::Cell::new(0);
        let (tables, of) = ComputeTable::dedup(
            shapes.len(),
            |i| std::ptr::eq(shapes[i], shapes[i - 1]),
            |i| {
                built.set(built.get() + 1);
                ComputeTable::new(&h, shapes[i], 1, 4)
            },
        );
        assert_eq!(of, vec![0, 0, 1, 0, 1, 1]);
        assert_eq!(tables.len(), 2);
        // Inputs 1 and 5 repeat the one before: not built.
        assert_eq!(built.get(), 4);
        assert_eq!(
            tables[1].time(0..3, 2),
            ComputeTable::new(&h, &b, 1, 4).time(0..3, 2)
        );
    }

    #[test]
    fn synthetic_layers_grow_with_batch_as_profile_says() {
        let h = hw();
        let m = ModelShape::synthetic("s", 4, 1000, 0.002);
        assert_eq!(layer_compute_s(&h, &m, 0, 1, 1), 0.002);
        let slope = h.compute.synthetic_batch_slope;
        let t = layer_compute_s(&h, &m, 0, 5, 2);
        assert!((t - 0.002 * (1.0 + 4.0 * slope) / 2.0).abs() < 1e-15);
        let table = ComputeTable::new(&h, &m, 1, 4);
        assert!((table.time(1..4, 1) - 0.006).abs() < 1e-15);
        assert!((table.time(0..4, 9) - table.time(0..4, 4)).abs() < 1e-15);
    }

    #[test]
    fn roofline_is_memory_bound_at_batch_one_and_compute_bound_later() {
        let h = hw();
        let m = crate::arch::builtin("opt-13b").unwrap();
        let t1 = layer_compute_s(&h, &m, 1, 1, 1);
        let read = m.layers[1].param_bytes as f64 / h.compute.hbm_bytes_per_s;
        assert!(t1 >= read + h.compute.launch_s - 1e-12);
        let t64 = layer_compute_s(&h, &m, 1, 64, 1);
        assert!(t64 > t1);
        // Tensor parallelism splits the work.
        assert!(layer_compute_s(&h, &m, 1, 64, 4) < t64 / 3.0);
    }

    #[test]
    fn calibrated_times_interpolate() {
        let mut h = hw();
        let m = ModelShape::synthetic("cal", 2, 1000, 1.0);
        h.calibrated.insert(
            "cal".into(),
            CalibratedTimes {
                batch_sizes: vec![1, 4],
                layer_s: vec![vec![0.001, 0.002], vec![0.004, 0.008]],
                items_per_request: 0,
                ..Default::default()
            },
        );
        assert_eq!(layer_compute_s(&h, &m, 0, 1, 1), 0.001);
        assert!((layer_compute_s(&h, &m, 1, 2, 1) - 0.004).abs() < 1e-15);
        assert!((layer_compute_s(&h, &m, 0, 7, 1) - 0.007).abs() < 1e-15);
    }

    #[test]
    fn calibrated_times_follow_items_per_batch() {
        let mut h = hw();
        let mut m = crate::arch::builtin("opt-125m").unwrap();
        h.calibrated.insert(
            "opt-125m".into(),
            CalibratedTimes {
                batch_sizes: vec![1, 2, 4, 8],
                layer_s: vec![
                    vec![0.001; 14],
                    vec![0.002; 14],
                    vec![0.004; 14],
                    vec![0.008; 14],
                ],
                items_per_request: 128,
                ..Default::default()
            },
        );
        // Half the tokens per request: batch 8 costs what batch 4 was measured at.
        m.items_per_request = 64;
        assert!((layer_compute_s(&h, &m, 3, 8, 1) - 0.004).abs() < 1e-15);
        assert!((layer_compute_s(&h, &m, 3, 3, 1) - 0.0015).abs() < 1e-15);
        // Absent means the architecture's default (128 for OPT).
        h.calibrated.get_mut("opt-125m").unwrap().items_per_request = 0;
        assert!((layer_compute_s(&h, &m, 3, 8, 1) - 0.004).abs() < 1e-15);
        m.items_per_request = 128;
        assert!((layer_compute_s(&h, &m, 3, 8, 1) - 0.008).abs() < 1e-15);
    }

    #[test]
    fn measured_tensor_parallel_passes_replace_ideal_scaling() {
        let mut h = hw();
        let m = ModelShape::synthetic("cal", 2, 1000, 1.0);
        h.calibrated.insert(
            "cal".into(),
            CalibratedTimes {
                batch_sizes: vec![1, 4],
                layer_s: vec![vec![0.001, 0.003], vec![0.002, 0.006]],
                items_per_request: 0,
                queued_pass_s: vec![0.002, 0.004],
                issue_pass_s: vec![0.001, 0.002],
                tensor_parallel: [(
                    2,
                    ParallelPasses {
                        pass_s: vec![0.006, 0.010],
                        queued_pass_s: vec![0.003, 0.012],
                        issue_pass_s: vec![],
                    },
                )]
                .into(),
            },
        );
        // Each layer keeps its one-GPU share of the measured tp = 2 pass.
        assert!((layer_compute_s(&h, &m, 0, 1, 2) - 0.0015).abs() < 1e-15);
        assert!((layer_compute_s(&h, &m, 1, 4, 2) - 0.0075).abs() < 1e-15);
        // Between measured sizes both passes are interpolated.
        let (pass_tp, pass_1) = (0.006 + 0.004 / 3.0, 0.004 + 0.004 / 3.0);
        let want = (0.003 + 0.003 / 3.0) * pass_tp / pass_1;
        assert!((layer_compute_s(&h, &m, 1, 2, 2) - want).abs() < 1e-15);
        // A degree not measured scales ideally.
        assert!((layer_compute_s(&h, &m, 1, 1, 4) - 0.003 / 4.0).abs() < 1e-15);
        // Queued behind a copy: the measured share of the issued pass, at
        // most all of it.
        assert!((layer_queued_s(&h, &m, 1, 1, 1) - 0.0015).abs() < 1e-15);
        assert!((layer_queued_s(&h, &m, 0, 1, 2) - 0.00075).abs() < 1e-15);
        assert!((layer_queued_s(&h, &m, 1, 4, 2) - 0.0075).abs() < 1e-15);
        let table = ComputeTable::new(&h, &m, 2, 4);
        assert!((table.queued_time(0..2, 1) - 0.003).abs() < 1e-15);
        assert!((table.time(0..2, 1) - 0.006).abs() < 1e-15);
        // The host's issuing: a measured share of the pass, or nothing.
        assert!((layer_issue_s(&h, &m, 1, 1, 1) - 0.00075).abs() < 1e-15);
        assert_eq!(table.issue_time(0..2, 1), 0.0);
        assert_eq!(layer_issue_s(&hw(), &m, 1, 1, 1), 0.0);
    }

    #[test]
    fn copies_cost_alpha_plus_bytes_over_beta() {
        let h = hw();
        let t = copy_s(&h.pinned, 55_500_000_000);
        assert!((t - (1.0 + 2.6e-6)).abs() < 1e-12);
        let m = crate::arch::builtin("opt-125m").unwrap();
        assert_eq!(activation_bytes(&m, 2), 2 * 128 * 768 * 2);
    }
}
