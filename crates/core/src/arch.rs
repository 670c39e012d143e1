//! Built-in architectures with their true layer lists, from the models'
//! published shapes (Hugging Face configs and the original papers). The
//! PipeSwitch CNNs (ResNet-152, Inception-v3) live in `arch_cnn.rs`.

#[path = "arch_cnn.rs"]
mod cnn;

use crate::model::{Family, Layer, LayerKind, ModelShape, TransformerDims, DTYPE_BYTES};

/// Names of every built-in architecture.
pub const NAMES: &[&str] = &[
    "opt-125m",
    "opt-1.3b",
    "opt-2.7b",
    "opt-6.7b",
    "opt-13b",
    "opt-30b",
    "opt-66b",
    "bert-base",
    "bert-large",
    "gpt2",
    "resnet-152",
    "inception-v3",
];

/// Default tokens per request for transformer architectures.
pub const DEFAULT_SEQ_LEN: u64 = 128;

/// The built-in architecture called `name`, or `None`.
pub fn builtin(name: &str) -> Option<ModelShape> {
    let opt = |hidden, blocks, heads| TransformerDims {
        hidden,
        heads,
        ffn: 4 * hidden,
        vocab: 50272,
        // OPT's learned positions carry an offset of 2.
        max_positions: 2050,
        blocks,
        token_types: 0,
        tied_head: true,
    };
    let bert = |hidden, blocks, heads| TransformerDims {
        hidden,
        heads,
        ffn: 4 * hidden,
        vocab: 30522,
        max_positions: 512,
        blocks,
        token_types: 2,
        tied_head: false,
    };
    Some(match name {
        // facebook/opt-* configs: hidden, layers, heads.
        "opt-125m" => transformer(name, opt(768, 12, 12), HeadKind::TiedLm),
        "opt-1.3b" => transformer(name, opt(2048, 24, 32), HeadKind::TiedLm),
        "opt-2.7b" => transformer(name, opt(2560, 32, 32), HeadKind::TiedLm),
        "opt-6.7b" => transformer(name, opt(4096, 32, 32), HeadKind::TiedLm),
        "opt-13b" => transformer(name, opt(5120, 40, 40), HeadKind::TiedLm),
        "opt-30b" => transformer(name, opt(7168, 48, 56), HeadKind::TiedLm),
        "opt-66b" => transformer(name, opt(9216, 64, 72), HeadKind::TiedLm),
        // bert-base-uncased / bert-large-uncased.
        "bert-base" => transformer(name, bert(768, 12, 12), HeadKind::Pooler),
        "bert-large" => transformer(name, bert(1024, 24, 16), HeadKind::Pooler),
        // gpt2 (124M).
        "gpt2" => transformer(
            name,
            TransformerDims {
                hidden: 768,
                heads: 12,
                ffn: 3072,
                vocab: 50257,
                max_positions: 1024,
                blocks: 12,
                token_types: 0,
                tied_head: true,
            },
            HeadKind::TiedLm,
        ),
        // torchvision resnet152 (224x224) and inception_v3 (299x299, no aux).
        "resnet-152" => cnn::resnet152(),
        "inception-v3" => cnn::inception_v3(),
        _ => return None,
    })
}

/// What sits after the last transformer block.
enum HeadKind {
    /// Final layer norm and an LM head tied to the token embedding.
    TiedLm,
    /// BERT's pooler (dense + tanh on the first token).
    Pooler,
}

fn transformer(name: &str, d: TransformerDims, head: HeadKind) -> ModelShape {
    let h = d.hidden;
    let s = DEFAULT_SEQ_LEN as f64;
    let mut layers = Vec::with_capacity(d.blocks as usize + 2);
    // Embeddings (+ BERT's embedding layer norm).
    let emb_params =
        (d.vocab + d.max_positions + d.token_types) * h + if d.token_types > 0 { 2 * h } else { 0 };
    layers.push(Layer {
        name: "embeddings".into(),
        kind: LayerKind::Embedding,
        param_bytes: emb_params * DTYPE_BYTES,
        flops_per_item: 0.0,
    });
    // A block: QKV and output projections with biases, two layer norms, MLP.
    let block_params = 4 * h * h + 4 * h + 2 * h + 2 * h * d.ffn + d.ffn + h + 2 * h;
    // Matmul FLOPs per token, plus attention scores and values over s tokens.
    let block_flops = 2.0 * (4 * h * h + 2 * h * d.ffn) as f64 + 4.0 * s * h as f64;
    for i in 0..d.blocks {
        layers.push(Layer {
            name: format!("blocks.{i}"),
            kind: LayerKind::TransformerBlock,
            param_bytes: block_params * DTYPE_BYTES,
            flops_per_item: block_flops,
        });
    }
    let (head_params, head_flops) = match head {
        // Final layer norm; logits through the tied embedding.
        HeadKind::TiedLm => (2 * h, 2.0 * (h * d.vocab) as f64),
        // Pooler dense on the first token only.
        HeadKind::Pooler => (h * h + h, 2.0 * (h * h) as f64 / s),
    };
    layers.push(Layer {
        name: "head".into(),
        kind: LayerKind::Head,
        param_bytes: head_params * DTYPE_BYTES,
        flops_per_item: head_flops,
    });
    ModelShape {
        arch: name.to_string(),
        family: Family::Transformer(d),
        items_per_request: DEFAULT_SEQ_LEN,
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str) -> f64 {
        builtin(name).unwrap().params() as f64
    }

    fn close(name: &str, expected: f64, tol: f64) {
        let got = params(name);
        assert!(
            (got - expected).abs() / expected < tol,
            "{name}: {got:.4e} parameters, expected {expected:.4e}"
        );
    }

    #[test]
    fn parameter_counts_match_published_values() {
        close("opt-125m", 125.2e6, 0.01);
        close("opt-1.3b", 1.316e9, 0.01);
        close("opt-2.7b", 2.652e9, 0.01);
        close("opt-6.7b", 6.658e9, 0.01);
        close("opt-13b", 12.853e9, 0.01);
        close("opt-30b", 29.97e9, 0.01);
        close("opt-66b", 65.7e9, 0.01);
        close("bert-base", 109.5e6, 0.01);
        close("bert-large", 335.1e6, 0.01);
        close("gpt2", 124.4e6, 0.01);
        close("resnet-152", 60.2e6, 0.005);
        close("inception-v3", 23.8e6, 0.005);
    }

    #[test]
    fn cnn_flops_match_published_values() {
        let flops = |name: &str, expected: f64| {
            let m = builtin(name).unwrap();
            assert_eq!(m.family, Family::Convolutional);
            assert_eq!(m.items_per_request, 1);
            let got = m.flops_per_request();
            assert!(
                (got - expected).abs() / expected < 0.05,
                "{name}: {got:.4e} FLOPs per image, expected {expected:.4e}"
            );
        };
        // 2 x torchvision's GMACs: 11.51 (ResNet-152), 5.71 (Inception-v3).
        flops("resnet-152", 23.1e9);
        flops("inception-v3", 11.4e9);
    }

    #[test]
    fn every_name_resolves() {
        for name in NAMES {
            let m = builtin(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(m.layers.len() > 3);
        }
        assert!(builtin("opt-7b").is_none());
    }
}
