//! Tensor- and pipeline-parallel shards of a model, as Megatron splits them.
//!
//! With `tp` ranks, each layer's *main part* on a rank is exactly
//! `ceil(layer bytes / tp)` bytes (the scheduler's shard size, so its pool
//! offsets hold), holding the rank's slice of the split tensors:
//!
//! - attention: the fused QKV projection split by columns head-wise (each
//!   rank owns `heads / tp` heads of q, k and v), the output projection by
//!   rows (a partial sum per rank, joined by an all-reduce);
//! - MLP: fc1 by columns, fc2 by rows (one more all-reduce);
//! - embeddings (token, position, token type) by hidden columns (each rank
//!   looks up its columns; an all-gather joins them); the tied LM head
//!   multiplies by the rank's token-embedding columns (partial logits,
//!   all-reduced);
//! - GEMM-equivalent layers: a contiguous byte slice each.
//!
//! Small tensors every rank needs whole (layer norms, the biases added after
//! an all-reduce, BERT's pooler) are *replicated* into the layer's *side
//! part*, which lives in a fixed area beside the pool and is copied with
//! every load of the stage. So is the token embedding a tied LM head needs
//! on a pipeline stage that does not hold the embeddings (Megatron keeps the
//! same copy on its last stage). With `tp = 1` every tensor sits at its
//! original offset and only that copy of the embedding is a side part.

use super::layout::{Kind, ModelLayout};
use anyhow::{bail, Result};
use std::ops::Range;
use switchyard_core::model::LayerKind;

/// How a tensor is split over the ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Whole, unchanged (every rank holds all of it).
    Whole,
    /// Columns of a row-major `[rows, cols]` tensor: `sections` equal
    /// column blocks, each split in `tp` (rank `r` takes block `r` of each).
    Cols {
        /// Column sections (3 for fused QKV).
        sections: usize,
    },
    /// Rows of a row-major `[rows, cols]` tensor.
    Rows,
    /// A contiguous byte slice of the whole layer (GEMM-equivalent layers).
    Bytes,
}

/// Where one tensor's rank slice sits.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Index into [`ModelLayout::tensors`].
    pub tensor: usize,
    /// How it is split.
    pub split: Split,
    /// In the side part (else the main part).
    pub side: bool,
    /// Byte offset inside the layer's main or side part.
    pub offset: u64,
    /// Bytes of the rank's slice.
    pub bytes: u64,
}

/// Shards of one model for a tensor-parallel degree and pipeline stages.
#[derive(Debug, Clone)]
pub struct ShardLayout {
    /// Tensor-parallel degree.
    pub tp: usize,
    /// Layers of each pipeline stage.
    pub stages: Vec<Range<usize>>,
    /// `main_offsets[l]`: offset of layer `l`'s main part in a rank's image
    /// (cumulative `ceil(bytes / tp)`); the last entry is the image size.
    pub main_offsets: Vec<u64>,
    /// `side_offsets[l]`: offset of layer `l`'s side part inside its
    /// stage's side image.
    pub side_offsets: Vec<u64>,
    /// Bytes of each layer's side part.
    pub side_bytes: Vec<u64>,
    /// Parts of each layer.
    pub parts: Vec<Vec<Part>>,
    /// Stage of each layer.
    pub stage_of: Vec<usize>,
}

impl ShardLayout {
    /// One GPU, one stage: the model as it is.
    pub fn single(layout: &ModelLayout) -> ShardLayout {
        ShardLayout::new(layout, 1, &[0..layout.layers()]).expect("tp = 1 always splits")
    }

    /// Splits `layout` over `tp` ranks and `stages`; fails, naming the
    /// dimension, when a transformer's heads, FFN or hidden size do not
    /// divide by `tp`.
    pub fn new(layout: &ModelLayout, tp: usize, stages: &[Range<usize>]) -> Result<ShardLayout> {
        let tp = tp.max(1);
        let n = layout.layers();
        let arch = &layout.shape.arch;
        if let Kind::Transformer(cfg) = layout.kind {
            let d = cfg.dims;
            for (what, v) in [("heads", d.heads), ("ffn", d.ffn), ("hidden", d.hidden)] {
                if v % tp as u64 != 0 {
                    bail!("{arch}: tensor parallelism {tp} does not divide its {what} ({v})");
                }
            }
        }
        let mut stage_of = vec![0; n];
        for (s, r) in stages.iter().enumerate() {
            for l in r.clone() {
                stage_of[l] = s;
            }
        }
        let tok = layout.tensor(0, ".tok").map(|_| {
            layout
                .tensors
                .iter()
                .position(|t| t.layer == 0 && t.name.ends_with(".tok"))
                .unwrap()
        });
        let mut parts = vec![Vec::new(); n];
        let mut main_offsets = vec![0u64];
        let mut side_bytes = vec![0u64; n];
        for l in 0..n {
            let lbytes = layout.range_bytes(l..l + 1);
            let main_cap = lbytes.div_ceil(tp as u64);
            let (mut main, mut side) = (0u64, 0u64);
            let mut ps: Vec<Part> = Vec::new();
            let mut push = |tensor: usize, split: Split, to_side: bool, bytes: u64| {
                let at = if to_side { &mut side } else { &mut main };
                ps.push(Part {
                    tensor,
                    split,
                    side: to_side,
                    offset: *at,
                    bytes,
                });
                *at += bytes;
            };
            let kind = layout.shape.layers[l].kind;
            let lname_len = layout.shape.layers[l].name.len() + 1;
            for (i, t) in layout.tensors.iter().enumerate().filter(|t| t.1.layer == l) {
                let full = (t.numel() * layout.el()) as u64;
                if tp == 1 {
                    push(i, Split::Whole, false, full);
                    continue;
                }
                if layout.kind == Kind::Generic {
                    push(i, Split::Bytes, false, main_cap);
                    continue;
                }
                let split = match (kind, &t.name[lname_len.min(t.name.len())..]) {
                    (LayerKind::Embedding, "tok" | "pos" | "type") => Split::Cols { sections: 1 },
                    (LayerKind::TransformerBlock, "qkv.weight" | "qkv.bias") => {
                        Split::Cols { sections: 3 }
                    }
                    (LayerKind::TransformerBlock, "fc1.weight" | "fc1.bias") => {
                        Split::Cols { sections: 1 }
                    }
                    (LayerKind::TransformerBlock, "out.weight" | "fc2.weight") => Split::Rows,
                    _ => Split::Whole,
                };
                if split == Split::Whole {
                    push(i, split, true, full);
                } else {
                    push(i, split, false, full / tp as u64);
                }
            }
            // A tied LM head on a stage without the embeddings keeps its own
            // copy of the (rank's columns of the) token embedding.
            if let (Some(ti), Kind::Transformer(cfg)) = (tok, layout.kind) {
                if cfg.lm_head && kind == LayerKind::Head && stage_of[l] != stage_of[0] {
                    let full = (layout.tensors[ti].numel() * layout.el()) as u64;
                    let split = if tp == 1 {
                        Split::Whole
                    } else {
                        Split::Cols { sections: 1 }
                    };
                    push(ti, split, true, full / tp as u64);
                }
            }
            if tp == 1 {
                // Whole tensors keep their original offsets.
                for p in ps.iter_mut().filter(|p| !p.side) {
                    p.offset = layout.tensors[p.tensor].offset;
                }
            }
            parts[l] = ps;
            if main > main_cap {
                bail!(
                    "{arch}: layer {l}'s rank slice is {main} bytes, more than its shard of {main_cap}"
                );
            }
            main_offsets.push(main_offsets[l] + main_cap);
            side_bytes[l] = side;
        }
        let mut side_offsets = vec![0u64; n];
        for r in stages {
            let mut at = 0;
            for l in r.clone() {
                side_offsets[l] = at;
                at += side_bytes[l];
            }
        }
        Ok(ShardLayout {
            tp,
            stages: stages.to_vec(),
            main_offsets,
            side_offsets,
            side_bytes,
            parts,
            stage_of,
        })
    }

    /// Bytes of one rank's image (every layer's main part).
    pub fn image_bytes(&self) -> u64 {
        *self.main_offsets.last().unwrap()
    }

    /// `(offset in the rank image, bytes)` of the main parts of `layers`.
    pub fn main_range(&self, layers: Range<usize>) -> (u64, u64) {
        let a = self.main_offsets[layers.start];
        (a, self.main_offsets[layers.end] - a)
    }

    /// `(offset in the stage's side image, bytes)` of the side parts of
    /// `layers` (all in one stage).
    pub fn side_range(&self, layers: Range<usize>) -> (u64, u64) {
        if layers.is_empty() {
            return (0, 0);
        }
        let a = self.side_offsets[layers.start];
        (a, layers.map(|l| self.side_bytes[l]).sum())
    }

    /// Bytes of stage `s`'s side image.
    pub fn stage_side_bytes(&self, s: usize) -> u64 {
        self.side_range(self.stages[s].clone()).1
    }

    /// The part of layer `l` whose tensor name ends with `suffix`.
    pub fn find(&self, layout: &ModelLayout, l: usize, suffix: &str) -> Option<&Part> {
        self.parts[l]
            .iter()
            .find(|p| layout.tensors[p.tensor].name.ends_with(suffix))
    }

    /// Writes rank `rank`'s image of every layer's main part from the
    /// model's full buffer `full` into `out` (`image_bytes` long; padding zero).
    pub fn fill_image(&self, layout: &ModelLayout, full: &[u8], rank: usize, out: &mut [u8]) {
        out.fill(0);
        for (l, parts) in self.parts.iter().enumerate() {
            let base = self.main_offsets[l] as usize;
            for p in parts.iter().filter(|p| !p.side) {
                let dst = &mut out[base + p.offset as usize..][..p.bytes as usize];
                self.slice(layout, full, p, rank, dst);
            }
        }
    }

    /// Writes rank `rank`'s side image of stage `s` into `out`.
    pub fn fill_side(
        &self,
        layout: &ModelLayout,
        full: &[u8],
        s: usize,
        rank: usize,
        out: &mut [u8],
    ) {
        for l in self.stages[s].clone() {
            let base = self.side_offsets[l] as usize;
            for p in self.parts[l].iter().filter(|p| p.side) {
                let dst = &mut out[base + p.offset as usize..][..p.bytes as usize];
                self.slice(layout, full, p, rank, dst);
            }
        }
    }

    fn slice(&self, layout: &ModelLayout, full: &[u8], p: &Part, rank: usize, dst: &mut [u8]) {
        let t = &layout.tensors[p.tensor];
        let start = (layout.layer_offsets[t.layer] + t.offset) as usize;
        let tp = self.tp;
        let (rows, cols) = match t.shape.as_slice() {
            [n] => (1, *n),
            [r, c] => (*r, *c),
            s => (s[..s.len() - 1].iter().product(), *s.last().unwrap()),
        };
        let el = layout.el();
        match p.split {
            Split::Whole => dst.copy_from_slice(&full[start..start + dst.len()]),
            Split::Rows => {
                let per = rows / tp * cols * el;
                dst.copy_from_slice(&full[start + rank * per..][..per]);
            }
            Split::Cols { sections } => {
                let sc = cols / sections;
                let w = sc / tp;
                let mut at = 0;
                for row in 0..rows {
                    for s in 0..sections {
                        let src = start + (row * cols + s * sc + rank * w) * el;
                        dst[at..at + w * el].copy_from_slice(&full[src..src + w * el]);
                        at += w * el;
                    }
                }
            }
            Split::Bytes => {
                let lstart = layout.layer_offsets[t.layer] as usize;
                let lend = layout.layer_offsets[t.layer + 1] as usize;
                let a = (lstart + rank * dst.len()).min(lend);
                let b = (a + dst.len()).min(lend);
                dst[..b - a].copy_from_slice(&full[a..b]);
                dst[b - a..].fill(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layout::transformer_shape;
    use crate::model::tiny::tiny_models;
    use switchyard_core::model::stage_partition;

    #[test]
    fn main_parts_fit_the_schedulers_shards() {
        for name in ["opt-13b", "opt-1.3b", "gpt2", "bert-base", "resnet-152"] {
            let shape = switchyard_core::arch::builtin(name).unwrap();
            let layout = ModelLayout::new(&shape).unwrap();
            for (tp, pp) in [(1, 1), (2, 1), (1, 2), (2, 2), (4, 1)] {
                let st = stage_partition(&shape, pp);
                let s = ShardLayout::new(&layout, tp, &st).unwrap();
                let want: u64 = (0..layout.layers())
                    .map(|l| switchyard_core::cost::shard_layer_bytes(&shape, l, tp as u32))
                    .sum();
                assert_eq!(s.image_bytes(), want, "{name} tp={tp}");
                if tp == 1 && pp == 1 {
                    assert_eq!(s.main_offsets, layout.layer_offsets, "{name}");
                    assert!(s.side_bytes.iter().all(|&b| b == 0), "{name}");
                }
            }
        }
    }

    #[test]
    fn rank_slices_cover_split_tensors_exactly_once() {
        let (_, dims, seq) = tiny_models().remove(0);
        let layout = ModelLayout::new(&transformer_shape("opt-tiny", dims, seq)).unwrap();
        let full: Vec<u8> = (0..layout.total_bytes()).map(|i| (i % 251) as u8).collect();
        let n = layout.layers();
        let s = ShardLayout::new(&layout, 2, &[0..n]).unwrap();
        let mut imgs = vec![vec![0u8; s.image_bytes() as usize]; 2];
        for (r, img) in imgs.iter_mut().enumerate() {
            s.fill_image(&layout, &full, r, img);
        }
        // fc2 (rows): rank 0 then rank 1 is the whole tensor.
        let p = s.find(&layout, 1, ".fc2.weight").unwrap();
        let t = &layout.tensors[p.tensor];
        let at = (s.main_offsets[1] + p.offset) as usize;
        let mut joined = imgs[0][at..at + p.bytes as usize].to_vec();
        joined.extend_from_slice(&imgs[1][at..at + p.bytes as usize]);
        let src = (layout.layer_offsets[1] + t.offset) as usize;
        assert_eq!(joined, full[src..src + joined.len()]);
        // qkv (head-wise columns): rank 1's first row starts at q's second half.
        let p = s.find(&layout, 1, ".qkv.weight").unwrap();
        let t = &layout.tensors[p.tensor];
        let at = (s.main_offsets[1] + p.offset) as usize;
        let src = (layout.layer_offsets[1] + t.offset) as usize + (dims.hidden as usize / 2) * 2;
        assert_eq!(imgs[1][at..at + 8], full[src..src + 8]);
        // Layer norms are replicated on the side.
        assert!(s.find(&layout, 1, ".ln1.weight").unwrap().side);
    }

    #[test]
    fn tied_head_on_a_later_stage_carries_the_token_embedding() {
        let (_, dims, seq) = tiny_models().remove(0);
        let layout = ModelLayout::new(&transformer_shape("opt-tiny", dims, seq)).unwrap();
        let n = layout.layers();
        let s = ShardLayout::new(&layout, 1, &[0..2, 2..n]).unwrap();
        let p = s.find(&layout, n - 1, ".tok").unwrap();
        assert!(p.side);
        assert_eq!(s.stage_side_bytes(1), p.bytes);
        assert_eq!(s.stage_side_bytes(0), 0);
        let bad = TransformerDimsExt::with_heads(dims, 3);
        let l2 = ModelLayout::new(&transformer_shape("opt-bad", bad, seq)).unwrap();
        let e = ShardLayout::new(&l2, 2, &[0..l2.layers()]).unwrap_err();
        assert!(format!("{e}").contains("heads"), "{e}");
    }

    struct TransformerDimsExt;
    impl TransformerDimsExt {
        fn with_heads(
            d: switchyard_core::model::TransformerDims,
            heads: u64,
        ) -> switchyard_core::model::TransformerDims {
            switchyard_core::model::TransformerDims {
                heads,
                hidden: 96,
                ..d
            }
        }
    }
}
