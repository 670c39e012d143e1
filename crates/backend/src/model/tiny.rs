//! Tiny transformers, one per family, small enough to check a forward pass
//! against the host reference in milliseconds (used by [`crate::check`],
//! the benches and the tests).

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
