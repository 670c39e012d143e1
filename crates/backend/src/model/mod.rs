//! Real models: every architecture's true tensors, laid out in one fp16
//! buffer per model in layer order, so a layer group is one contiguous copy.
//!
//! Transformers (OPT, BERT, GPT-2; [`switchyard_core::model::TransformerDims`])
//! get their real tensors and a real forward pass ([`crate::forward`]): embeddings,
//! attention, MLP and layer norms through matrix products and small kernels.
//! Pre-LN decoders (OPT, GPT-2) run causal attention and an LM head tied to
//! the token embedding; BERT runs post-LN bidirectional attention and its
//! pooler. Convolutional models run as GEMM-equivalent work of the same FLOPs
//! and parameter bytes, and synthetic models as GEMM work sized to their
//! layer time at the device's measured matrix rate (both documented in
//! [`crate::forward`]).
//!
//! This layer holds no device code: [`layout`] (tensors and offsets),
//! [`weights`] (seeded fill, safetensors), [`shard`] (tensor-parallel
//! slices) and [`reference`](mod@reference) (the f32 host forward pass the devices are
//! checked against); [`tiny`] holds the tiny transformers the checks use.

pub mod layout;
pub mod reference;
pub mod shard;
pub mod tiny;
pub mod weights;

pub use layout::{
    generic_dims, transformer_cfg, transformer_shape, Init, Kind, ModelLayout, TensorSpec,
    TransformerCfg,
};
