//! Direct host access (`policy.direct_host`, DeepPlan's other half): what
//! a layer left in mapped pinned host memory reads over its GPU's link in
//! one pass, and how long that read takes. The scheduler's grouping DP
//! and the simulator share these definitions.
//!
//! A kernel reading host memory in place touches only the bytes it uses:
//! an embedding lookup reads one row per token (plus the position rows and
//! the layer norm), a GEMM reads its whole weight once. A language-model
//! head tied to the token embedding reads the whole vocabulary matrix, so
//! once the embedding stays in host memory the head reads it from there.

use crate::hardware::HardwareProfile;
use crate::model::{Family, LayerKind, ModelShape};
use std::ops::Range;

/// Rows of a transformer's embedding layer: `(rows one pass of `tokens`
/// tokens reads, all rows, vocabulary rows)`; `None` for other families.
fn embedding_rows(shape: &ModelShape, tokens: u64) -> Option<(u64, u64, u64)> {
    let Family::Transformer(d) = &shape.family else {
        return None;
    };
    // The layer norm's weight and bias count as two rows (BERT only).
    let norm = if d.token_types > 0 { 2 } else { 0 };
    let all = d.vocab + d.max_positions + d.token_types + norm;
    let positions = shape.items_per_request.min(d.max_positions);
    // Every token may hit a different row; one token-type row (type 0).
    let read = tokens.min(d.vocab) + positions + d.token_types.min(1) + norm;
    Some((read.min(all), all, d.vocab))
}

/// Bytes layer `layer` of `shape` reads from host memory in one pass of
/// `batch` requests when the layers in `direct` stay there: an embedding
/// its rows for the pass's tokens, any other direct layer its whole
/// weight, and a head tied to a direct embedding the vocabulary matrix
/// besides its own weights when direct. Zero for a copied layer that
/// reads nothing from host memory.
pub fn host_read_bytes(shape: &ModelShape, direct: &Range<usize>, layer: usize, batch: u32) -> u64 {
    let l = &shape.layers[layer];
    let tokens = batch.max(1) as u64 * shape.items_per_request;
    let own = if !direct.contains(&layer) {
        0
    } else if l.kind == LayerKind::Embedding {
        match embedding_rows(shape, tokens) {
            Some((read, all, _)) => scale(l.param_bytes, read, all),
            None => l.param_bytes,
        }
    } else {
        l.param_bytes
    };
    own + tied_read(shape, direct, layer)
}

/// The vocabulary matrix a tied head at `layer` reads from host memory
/// when the embedding (layer 0) is in `direct`.
fn tied_read(shape: &ModelShape, direct: &Range<usize>, layer: usize) -> u64 {
    let tied = matches!(&shape.family, Family::Transformer(d) if d.tied_head);
    let emb = &shape.layers[0];
    if !tied || shape.layers[layer].kind != LayerKind::Head || emb.kind != LayerKind::Embedding {
        return 0;
    }
    if !direct.contains(&0) {
        return 0;
    }
    match embedding_rows(shape, 0) {
        Some((_, all, vocab)) => scale(emb.param_bytes, vocab, all),
        None => 0,
    }
}

/// `bytes * num / den`, rounded up, without overflow.
fn scale(bytes: u64, num: u64, den: u64) -> u64 {
    ((bytes as u128 * num as u128).div_ceil(den.max(1) as u128)) as u64
}

/// Seconds a pass's host reads of `bytes` take on a GPU of `hw`: at the
/// direct-host rate alone, and at no more than half the pinned link when
/// `shared` (copies on the same link at the same time: two flows sharing
/// it).
pub fn read_s(hw: &HardwareProfile, bytes: u64, shared: bool) -> f64 {
    let alone = bytes as f64 / hw.direct_host_bytes_per_s();
    if shared {
        alone.max(2.0 * bytes as f64 / hw.pinned.beta_bytes_per_s)
    } else {
        alone
    }
}

/// Seconds of the link's capacity host reads of `bytes` take from the
/// copies sharing it (what the copies queued behind them lose).
pub fn link_s(hw: &HardwareProfile, bytes: u64) -> f64 {
    bytes as f64 / hw.pinned.beta_bytes_per_s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::builtin;

    #[test]
    fn embedding_reads_its_rows_and_a_tied_head_the_vocabulary() {
        let bert = builtin("bert-base").unwrap();
        let emb = bert.layers[0].param_bytes;
        let one = host_read_bytes(&bert, &(0..1), 0, 1);
        let eight = host_read_bytes(&bert, &(0..1), 0, 8);
        // 128 tokens' rows + 128 positions + 1 type + norm, of 30522+512+2+2 rows.
        assert_eq!(one, (emb as u128 * 259).div_ceil(31038) as u64);
        assert!(eight > one && eight < emb / 10, "{eight} of {emb}");
        // Not direct: nothing read; BERT's pooler is not tied.
        assert_eq!(host_read_bytes(&bert, &(0..0), 0, 1), 0);
        let last = bert.layers.len() - 1;
        assert_eq!(host_read_bytes(&bert, &(0..1), last, 1), 0);
        // GPT-2's head reads the 50257 x 768 matrix once the embedding is direct.
        let gpt2 = builtin("gpt2").unwrap();
        let last = gpt2.layers.len() - 1;
        assert_eq!(host_read_bytes(&gpt2, &(0..1), last, 1), 50257 * 768 * 2);
        assert_eq!(host_read_bytes(&gpt2, &(0..0), last, 1), 0);
        // A direct block reads its whole weight.
        assert_eq!(
            host_read_bytes(&gpt2, &(0..2), 1, 4),
            gpt2.layers[1].param_bytes
        );
    }
}
