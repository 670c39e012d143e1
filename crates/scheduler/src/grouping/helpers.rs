//! The grouping DP for multi-path loads (`policy.loading: multipath`,
//! [`crate::multipath`]): groups planned with the copy time a group takes
//! split over the target's link and its helpers' links, not one link's.
//!
//! A group of `B` bytes loaded with `L` lenders is split as
//! [`crate::multipath::Multipath::split`] splits it ([`shares`]): the
//! target's piece over its own link, each helper's share in chunks over
//! the helper's link into staging, each chunk then forwarded over the
//! peer link into the target, chunk by chunk round robin over the
//! helpers. Costed on the links alone (helpers idle, each lane starting
//! free), the group
//!
//! - holds the links for `lane = max(alpha + own/beta, sum over its chunks
//!   of (alpha + len/beta))`: the next group's pieces queue behind it on
//!   the same links;
//! - lands `tail` after that: the last chunks' forwards over the peer link
//!   (which the next group's host copies do not wait for).
//!
//! With `lane_k` and `tail_k` of each group and `p_k` its compute, a
//! stage finishes at `max_k (sum_{j<=k} lane_j + tail_k + sum_{j>=k} p_j)`,
//! and the best plan of the layers `s..n` on their own, `G(s)`, obeys
//! `G(s) = min_{e>s} max(lane(s,e) + tail(s,e) + Suf(s), lane(s,e) + G(e))`
//! with `G(n) = -inf`: an exact O(n^2) DP over this model, which the
//! one-link DP of [`super::optimal`] is with `lane = alpha + bytes/beta`
//! and no tail. The model leaves out the lanes' offsets between groups (a
//! target piece a little longer than a helper's share, a peer link still
//! busy with the last group's forwards): both are a few microseconds
//! against a group's milliseconds on the profiles' links.

use crate::multipath::shares;
use std::ops::Range;
use switchyard_core::hardware::LinkCost;

/// The links a multi-path load travels over, as the DP costs them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HelperLinks {
    /// Each GPU's host link (the target's and every helper's).
    pub link: LinkCost,
    /// The peer link a staged piece is forwarded over.
    pub peer: LinkCost,
    /// Largest chunk a helper stages at once, bytes
    /// ([`crate::multipath::Multipath::chunk`]).
    pub chunk: u64,
}

impl HelperLinks {
    /// `(lane, tail)` of a group of `bytes` split over the target's link
    /// and `lenders` helper links (module doc): seconds it holds the links,
    /// and seconds after that until its last piece lands on the target.
    pub fn group_time(&self, bytes: u64, lenders: u32) -> (f64, f64) {
        let (target, staged, forwarded) = self.group_parts(bytes, lenders);
        let lane = target.max(staged);
        (lane, target.max(forwarded) - lane)
    }

    /// `(lane, landed)` of a group of `bytes` split over `lenders` helper
    /// links whose pieces over the target's own link start `late` seconds
    /// after the helpers' (host reads ahead of them on that link): when
    /// the links are free again, and when its last piece has landed.
    pub fn group_time_late(&self, bytes: u64, lenders: u32, late: f64) -> (f64, f64) {
        let (target, staged, forwarded) = self.group_parts(bytes, lenders);
        let own = late + target;
        (own.max(staged), own.max(forwarded))
    }

    /// `(target, staged, forwarded)` of a group of `bytes` over `lenders`
    /// helpers, each lane starting free at 0: when the target's own piece
    /// has landed, when the helpers' last chunk is staged, and when the
    /// last forward has landed (0 and 0 when the group is not split).
    fn group_parts(&self, bytes: u64, lenders: u32) -> (f64, f64, f64) {
        let Some((own, share)) = shares(bytes, lenders) else {
            return (self.link.time(bytes), 0.0, 0.0);
        };
        let target = self.link.time(own);
        // Every helper stages its `r`-th chunk at the same time (equal
        // shares, idle lanes); the chunks then go over the peer link one
        // after another, in issue order.
        let (mut staged, mut forwarded, mut done) = (0.0f64, 0.0f64, 0u64);
        while done < share {
            let len = (share - done).min(self.chunk.max(1));
            staged += self.link.time(len);
            for _ in 0..lenders {
                forwarded = forwarded.max(staged) + self.peer.time(len);
            }
            done += len;
        }
        (target, staged, forwarded)
    }
}

/// The grouping of `bytes.len()` layers (compute seconds `compute`) with
/// the earliest finish when every group is loaded over `links` with
/// `lenders` helpers (module doc; ties go to fewer, larger groups).
#[allow(clippy::single_range_in_vec_init)]
pub fn optimal_split(
    bytes: &[u64],
    compute: &[f64],
    links: &HelperLinks,
    lenders: u32,
) -> Vec<Range<usize>> {
    if bytes.is_empty() {
        return vec![0..0];
    }
    super::walk(&split_suffix_plan(bytes, compute, links, lenders).1, 0)
}

/// The dynamic program of [`optimal_split`] over every suffix: `(G,
/// next)`, where `G[s]` is the best finish of layers `s..n` on their own
/// (links free and compute starting at 0) and `next[s]` the end of the
/// first group of that plan ([`super::with_direct_split`] puts another
/// first group in front of these suffixes).
pub(super) fn split_suffix_plan(
    bytes: &[u64],
    compute: &[f64],
    links: &HelperLinks,
    lenders: u32,
) -> (Vec<f64>, Vec<usize>) {
    let n = bytes.len();
    let mut pre = vec![0u64; n + 1];
    for i in 0..n {
        pre[i + 1] = pre[i] + bytes[i];
    }
    let mut suf = vec![0.0f64; n + 1];
    for i in (0..n).rev() {
        suf[i] = suf[i + 1] + compute[i];
    }
    let mut g = vec![f64::NEG_INFINITY; n + 1];
    let mut next = vec![n; n + 1];
    for s in (0..n).rev() {
        let mut best = f64::INFINITY;
        // Descending `e`: on ties the larger first group (fewer copies) wins.
        for e in (s + 1..=n).rev() {
            let (lane, tail) = links.group_time(pre[e] - pre[s], lenders);
            let v = (lane + tail + suf[s]).max(lane + g[e]);
            if v < best {
                best = v;
                next[s] = e;
            }
        }
        g[s] = best;
    }
    (g, next)
}

/// When the last group finishes computing under the model of
/// [`optimal_split`], copies issued back to back from time 0 and compute
/// starting at 0 (0 helpers: [`super::finish_time`]'s one-link model).
pub fn finish_time_split(
    groups: &[Range<usize>],
    bytes: &[u64],
    compute: &[f64],
    links: &HelperLinks,
    lenders: u32,
) -> f64 {
    finish_after_split(groups, bytes, compute, (links, lenders), 0.0, 0.0)
}

/// [`finish_time_split`] with the target's own link taken for `late`
/// seconds before the first group's piece over it (host reads ahead of
/// it; the helpers' links are free) and the compute starting at `done`.
/// The later groups queue behind the first on every link, as in the
/// model of [`optimal_split`].
pub(super) fn finish_after_split(
    groups: &[Range<usize>],
    bytes: &[u64],
    compute: &[f64],
    (links, lenders): (&HelperLinks, u32),
    late: f64,
    mut done: f64,
) -> f64 {
    let mut copied = 0.0f64;
    for (k, r) in groups.iter().enumerate() {
        let sum = bytes[r.clone()].iter().sum();
        let landed = if k == 0 {
            let (lane, landed) = links.group_time_late(sum, lenders, late);
            copied = lane;
            landed
        } else {
            let (lane, tail) = links.group_time(sum, lenders);
            copied += lane;
            copied + tail
        };
        done = done.max(landed) + compute[r.clone()].iter().sum::<f64>();
    }
    done
}

#[cfg(test)]
mod tests {
    use super::super::all_groupings;
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1 << 20;

    fn links(alpha: f64, chunk: u64) -> HelperLinks {
        HelperLinks {
            link: LinkCost {
                alpha_s: alpha,
                beta_bytes_per_s: 1e9,
            },
            peer: LinkCost {
                alpha_s: 1e-5,
                beta_bytes_per_s: 8e9,
            },
            chunk,
        }
    }

    proptest! {
        #[test]
        fn optimal_split_matches_brute_force(
            layers in prop::collection::vec((0u64..12 * MIB, 0.0f64..0.01), 1..9),
            alpha in 0.0f64..0.002,
            chunk_mib in 1u64..6,
            lenders in 0u32..4,
        ) {
            let bytes: Vec<u64> = layers.iter().map(|l| l.0).collect();
            let compute: Vec<f64> = layers.iter().map(|l| l.1).collect();
            let l = links(alpha, chunk_mib * MIB);
            let g = optimal_split(&bytes, &compute, &l, lenders);
            prop_assert_eq!(g.first().unwrap().start, 0);
            prop_assert_eq!(g.last().unwrap().end, bytes.len());
            prop_assert!(g.windows(2).all(|w| w[0].end == w[1].start));
            let best = all_groupings(bytes.len())
                .iter()
                .map(|g| finish_time_split(g, &bytes, &compute, &l, lenders))
                .fold(f64::INFINITY, f64::min);
            let got = finish_time_split(&g, &bytes, &compute, &l, lenders);
            prop_assert!((got - best).abs() <= 1e-9 * best.max(1.0), "{} vs {}", got, best);
        }

        #[test]
        fn without_lenders_the_cost_is_one_links(
            bytes in 0u64..64 * MIB,
            alpha in 0.0f64..0.002,
        ) {
            let l = links(alpha, 4 * MIB);
            prop_assert_eq!(l.group_time(bytes, 0), (l.link.time(bytes), 0.0));
        }
    }

    #[test]
    fn a_split_group_holds_the_links_for_its_largest_share() {
        let l = links(1e-3, 4 * MIB);
        // 12 MiB over two paths: 6 MiB each, the helper's in chunks of 4
        // and 2 MiB (two copies' fixed cost), forwarded behind.
        let (lane, tail) = l.group_time(12 * MIB, 1);
        let staged = l.link.time(4 * MIB) + l.link.time(2 * MIB);
        assert!((lane - staged).abs() < 1e-12);
        assert!((tail - l.peer.time(2 * MIB)).abs() < 1e-12);
        // Under the smallest split share: one link.
        assert_eq!(l.group_time(MIB, 1), (l.link.time(MIB), 0.0));
    }
}
