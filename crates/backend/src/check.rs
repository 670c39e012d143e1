//! Correctness check of a device's forward pass against the f32 host
//! reference ([`crate::model::reference`]) on tiny transformers, with fresh
//! random weights each call (used by the tests and by `replay selftest`).

use crate::device::{decode, Device, Dtype, StreamKind};
use crate::forward;
use crate::model::{reference, transformer_shape, ModelLayout};
use anyhow::Result;
use switchyard_core::model::TransformerDims;

/// Relative error a forward pass in `dtype` may show against the f32
/// reference on the tiny models: the rounding of activations to the type
/// through the layers (fp16 ~1e-3 per rounding, bf16 ~8x that, fp32 only
/// the order of the sums).
pub fn tolerance(dtype: Dtype) -> f64 {
    match dtype {
        Dtype::Fp16 => 1e-2,
        Dtype::Bf16 => 3e-2,
        Dtype::Fp32 => 1e-4,
    }
}

/// The tiny transformer `arch` with `dims` and `seq` tokens, laid out in `dtype`.
pub fn tiny_layout(
    arch: &str,
    dims: TransformerDims,
    seq: u64,
    dtype: Dtype,
) -> Result<ModelLayout> {
    ModelLayout::typed(&transformer_shape(arch, dims, seq).with_dtype(dtype), dtype)
}

/// Runs `requests` through a tiny fp16 model on `dev` (GPU 0) and through
/// the reference; returns `||out - ref|| / ||ref||` over all outputs.
pub fn forward_check(
    dev: &mut dyn Device,
    arch: &str,
    dims: TransformerDims,
    seq: u64,
    requests: &[u64],
    seed: u64,
) -> Result<f64> {
    pass_check(dev, (arch, dims, seq), requests, seed, Dtype::Fp16, false)
}

/// [`forward_check`] of the tiny model laid out in `dtype` (weights and
/// the device's pass in that type).
pub fn forward_check_typed(
    dev: &mut dyn Device,
    model: (&str, TransformerDims, u64),
    requests: &[u64],
    seed: u64,
    dtype: Dtype,
) -> Result<f64> {
    pass_check(dev, model, requests, seed, dtype, false)
}

/// [`forward_check`] with the embedding (layer 0) read in place from the
/// pinned host image mapped for the GPU ([`Device::map_host`]: direct host
/// access), the other layers copied: kernels reading weights where they
/// lie must compute the same outputs. `replay selftest` and the tests run
/// it; on CUDA it exercises mapped pinned memory.
pub fn direct_host_check(
    dev: &mut dyn Device,
    arch: &str,
    dims: TransformerDims,
    seq: u64,
    requests: &[u64],
    seed: u64,
) -> Result<f64> {
    pass_check(dev, (arch, dims, seq), requests, seed, Dtype::Fp16, true)
}

/// The pass of [`forward_check_typed`]; with `host_embedding`, layer 0 is
/// read from mapped host memory instead of its first copy.
fn pass_check(
    dev: &mut dyn Device,
    (arch, dims, seq): (&str, TransformerDims, u64),
    requests: &[u64],
    seed: u64,
    dtype: Dtype,
    host_embedding: bool,
) -> Result<f64> {
    let layout = tiny_layout(arch, dims, seq, dtype)?;
    let mut host = dev.alloc_host(layout.total_bytes(), true)?;
    crate::model::weights::fill_random(&layout, seed, host.as_mut_slice());
    let pool = layout.total_bytes().div_ceil(256) * 256;
    let ws = forward::workspace_bytes(&layout, requests.len());
    dev.init_arena(pool + ws)?;
    // Poison the workspace so unwritten outputs show.
    dev.fill_random(0, pool, (ws / 2) as usize, seed ^ 0xBAD, 1e4, Dtype::Fp16)?;
    let n = layout.layers();
    // Two copies (groups) so the compute waits on both, pipelined.
    let split = layout.layer_offsets[1];
    // Read in place, layer 0 is never copied: the arena's bytes there stay
    // what they were, so a pass that ignored the mapping would be wrong.
    if !host_embedding {
        dev.copy_h2d(0, &host, 0, 0, split)?;
    }
    let e0 = dev.record(0, StreamKind::Copy)?;
    dev.copy_h2d(0, &host, split, split, layout.total_bytes() - split)?;
    let e1 = dev.record(0, StreamKind::Copy)?;
    let out_bytes = forward::output_bytes(&layout, requests.len());
    let out = dev.alloc_host(out_bytes, true)?;
    let copied = forward::whole_at(&layout, 0);
    let mapped = if host_embedding {
        // SAFETY: `host` outlives the one pass that reads the mapping (this
        // function waits for it), and its bytes are not written after the
        // fill above; nothing reads the mapping once it returns.
        Some(unsafe { dev.map_host(0, &host, 0, split) }?)
    } else {
        None
    };
    let addr = |rank: usize, l: usize| match mapped {
        Some(at) if l == 0 => Some(at),
        _ => copied(rank, l),
    };
    let shard = crate::model::shard::ShardLayout::single(&layout);
    // Issued a layer at a time, as the executor does: once the first copy
    // is seen done it leaves the waits, so later steps must not need it.
    let all_waits = [(0..1, e0), (1..n, e1)];
    let run = |waits| forward::Run {
        gpus: &[0],
        layout: &layout,
        shard: &shard,
        layers: 0..n,
        addr: &addr,
        side: &forward::no_side,
        requests,
        ws: pool,
        waits,
        out: Some((&out, 0)),
        gemm_rate: 1e9,
        synthetic_slope: 0.0,
    };
    let mut pass = forward::Pass::new(&run(&all_waits))?;
    pass.step(dev, &run(&all_waits), 1)?;
    dev.synchronize(e0)?;
    let later = [(1..n, e1)];
    while !pass.issued_all(&run(&later)) {
        pass.step(dev, &run(&later), 1)?;
    }
    let start = pass.finish(dev, &run(&later))?;
    dev.release(start);
    let done = dev.record(0, StreamKind::Compute)?;
    dev.synchronize(done)?;
    for e in [e0, e1, done] {
        dev.release(e);
    }
    let got = decode(dtype, out.as_slice());
    let want: Vec<f32> = reference::forward(&layout, host.as_slice(), requests)?
        .into_iter()
        .flatten()
        .collect();
    anyhow::ensure!(
        got.len() == want.len(),
        "output length {} vs {}",
        got.len(),
        want.len()
    );
    if got.iter().any(|v| !v.is_finite()) {
        return Ok(f64::INFINITY);
    }
    let num: f64 = got
        .iter()
        .zip(&want)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    Ok((num / den).sqrt())
}

/// Placements [`graph_check`] moves a model through: one more than a shape
/// keeps graphs for, so the last capture updates an old graph in place.
pub const GRAPH_PLACEMENTS: usize = forward::PLACEMENTS_PER_SHAPE + 1;

/// Warm passes through graphs ([`forward::Graphs`]) on GPU 0, as the
/// executor issues them: a tiny model is loaded at [`GRAPH_PLACEMENTS`]
/// pool offsets in turn, the region it left poisoned (a graph still
/// reading there would show), and at each it runs warm passes until one
/// launched a cached graph, each with other request ids (they must not be
/// baked into the graph). Every output is checked against the f32
/// reference; returns the worst `||out - ref|| / ||ref||` and what the
/// cache did. The model is laid out in `dtype`.
pub fn graph_check(
    dev: &mut dyn Device,
    (arch, dims, seq): (&str, TransformerDims, u64),
    seed: u64,
    dtype: Dtype,
) -> Result<(f64, forward::GraphStats)> {
    let layout = tiny_layout(arch, dims, seq, dtype)?;
    let mut host = dev.alloc_host(layout.total_bytes(), true)?;
    crate::model::weights::fill_random(&layout, seed, host.as_mut_slice());
    let slot = layout.total_bytes().div_ceil(256) * 256;
    let b = 3u64;
    let ws = GRAPH_PLACEMENTS as u64 * slot;
    dev.init_arena(ws + forward::workspace_bytes(&layout, b as usize))?;
    dev.fill_random(0, 0, (ws / 2) as usize, seed ^ 0xBAD, 1e4, Dtype::Fp16)?;
    let out = dev.alloc_host(forward::output_bytes(&layout, b as usize), true)?;
    let shard = crate::model::shard::ShardLayout::single(&layout);
    let mut graphs = forward::Graphs::default();
    let mut worst = 0f64;
    let mut pass_no = 0u64;
    let checked = (|| -> Result<()> {
        for place in 0..GRAPH_PLACEMENTS as u64 {
            let at = place * slot;
            dev.copy_h2d(0, &host, 0, at, layout.total_bytes())?;
            if place > 0 {
                let n = (slot / 2) as usize;
                dev.fill_random(0, at - slot, n, seed ^ place, 1e4, Dtype::Fp16)?;
            }
            let addr = forward::whole_at(&layout, at);
            let launches = graphs.stats.launches;
            while graphs.stats.launches < launches + 2 {
                pass_no += 1;
                let requests: Vec<u64> = (0..b).map(|i| pass_no * 31 + i * 7).collect();
                let run = forward::Run {
                    gpus: &[0],
                    layout: &layout,
                    shard: &shard,
                    layers: 0..layout.layers(),
                    addr: &addr,
                    side: &forward::no_side,
                    requests: &requests,
                    ws,
                    waits: &[],
                    out: Some((&out, 0)),
                    gemm_rate: 1e9,
                    synthetic_slope: 0.0,
                };
                // The copy is done before a warm pass is issued.
                let e = dev.record(0, StreamKind::Copy)?;
                dev.synchronize(e)?;
                dev.release(e);
                let mut pass = forward::Pass::new(&run)?;
                while !pass.issued_all(&run) {
                    graphs.step(dev, &mut pass, &run, 1)?;
                }
                let start = pass.finish(dev, &run)?;
                let done = dev.record(0, StreamKind::Compute)?;
                dev.synchronize(done)?;
                dev.release(start);
                dev.release(done);
                let got = decode(dtype, out.as_slice());
                let want: Vec<f32> = reference::forward(&layout, host.as_slice(), &requests)?
                    .into_iter()
                    .flatten()
                    .collect();
                worst = worst.max(rel_err(&got, &want));
                if pass_no > 20 * GRAPH_PLACEMENTS as u64 {
                    anyhow::bail!("{arch}: warm passes never launched a graph");
                }
            }
        }
        Ok(())
    })();
    let stats = graphs.stats;
    graphs.clear(dev);
    checked.map(|_| (worst, stats))
}

/// A seed that differs on every call (fresh weights each run).
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    crate::device::seeded::mix64(t ^ std::process::id() as u64)
}

/// Output of [`parallel_forward`].
#[derive(Debug, Clone)]
pub struct ParallelOutput {
    /// The model's outputs (rank 0 of the last stage), as f32.
    pub out: Vec<f32>,
    /// `||out - ref|| / ||ref||` against the f32 host reference.
    pub ref_err: f64,
    /// Hand-overs between stages, by path.
    pub handoffs: crate::exec::HandoffStats,
}

/// Runs `requests` through a tiny transformer split `tp` ways over `pp`
/// stages on GPUs `0 .. tp * pp` of `dev` (stage `s`, rank `r` on GPU
/// `s * tp + r`), through the executor: every shard copied over its own
/// GPU's link, the stages handing whole batches over. The model is fp16.
pub fn parallel_forward(
    dev: Box<dyn Device>,
    model: (&str, TransformerDims, u64),
    requests: &[u64],
    seed: u64,
    split: (usize, usize),
) -> Result<ParallelOutput> {
    parallel_forward_typed(dev, model, requests, seed, split, Dtype::Fp16)
}

/// [`parallel_forward`] of the model laid out in `dtype`.
pub fn parallel_forward_typed(
    mut dev: Box<dyn Device>,
    (arch, dims, seq): (&str, TransformerDims, u64),
    requests: &[u64],
    seed: u64,
    (tp, pp): (usize, usize),
    dtype: Dtype,
) -> Result<ParallelOutput> {
    use crate::exec::{ComputeOp, CopyOp, Executor, Split};
    use crate::host_store::{HostStore, WeightSource};
    use crate::model::shard::ShardLayout;
    let layout = tiny_layout(arch, dims, seq, dtype)?;
    let stages = switchyard_core::model::stage_partition(&layout.shape, pp);
    anyhow::ensure!(stages.len() == pp, "{arch} has fewer than {pp} layers");
    let shard = ShardLayout::new(&layout, tp, &stages)?;
    anyhow::ensure!(
        dev.gpus() >= tp * pp,
        "tp = {tp}, pp = {pp} needs {} GPUs; the device has {}",
        tp * pp,
        dev.gpus()
    );
    let host = HostStore::build(
        dev.as_mut(),
        std::slice::from_ref(&layout),
        std::slice::from_ref(&shard),
        &[arch.to_string()],
        true,
        false,
        &WeightSource::Random { seed },
    )?;
    let pool = shard.image_bytes().div_ceil(256) * 256;
    let mut ex = Executor::with_shards(
        dev,
        host,
        vec![layout.clone()],
        Split {
            shards: vec![shard.clone()],
            homes: vec![(0..tp * pp).collect()],
        },
        &[requests.len()],
        pool,
        0.0,
    )?;
    let gpus = |s: usize| (s * tp..(s + 1) * tp).collect::<Vec<usize>>();
    let mut key = 0;
    let mut input = None;
    for (s, layers) in stages.iter().enumerate() {
        let mut waits = Vec::new();
        for r in 0..tp {
            key += 1;
            ex.copy(CopyOp {
                key,
                gpu: s * tp + r,
                model: 0,
                stage: s,
                shard: r,
                layers: layers.clone(),
                pool_offset: 0,
                pinned: true,
                ..CopyOp::default()
            })?;
            waits.push((layers.clone(), key));
        }
        key += 1;
        ex.compute(ComputeOp {
            key,
            gpus: gpus(s),
            model: 0,
            stage: s,
            layers: layers.clone(),
            requests: requests.to_vec(),
            waits,
            input,
            handoff_to: if s + 1 < pp { gpus(s + 1) } else { vec![] },
        })?;
        input = Some(key);
    }
    ex.drain()?;
    let bytes = forward::output_bytes(&layout, requests.len());
    let out = decode(dtype, ex.last_output((pp - 1) * tp, bytes)?);
    let mut full = vec![0u8; layout.total_bytes() as usize];
    crate::model::weights::fill_random(&layout, seed, &mut full);
    let want: Vec<f32> = reference::forward(&layout, &full, requests)?
        .into_iter()
        .flatten()
        .collect();
    Ok(ParallelOutput {
        ref_err: rel_err(&out, &want),
        out,
        handoffs: ex.handoff_stats(),
    })
}

/// `||a - b|| / ||b||` (infinite when `a` has a non-finite value or the lengths differ).
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}
