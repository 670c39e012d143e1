//! A model's layout: its tensors, in layer order, in one buffer of the
//! model's element type ([`Dtype`]: fp16 by default, fp32 or bf16), so a
//! layer group is one contiguous copy; and the transformer shapes built
//! from an architecture's dimensions.

use anyhow::{bail, Result};
use switchyard_core::model::{Family, LayerKind, ModelShape, TransformerDims, DTYPE_BYTES};

use crate::device::{el_bytes, Act, Dtype};

/// How a tensor is initialised when weights are seeded random.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform in `[-scale, scale]`.
    Uniform(f32),
    /// `1 + uniform(0.05)` (layer norm gains).
    One,
}

/// One named tensor inside a model's buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Name, e.g. `blocks.3.fc1.weight` (safetensors key).
    pub name: String,
    /// Layer it belongs to.
    pub layer: usize,
    /// Byte offset from the start of its layer.
    pub offset: u64,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Initialisation when seeded random.
    pub init: Init,
}

impl TensorSpec {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// What the forward pass needs to know about a transformer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformerCfg {
    /// Dimensions.
    pub dims: TransformerDims,
    /// Post-LN encoder (BERT) rather than pre-LN decoder.
    pub post_ln: bool,
    /// Causal attention (decoders).
    pub causal: bool,
    /// MLP activation.
    pub act: Act,
    /// Offset of position ids (OPT: 2).
    pub pos_offset: usize,
    /// LM head tied to the token embedding (else BERT's pooler).
    pub lm_head: bool,
}

/// How a model runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A real transformer.
    Transformer(TransformerCfg),
    /// GEMM-equivalent layers (convolutional and synthetic models).
    Generic,
}

/// A model's tensors and layer offsets in its buffer.
#[derive(Debug, Clone)]
pub struct ModelLayout {
    /// The shape it was built from (bytes of `dtype`).
    pub shape: ModelShape,
    /// Element type of its weights and of its activations on the device.
    pub dtype: Dtype,
    /// How it runs.
    pub kind: Kind,
    /// `layer_offsets[l]`: byte offset of layer `l`; the last entry is the total.
    pub layer_offsets: Vec<u64>,
    /// Every tensor, in buffer order.
    pub tensors: Vec<TensorSpec>,
}

impl ModelLayout {
    /// Lays out `shape`'s tensors in fp16; fails if they do not add up to
    /// its layers' parameter bytes.
    pub fn new(shape: &ModelShape) -> Result<ModelLayout> {
        ModelLayout::typed(shape, Dtype::Fp16)
    }

    /// Lays out `shape`'s tensors as elements of `dtype`, the shape's
    /// bytes being of that type already (as a workload's are,
    /// [`ModelShape::with_dtype`]); fails if the tensors do not add up to
    /// its layers' parameter bytes.
    pub fn typed(shape: &ModelShape, dtype: Dtype) -> Result<ModelLayout> {
        let mut layer_offsets = vec![0u64];
        for l in &shape.layers {
            layer_offsets.push(layer_offsets.last().unwrap() + l.param_bytes);
        }
        let (kind, tensors) = match &shape.family {
            Family::Transformer(d) => {
                let cfg = transformer_cfg(&shape.arch, d);
                (
                    Kind::Transformer(cfg),
                    transformer_tensors(shape, d, &cfg, dtype)?,
                )
            }
            _ => (Kind::Generic, generic_tensors(shape, dtype)),
        };
        Ok(ModelLayout {
            shape: shape.clone(),
            dtype,
            kind,
            layer_offsets,
            tensors,
        })
    }

    /// Total bytes of the model.
    pub fn total_bytes(&self) -> u64 {
        *self.layer_offsets.last().unwrap()
    }

    /// Bytes of layers `r`.
    pub fn range_bytes(&self, r: std::ops::Range<usize>) -> u64 {
        self.layer_offsets[r.end] - self.layer_offsets[r.start]
    }

    /// Bytes of one element (weights and activations).
    pub fn el(&self) -> usize {
        el_bytes(self.dtype)
    }

    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.shape.layers.len()
    }

    /// The tensor called `name` of layer `layer` (name without the layer prefix).
    pub fn tensor(&self, layer: usize, suffix: &str) -> Option<&TensorSpec> {
        self.tensors
            .iter()
            .find(|t| t.layer == layer && t.name.ends_with(suffix))
    }
}

/// Derives the forward-pass settings of a transformer architecture.
pub fn transformer_cfg(arch: &str, d: &TransformerDims) -> TransformerCfg {
    let encoder = d.token_types > 0;
    TransformerCfg {
        dims: *d,
        post_ln: encoder,
        causal: !encoder,
        act: if arch.starts_with("opt") {
            Act::Relu
        } else {
            Act::Gelu
        },
        pos_offset: if arch.starts_with("opt") { 2 } else { 0 },
        lm_head: d.tied_head,
    }
}

fn transformer_tensors(
    shape: &ModelShape,
    d: &TransformerDims,
    cfg: &TransformerCfg,
    dtype: Dtype,
) -> Result<Vec<TensorSpec>> {
    let (h, f) = (d.hidden as usize, d.ffn as usize);
    let w = |fan_in: usize| Init::Uniform(1.0 / (fan_in as f32).sqrt());
    let small = Init::Uniform(0.02);
    let mut out = Vec::new();
    for (l, layer) in shape.layers.iter().enumerate() {
        let mut list: Vec<(String, Vec<usize>, Init)> = Vec::new();
        match layer.kind {
            LayerKind::Embedding => {
                list.push(("tok".into(), vec![d.vocab as usize, h], Init::Uniform(1.0)));
                list.push((
                    "pos".into(),
                    vec![d.max_positions as usize, h],
                    Init::Uniform(0.5),
                ));
                if d.token_types > 0 {
                    list.push((
                        "type".into(),
                        vec![d.token_types as usize, h],
                        Init::Uniform(0.5),
                    ));
                    list.push(("ln.weight".into(), vec![h], Init::One));
                    list.push(("ln.bias".into(), vec![h], small));
                }
            }
            LayerKind::TransformerBlock => {
                list.push(("qkv.weight".into(), vec![h, 3 * h], w(h)));
                list.push(("qkv.bias".into(), vec![3 * h], small));
                list.push(("out.weight".into(), vec![h, h], w(h)));
                list.push(("out.bias".into(), vec![h], small));
                list.push(("ln1.weight".into(), vec![h], Init::One));
                list.push(("ln1.bias".into(), vec![h], small));
                list.push(("fc1.weight".into(), vec![h, f], w(h)));
                list.push(("fc1.bias".into(), vec![f], small));
                list.push(("fc2.weight".into(), vec![f, h], w(f)));
                list.push(("fc2.bias".into(), vec![h], small));
                list.push(("ln2.weight".into(), vec![h], Init::One));
                list.push(("ln2.bias".into(), vec![h], small));
            }
            LayerKind::Head if cfg.lm_head => {
                list.push(("ln.weight".into(), vec![h], Init::One));
                list.push(("ln.bias".into(), vec![h], small));
            }
            LayerKind::Head => {
                list.push(("pooler.weight".into(), vec![h, h], w(h)));
                list.push(("pooler.bias".into(), vec![h], small));
            }
            other => bail!(
                "{}: layer {} is {other:?}, which a transformer does not have",
                shape.arch,
                layer.name
            ),
        }
        let mut off = 0u64;
        for (name, dims, init) in list {
            let t = TensorSpec {
                name: format!("{}.{name}", layer.name),
                layer: l,
                offset: off,
                shape: dims,
                init,
            };
            off += (t.numel() * el_bytes(dtype)) as u64;
            out.push(t);
        }
        if off != layer.param_bytes {
            bail!(
                "{}: layer {} has {} bytes of tensors but the shape says {}",
                shape.arch,
                layer.name,
                off,
                layer.param_bytes
            );
        }
    }
    Ok(out)
}

fn generic_tensors(shape: &ModelShape, dtype: Dtype) -> Vec<TensorSpec> {
    shape
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let (k, n) = generic_dims(layer.param_bytes, dtype);
            TensorSpec {
                name: format!("{}.weight", layer.name),
                layer: l,
                offset: 0,
                shape: vec![k, n],
                init: Init::Uniform(1.0 / (k.max(1) as f32).sqrt()),
            }
        })
        .collect()
}

/// A transformer shape with `d`'s dimensions and `seq` tokens per request,
/// laid out like [`switchyard_core::arch`]'s built-ins (for small test and
/// benchmark models): `lm_head` decoders or BERT-style encoders.
pub fn transformer_shape(arch: &str, d: TransformerDims, seq: u64) -> ModelShape {
    use switchyard_core::model::Layer;
    let h = d.hidden;
    let emb =
        (d.vocab + d.max_positions + d.token_types) * h + if d.token_types > 0 { 2 * h } else { 0 };
    let block = 4 * h * h + 4 * h + 2 * h + 2 * h * d.ffn + d.ffn + h + 2 * h;
    let block_flops = 2.0 * (4 * h * h + 2 * h * d.ffn) as f64 + 4.0 * (seq * h) as f64;
    let layer = |name: String, kind, params: u64, flops| Layer {
        name,
        kind,
        param_bytes: params * DTYPE_BYTES,
        flops_per_item: flops,
    };
    let mut layers = vec![layer("embeddings".into(), LayerKind::Embedding, emb, 0.0)];
    for i in 0..d.blocks {
        layers.push(layer(
            format!("blocks.{i}"),
            LayerKind::TransformerBlock,
            block,
            block_flops,
        ));
    }
    layers.push(if d.tied_head {
        layer(
            "head".into(),
            LayerKind::Head,
            2 * h,
            2.0 * (h * d.vocab) as f64,
        )
    } else {
        layer(
            "head".into(),
            LayerKind::Head,
            h * h + h,
            2.0 * (h * h) as f64 / seq as f64,
        )
    });
    ModelShape {
        arch: arch.to_string(),
        family: Family::Transformer(d),
        items_per_request: seq,
        layers,
    }
}

/// The `[k, n]` matrix a GEMM-equivalent layer of `bytes` parameter bytes
/// of `dtype` multiplies by: `k = min(1024, params)`, `n = params / k`
/// (trailing elements that do not fill a row are copied but not read).
pub fn generic_dims(bytes: u64, dtype: Dtype) -> (usize, usize) {
    let params = bytes as usize / el_bytes(dtype);
    let k = params.clamp(1, 1024);
    (k, params / k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_lays_out_exactly() {
        for name in switchyard_core::arch::NAMES {
            let shape = switchyard_core::arch::builtin(name).unwrap();
            let l = ModelLayout::new(&shape).unwrap();
            assert_eq!(l.total_bytes(), shape.total_bytes(), "{name}");
            let sum: u64 = l.tensors.iter().map(|t| t.numel() as u64 * 2).sum();
            if matches!(l.kind, Kind::Transformer(_)) {
                assert_eq!(sum, shape.total_bytes(), "{name}");
            } else {
                assert!(
                    sum <= shape.total_bytes() && sum * 2 > shape.total_bytes(),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn typed_layouts_scale_offsets() {
        for name in ["bert-base", "gpt2", "resnet-152"] {
            let fp16 = switchyard_core::arch::builtin(name).unwrap();
            let a = ModelLayout::new(&fp16).unwrap();
            for d in [Dtype::Fp32, Dtype::Bf16] {
                let l = ModelLayout::typed(&fp16.clone().with_dtype(d), d).unwrap();
                let k = d.bytes() / 2;
                assert_eq!(l.total_bytes(), a.total_bytes() * k, "{name} {d:?}");
                assert_eq!(l.tensors.len(), a.tensors.len());
                for (x, y) in l.tensors.iter().zip(&a.tensors) {
                    assert_eq!((x.offset, &x.shape), (y.offset * k, &y.shape), "{name}");
                }
            }
            // An fp16 shape laid out as fp32 does not add up.
            if name != "resnet-152" {
                assert!(ModelLayout::typed(&fp16, Dtype::Fp32).is_err());
            }
        }
    }

    #[test]
    fn generic_dims_cover_params() {
        assert_eq!(generic_dims(2 * 4096, Dtype::Fp16), (1024, 4));
        assert_eq!(generic_dims(2 * 10, Dtype::Fp16), (10, 1));
        assert_eq!(generic_dims(1, Dtype::Fp16), (1, 0));
        assert_eq!(generic_dims(4 * 4096, Dtype::Fp32), (1024, 4));
    }
}
