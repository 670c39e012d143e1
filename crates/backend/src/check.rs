//! Correctness check of a device's forward pass against the f32 host
//! reference ([`crate::model::reference`]) on tiny transformers, with fresh
//! random weights each call (used by the tests and by `replay selftest`).

use crate::device::{Device, StreamKind};
use crate::model::{forward, reference, transformer_shape, ModelLayout};
use anyhow::Result;
use half::f16;
use switchyard_core::model::TransformerDims;

/// The tiny configurations checked: an OPT-like decoder (ReLU, causal,
/// position offset), a GPT-2-like decoder (GELU) and a BERT-like encoder
/// (post-LN, token types, pooler).
pub fn tiny_models() -> Vec<(String, TransformerDims, u64)> {
    let dec = TransformerDims {
        hidden: 64,
        heads: 4,
        ffn: 256,
        vocab: 97,
        max_positions: 40,
        blocks: 2,
        token_types: 0,
        tied_head: true,
    };
    let enc = TransformerDims {
        token_types: 2,
        tied_head: false,
        ..dec
    };
    vec![
        ("opt-tiny".into(), dec, 16),
        ("gpt2-tiny".into(), dec, 12),
        ("bert-tiny".into(), enc, 16),
    ]
}

/// Runs `requests` through a tiny model on `dev` (GPU 0) and through the
/// reference; returns `||out - ref|| / ||ref||` over all outputs.
pub fn forward_check(
    dev: &mut dyn Device,
    arch: &str,
    dims: TransformerDims,
    seq: u64,
    requests: &[u64],
    seed: u64,
) -> Result<f64> {
    let layout = ModelLayout::new(&transformer_shape(arch, dims, seq))?;
    let mut host = dev.alloc_host(layout.total_bytes(), true)?;
    crate::model::weights::fill_random(&layout, seed, host.as_mut_slice());
    let pool = layout.total_bytes().div_ceil(256) * 256;
    let ws = forward::workspace_bytes(&layout, requests.len());
    dev.init_arena(pool + ws)?;
    // Poison the workspace so unwritten outputs show.
    dev.fill_random(0, pool, (ws / 2) as usize, seed ^ 0xBAD, 1e4)?;
    let n = layout.layers();
    // Two copies (groups) so the compute waits on both, pipelined.
    let split = layout.layer_offsets[1];
    dev.copy_h2d(0, &host, 0, 0, split)?;
    let e0 = dev.record(0, StreamKind::Copy)?;
    dev.copy_h2d(0, &host, split, split, layout.total_bytes() - split)?;
    let e1 = dev.record(0, StreamKind::Copy)?;
    let out_bytes = forward::output_bytes(&layout, requests.len());
    let out = dev.alloc_host(out_bytes, true)?;
    let offsets = layout.layer_offsets.clone();
    let addr = move |l: usize| Some(offsets[l]);
    let waits = [(0..1, e0), (1..n, e1)];
    forward::run(
        dev,
        &forward::Run {
            gpu: 0,
            layout: &layout,
            layers: 0..n,
            addr: &addr,
            requests,
            ws: pool,
            waits: &waits,
            out: Some((&out, 0)),
            gemm_rate: 1e9,
            synthetic_slope: 0.0,
        },
    )?;
    let done = dev.record(0, StreamKind::Compute)?;
    dev.synchronize(done)?;
    for e in [e0, e1, done] {
        dev.release(e);
    }
    let got: Vec<f32> = out
        .as_slice()
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
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

/// A seed that differs on every call (fresh weights each run).
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    crate::model::weights::mix64(t ^ std::process::id() as u64)
}
