//! Model shapes: the layer list of an architecture, with the bytes and the
//! work of each layer. Built-in architectures live in [`crate::arch`].

use serde::{Deserialize, Serialize};

/// Bytes of one parameter of the built-in shapes (fp16). A workload may
/// store a model's weights in another [`Dtype`]; its shape's bytes are then
/// scaled by [`ModelShape::with_dtype`].
pub const DTYPE_BYTES: u64 = 2;

/// The type a model's weights are stored and copied in: bytes per
/// parameter in host memory, on the link and in GPU memory, and which
/// compute rate of the profile runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    /// IEEE half precision, 2 bytes (the default).
    #[default]
    Fp16,
    /// IEEE single precision, 4 bytes (PipeSwitch's PyTorch 1.3 models).
    Fp32,
    /// bfloat16, 2 bytes; runs at the fp16 rate.
    Bf16,
}

impl Dtype {
    /// Every weight type, in the order errors list them.
    pub const ALL: [Dtype; 3] = [Dtype::Fp16, Dtype::Fp32, Dtype::Bf16];

    /// Bytes of one parameter.
    pub fn bytes(self) -> u64 {
        match self {
            Dtype::Fp16 | Dtype::Bf16 => 2,
            Dtype::Fp32 => 4,
        }
    }

    /// The name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Fp16 => "fp16",
            Dtype::Fp32 => "fp32",
            Dtype::Bf16 => "bf16",
        }
    }

    /// The weight type called `s`, or an error listing every name.
    pub fn from_name(s: &str) -> Result<Dtype, String> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Dtype::ALL.iter().map(|d| d.name()).collect();
                format!(
                    "`{s}` is not a weight type; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What a layer is, so the executor knows which forward pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Token and position embeddings.
    Embedding,
    /// Self-attention plus MLP with their layer norms.
    TransformerBlock,
    /// Final norm and output projection (language-model head or pooler/classifier).
    Head,
    /// A convolution (with its batch norm), or a group of them.
    Conv,
    /// A fully connected layer outside a transformer block.
    Dense,
    /// A layer of a synthetic model, described only by bytes and time.
    Synthetic,
}

/// One layer: what is copied to the GPU to run it, and the work it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Name, e.g. `decoder.layers.3`.
    pub name: String,
    /// Kind of layer.
    pub kind: LayerKind,
    /// Parameter bytes (fp16) of the layer.
    pub param_bytes: u64,
    /// Forward FLOPs per item: per token for transformers (at the model's
    /// default sequence length for the attention term), per image for CNNs.
    pub flops_per_item: f64,
}

impl Layer {
    /// Number of parameters of the layer.
    pub fn params(&self) -> u64 {
        self.param_bytes / DTYPE_BYTES
    }
}

/// Dimensions of a transformer, enough to build its real weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformerDims {
    /// Hidden size (d_model).
    pub hidden: u64,
    /// Attention heads.
    pub heads: u64,
    /// MLP inner size.
    pub ffn: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Learned position embeddings.
    pub max_positions: u64,
    /// Number of transformer blocks.
    pub blocks: u64,
    /// Token type embeddings (BERT has 2; decoders 0).
    pub token_types: u64,
    /// Whether the LM head is tied to the token embedding (no extra bytes).
    pub tied_head: bool,
}

/// The family of a model: how the executor runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// A transformer with real dimensions.
    Transformer(TransformerDims),
    /// A convolutional network (run as GEMM-equivalent work of the same FLOPs and bytes).
    Convolutional,
    /// A synthetic model: each layer takes `layer_s` seconds at batch size 1.
    Synthetic {
        /// Compute time of one layer at batch 1, seconds.
        layer_s: f64,
    },
}

/// An architecture: its family and its layers in execution order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Architecture name, e.g. `opt-13b`, or the synthetic model's name.
    pub arch: String,
    /// How it runs.
    pub family: Family,
    /// Items (tokens) per request for transformers; 1 for CNNs and synthetic models.
    pub items_per_request: u64,
    /// Layers in execution order.
    pub layers: Vec<Layer>,
}

impl ModelShape {
    /// Total parameter bytes.
    pub fn total_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.param_bytes).sum()
    }

    /// Total parameters.
    pub fn params(&self) -> u64 {
        self.total_bytes() / DTYPE_BYTES
    }

    /// Forward FLOPs of one request (all layers, all its items).
    pub fn flops_per_request(&self) -> f64 {
        self.layers.iter().map(|l| l.flops_per_item).sum::<f64>() * self.items_per_request as f64
    }

    /// This shape (of fp16 weights, as every built-in and synthetic shape
    /// is) with its weights stored as `dtype`: every layer's bytes scaled
    /// by `dtype.bytes() / 2`. FLOPs are unchanged. [`ModelShape::params`]
    /// and [`Layer::params`] count fp16 parameters, so they hold only for
    /// fp16 and bf16 shapes.
    pub fn with_dtype(mut self, dtype: Dtype) -> ModelShape {
        if dtype.bytes() != DTYPE_BYTES {
            for l in &mut self.layers {
                l.param_bytes = l.param_bytes.saturating_mul(dtype.bytes()) / DTYPE_BYTES;
            }
        }
        self
    }

    /// A synthetic model of `layers` equal layers of `layer_bytes` each,
    /// taking `layer_s` seconds per layer at batch size 1.
    pub fn synthetic(name: &str, layers: usize, layer_bytes: u64, layer_s: f64) -> ModelShape {
        ModelShape {
            arch: name.to_string(),
            family: Family::Synthetic { layer_s },
            items_per_request: 1,
            layers: (0..layers)
                .map(|i| Layer {
                    name: format!("layer.{i}"),
                    kind: LayerKind::Synthetic,
                    param_bytes: layer_bytes,
                    flops_per_item: 0.0,
                })
                .collect(),
        }
    }
}

/// Splits a model's layers into `stages` contiguous, non-empty ranges that
/// minimise the largest stage's bytes (the pipeline-parallel placement).
///
/// Exact dynamic program over layer boundaries; ties go to the earliest cut,
/// so the result is deterministic.
pub fn stage_partition(shape: &ModelShape, stages: usize) -> Vec<std::ops::Range<usize>> {
    let n = shape.layers.len();
    let stages = stages.clamp(1, n.max(1));
    if n == 0 {
        return std::iter::once(0..0).collect();
    }
    if stages == 1 {
        // The program's only answer, without its tables (one per model at
        // start-up: 100,000 models copied from one template).
        return std::iter::once(0..n).collect();
    }
    let mut prefix = vec![0u64; n + 1];
    for (i, l) in shape.layers.iter().enumerate() {
        prefix[i + 1] = prefix[i] + l.param_bytes;
    }
    // best[k][i]: smallest max-stage bytes splitting the first i layers into k stages.
    let mut best = vec![vec![u64::MAX; n + 1]; stages + 1];
    let mut cut = vec![vec![0usize; n + 1]; stages + 1];
    best[0][0] = 0;
    for k in 1..=stages {
        for i in k..=n {
            for j in (k - 1)..i {
                if best[k - 1][j] == u64::MAX {
                    continue;
                }
                let cost = best[k - 1][j].max(prefix[i] - prefix[j]);
                if cost < best[k][i] {
                    best[k][i] = cost;
                    cut[k][i] = j;
                }
            }
        }
    }
    let mut ranges = Vec::with_capacity(stages);
    let mut end = n;
    for k in (1..=stages).rev() {
        let start = cut[k][end];
        ranges.push(start..end);
        end = start;
    }
    ranges.reverse();
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_scales_bytes_not_flops() {
        let m = crate::arch::builtin("bert-base").unwrap();
        let f = m.clone().with_dtype(Dtype::Fp32);
        assert_eq!(f.total_bytes(), 2 * m.total_bytes());
        assert_eq!(f.flops_per_request(), m.flops_per_request());
        assert_eq!(m.clone().with_dtype(Dtype::Bf16), m);
        assert_eq!(Dtype::from_name("fp32"), Ok(Dtype::Fp32));
        assert!(Dtype::from_name("int8")
            .unwrap_err()
            .contains("fp16, fp32, bf16"));
    }

    #[test]
    fn partition_balances_equal_layers() {
        let m = ModelShape::synthetic("t", 12, 10, 0.001);
        let p = stage_partition(&m, 4);
        assert_eq!(p, vec![0..3, 3..6, 6..9, 9..12]);
    }

    #[test]
    fn partition_covers_every_layer_once() {
        let mut m = ModelShape::synthetic("t", 7, 10, 0.001);
        m.layers[0].param_bytes = 50;
        let p = stage_partition(&m, 3);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].start, 0);
        assert_eq!(p[2].end, 7);
        for w in p.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert!(!w[0].is_empty());
        }
        assert_eq!(p[0], 0..1);
    }
}
