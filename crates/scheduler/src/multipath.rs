//! Multi-path loading (`policy.loading: multipath`): a one-GPU model's
//! layer groups are split over its GPU's own host link and the links of up
//! to `k` helper GPUs. A helper's piece is copied from host memory into
//! staging memory reserved on the helper (the top `staging_bytes` of its
//! pool, never memory of a model loaded there), then forwarded over the
//! peer link to the target ([`crate::Via`]); each piece is its own copy,
//! so group `g`'s compute waits only for group `g`'s pieces.
//!
//! Decisions, all here:
//! - a GPU lends its link only while none of its own copies (those over
//!   its link into its own pool) are in flight, so its own loads never
//!   queue behind another GPU's; helpers are tried in ring order from the
//!   target (`target + 1, target + 2, ...` modulo the GPU count), at most
//!   `k` of them;
//! - a group's bytes are shared equally between the target's link and its
//!   helpers' (rounded down to [`PIECE_ALIGN`]); a group smaller than
//!   [`MIN_SPLIT_BYTES`] per path is not split (the copy's fixed cost
//!   would eat the gain);
//! - a helper's share is cut into chunks of at most a quarter of its
//!   staging space ([`STAGING_SLOTS`]), each its own piece, staged at the
//!   next position of the helper's staging ring; chunks are issued round
//!   robin over the helpers, since forwards into a target run in issue
//!   order. A chunk that reuses
//!   staging bytes is written only after the forward of the piece that
//!   held them has landed: a hazard executors respect on their own
//!   ([`Via::staging_offset`] names the bytes), never a reordering, since
//!   both pieces go over the same helper link in issue order.

use crate::{CopyId, Part, Via};
use switchyard_core::workload::{LoadingSpec, MultipathGrouping};

/// Pieces start and end on multiples of this many bytes (fp16 rows and
/// DMA-friendly offsets).
pub const PIECE_ALIGN: u64 = 4096;
/// Smallest piece worth sending over a helper, bytes.
pub const MIN_SPLIT_BYTES: u64 = 1 << 20;
/// A helper's staging space holds this many chunks at once (so the host
/// copy of one overlaps the forwards of the others).
pub const STAGING_SLOTS: u64 = 4;

/// How a group of `bytes` is shared over the target's link and `lenders`
/// helper links: `(own, share)`, the target's piece (the rest after the
/// helpers' shares) and each helper's share (an equal part, rounded down
/// to [`PIECE_ALIGN`]); `None` when it is not split (no lender, or a share
/// under [`MIN_SPLIT_BYTES`]).
pub fn shares(bytes: u64, lenders: u32) -> Option<(u64, u64)> {
    if lenders == 0 {
        return None;
    }
    let share = (bytes / (lenders as u64 + 1)) / PIECE_ALIGN * PIECE_ALIGN;
    (share >= MIN_SPLIT_BYTES).then(|| (bytes - share * lenders as u64, share))
}

/// One piece of a layer group's bytes: `bytes` at `offset` from the group's
/// start, over the target's own link (`via: None`) or through a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Offset of the piece in the group's bytes.
    pub offset: u64,
    /// Its length.
    pub bytes: u64,
    /// The helper and staging space it goes through, if any.
    pub via: Option<Via>,
}

impl Piece {
    /// Where the piece sits in its group of `group_bytes` split into
    /// `pieces` pieces ([`crate::CopyOp::part`]); `None` when it is the
    /// whole group.
    pub fn part_of(&self, group_bytes: u64, pieces: usize) -> Option<Part> {
        (pieces > 1).then_some(Part {
            offset: self.offset,
            group_bytes,
        })
    }
}

/// The multi-path planner: staging rings and link use per GPU.
#[derive(Debug, Clone)]
pub struct Multipath {
    helpers: u32,
    /// Pool offset where each GPU's staging space starts (the weight
    /// pool's capacity).
    staging_base: u64,
    /// Bytes of each GPU's staging space.
    staging_bytes: u64,
    /// Largest chunk staged at once.
    chunk: u64,
    /// Per GPU: next free position of its staging ring.
    ring: Vec<u64>,
    /// Per GPU: its own copies in flight over its own link.
    own_inflight: Vec<u32>,
    /// Per copy id: the GPU whose own link it holds, if any.
    own: Vec<Option<u32>>,
    /// `policy.multipath_grouping: every_helper` (an ablation): loads take
    /// the plan for `helpers` lenders whatever is lent.
    plan_every_helper: bool,
}

impl Multipath {
    /// A planner for `gpus` GPUs whose weight pools have `usable` bytes,
    /// of which the top `spec.staging_bytes` become staging; `None` when
    /// `spec` is direct loading.
    pub fn new(spec: &LoadingSpec, gpus: u32, usable: u64) -> Option<Multipath> {
        if !spec.multipath() || gpus < 2 {
            return None;
        }
        let staging = spec.staging_bytes.min(usable) / PIECE_ALIGN * PIECE_ALIGN;
        // A piece may come out up to an alignment unit longer in an
        // executor's own layout of the group: the ring keeps that slack.
        let chunk =
            (staging.saturating_sub(PIECE_ALIGN) / STAGING_SLOTS) / PIECE_ALIGN * PIECE_ALIGN;
        if chunk == 0 {
            return None;
        }
        Some(Multipath {
            helpers: spec.helpers.min(gpus - 1),
            staging_base: usable - staging,
            staging_bytes: staging,
            chunk,
            ring: vec![0; gpus as usize],
            own_inflight: vec![0; gpus as usize],
            own: Vec::new(),
            plan_every_helper: spec.grouping == MultipathGrouping::EveryHelper,
        })
    }

    /// Bytes of each GPU's pool left for model weights: staging is the
    /// top of the pool, above this.
    pub fn weight_capacity(&self) -> u64 {
        self.staging_base
    }

    /// Bytes of each GPU's staging space.
    pub fn staging_bytes(&self) -> u64 {
        self.staging_bytes
    }

    /// The pieces of a group of `bytes` loading onto `target`, into `out`
    /// (cleared first): split by `planner` when multi-path loading is on
    /// and `splittable` (a one-GPU stage), else the whole group.
    pub fn plan(
        planner: Option<&mut Multipath>,
        target: u32,
        bytes: u64,
        splittable: bool,
        out: &mut Vec<Piece>,
    ) {
        match planner {
            Some(mp) if splittable => mp.split(target, bytes, out),
            _ => {
                out.clear();
                out.push(Piece {
                    offset: 0,
                    bytes,
                    via: None,
                });
            }
        }
    }

    /// Splits a group of `bytes` loading onto `target` into pieces into
    /// `out` (cleared first): the target's own piece, then helper chunks
    /// round robin over the helpers; together they tile the group. Record
    /// each piece's copy id with [`Multipath::issued`].
    pub fn split(&mut self, target: u32, bytes: u64, out: &mut Vec<Piece>) {
        out.clear();
        let lenders = self.lenders(target);
        let Some((own, share)) = shares(bytes, lenders.len() as u32) else {
            out.push(Piece {
                offset: 0,
                bytes,
                via: None,
            });
            return;
        };
        // The target's own piece first (the layers' first bytes), then the
        // helpers' shares in chunks staged at each helper's ring's next
        // position, taken round robin over the helpers: forwards into the
        // target run in issue order, so the k-th chunk of every helper is
        // issued before any helper's (k+1)-th, as the chunks land.
        out.push(Piece {
            offset: 0,
            bytes: own,
            via: None,
        });
        let mut done = 0;
        while done < share {
            let len = (share - done).min(self.chunk);
            for (i, &h) in lenders.iter().enumerate() {
                let pos = &mut self.ring[h as usize];
                if *pos + len + PIECE_ALIGN > self.staging_bytes {
                    *pos = 0;
                }
                out.push(Piece {
                    offset: own + share * i as u64 + done,
                    bytes: len,
                    via: Some(Via {
                        helper: h,
                        staging_offset: self.staging_base + *pos,
                    }),
                });
                *pos += len;
            }
            done += len;
        }
    }

    /// The GPUs that would lend their links to a load onto `target` now:
    /// those without a copy of their own in flight, in ring order from the
    /// target, at most `k`.
    pub fn lenders(&self, target: u32) -> Vec<u32> {
        let n = self.ring.len() as u32;
        (1..n)
            .map(|i| (target + i) % n)
            .filter(|&h| self.own_inflight[h as usize] == 0)
            .take(self.helpers as usize)
            .collect()
    }

    /// The helper count whose copy groups a load onto `target` issued now
    /// is planned for ([`crate::placement::Placement::groups_via`]): the
    /// helpers that lend now ([`Multipath::lenders`]), so a load that finds
    /// helpers busy with their own loads gets groups sized for the links
    /// it really has; `k` under the `every_helper` ablation.
    pub fn plan_lenders(&self, target: u32) -> u32 {
        if self.plan_every_helper {
            self.helpers
        } else {
            self.lenders(target).len() as u32
        }
    }

    /// Most helpers one load borrows links from (`k`, at most the other
    /// GPUs).
    pub fn helpers(&self) -> u32 {
        self.helpers
    }

    /// Largest piece staged on a helper at once, bytes.
    pub fn chunk(&self) -> u64 {
        self.chunk
    }

    /// Records that `piece` went out as copy `id` onto `target`.
    pub fn issued(&mut self, id: CopyId, target: u32, piece: &Piece) {
        let i = id as usize;
        if self.own.len() <= i {
            self.own.resize(i + 1, None);
        }
        if piece.via.is_none() {
            self.own_inflight[target as usize] += 1;
            self.own[i] = Some(target);
        } else {
            self.own[i] = None;
        }
    }

    /// Copy `id` is done: the link it held is free for lending again.
    pub fn done(&mut self, id: CopyId) {
        if let Some(g) = self.own.get_mut(id as usize).and_then(Option::take) {
            self.own_inflight[g as usize] -= 1;
        }
    }

    /// Checks the staging rings stay inside their space.
    pub fn check(&self) -> Result<(), String> {
        match self.ring.iter().position(|&p| p > self.staging_bytes) {
            Some(g) => Err(format!("GPU {g}: staging ring past its space")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::workload::Loading;

    fn planner(gpus: u32, k: u32, staging: u64) -> Multipath {
        let spec = LoadingSpec {
            mode: Loading::Multipath,
            helpers: k,
            staging_bytes: staging,
            direct_host: false,
            grouping: Default::default(),
        };
        Multipath::new(&spec, gpus, 1 << 34).unwrap()
    }

    fn covers(out: &[Piece], bytes: u64) {
        let mut sorted = out.to_vec();
        sorted.sort_by_key(|p| p.offset);
        let mut end = 0;
        for p in &sorted {
            assert_eq!(p.offset, end);
            end += p.bytes;
        }
        assert_eq!(end, bytes);
    }

    #[test]
    fn direct_loading_has_no_planner() {
        assert!(Multipath::new(&LoadingSpec::default(), 4, 1 << 30).is_none());
    }

    #[test]
    fn splits_equally_over_idle_helpers_and_covers_the_group() {
        let mut mp = planner(4, 3, 1 << 30);
        let mut out = Vec::new();
        mp.split(1, 100 << 20, &mut out);
        assert_eq!(out.len(), 4);
        let helpers: Vec<u32> = out.iter().filter_map(|p| p.via.map(|v| v.helper)).collect();
        assert_eq!(helpers, vec![2, 3, 0]);
        covers(&out, 100 << 20);
        assert_eq!(mp.weight_capacity(), (1 << 34) - (1 << 30));
        // Staging sits above the weights.
        assert!(out[1..]
            .iter()
            .all(|p| p.via.unwrap().staging_offset >= mp.weight_capacity()));
        // Bigger shares go round robin, chunk by chunk.
        let mut mp = planner(3, 2, 64 << 20);
        mp.split(0, 300 << 20, &mut out);
        covers(&out, 300 << 20);
        let helpers: Vec<u32> = out.iter().filter_map(|p| p.via.map(|v| v.helper)).collect();
        assert_eq!(helpers[..4], [1, 2, 1, 2]);
    }

    #[test]
    fn a_gpu_with_its_own_copy_in_flight_does_not_lend() {
        let mut mp = planner(2, 1, 1 << 30);
        let mut out = Vec::new();
        // GPU 1 loads for itself: its own piece holds its link.
        mp.split(1, 64 << 20, &mut out);
        assert_eq!(out.len(), 2);
        mp.issued(0, 1, &out[0]);
        mp.issued(1, 1, &out[1]);
        // GPU 0 loads meanwhile: GPU 1 is busy with its own load.
        mp.split(0, 64 << 20, &mut out);
        assert_eq!(
            out,
            vec![Piece {
                offset: 0,
                bytes: 64 << 20,
                via: None
            }]
        );
        mp.done(0);
        mp.split(0, 64 << 20, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].via.unwrap().helper, 1);
    }

    #[test]
    fn big_shares_are_chunked_through_the_staging_ring() {
        let mut mp = planner(2, 1, 64 << 20);
        let mut out = Vec::new();
        mp.split(0, 200 << 20, &mut out);
        covers(&out, 200 << 20);
        // 100 MiB over the helper in chunks of a quarter of the 64 MiB ring
        // less its slack, wrapping; none runs into the slack at the top.
        assert_eq!(out[0].bytes, 100 << 20);
        let base = mp.weight_capacity();
        let chunk = ((64 << 20) - PIECE_ALIGN) / 4 / PIECE_ALIGN * PIECE_ALIGN;
        let offs: Vec<u64> = out[1..]
            .iter()
            .map(|p| p.via.unwrap().staging_offset - base)
            .collect();
        assert_eq!(offs[..5], [0, chunk, 2 * chunk, 3 * chunk, 0]);
        assert!(out[1..].iter().all(|p| p.bytes <= chunk
            && p.via.unwrap().staging_offset - base + p.bytes + PIECE_ALIGN <= 64 << 20));
        mp.check().unwrap();
    }

    #[test]
    fn small_groups_are_not_split() {
        let mut mp = planner(2, 1, 1 << 30);
        let mut out = Vec::new();
        mp.split(0, MIN_SPLIT_BYTES, &mut out);
        assert_eq!(out.len(), 1);
    }
}
