//! Layer grouping for pipelined loads (PipeSwitch): which layers travel
//! together in one copy.
//!
//! Copies run back to back on the copy stream; group `k` computes once its
//! copy is done and group `k-1` has computed. With `c_k = alpha + bytes_k / beta`
//! and `p_k` the group's compute time, the stage finishes at
//! `max_k (sum_{j<=k} c_j + sum_{j>=k} p_j)`. Every group adds one `alpha` to
//! all later terms uniformly, so the optimum over all groupings satisfies
//! `H(s) = min_{e>s} max(alpha + Pre(e)/beta + Suf(s), alpha + H(e))` with
//! `H(n) = -inf` (`Pre`: bytes of layers before `e`; `Suf`: compute from `s`
//! on): an exact O(n^2) dynamic program over layer boundaries.

use std::ops::Range;
use switchyard_core::hardware::LinkCost;
use switchyard_core::workload::Grouping;

/// Groups of `bytes.len()` layers (indices relative to the stage) for `policy`.
///
/// `bytes[i]` is what layer `i` copies, `compute[i]` its compute time; `link`
/// is the copy link. Groups are contiguous, non-empty and cover every layer.
#[allow(clippy::single_range_in_vec_init)]
pub fn groups(
    policy: Grouping,
    bytes: &[u64],
    compute: &[f64],
    link: &LinkCost,
) -> Vec<Range<usize>> {
    let n = bytes.len();
    match policy {
        Grouping::OneGroup => vec![0..n],
        Grouping::PerLayer => (0..n).map(|i| i..i + 1).collect(),
        Grouping::Optimal => optimal(bytes, compute, link),
    }
}

/// The grouping that minimises [`finish_time`] (exact dynamic program; ties
/// go to fewer, larger groups).
#[allow(clippy::single_range_in_vec_init)]
pub fn optimal(bytes: &[u64], compute: &[f64], link: &LinkCost) -> Vec<Range<usize>> {
    let n = bytes.len();
    if n == 0 {
        return vec![0..0];
    }
    let (_, next) = suffix_plan(bytes, compute, link);
    walk(&next, 0)
}

/// The groups of the optimal plan of layers `from..n`, read off the
/// dynamic program's `next` boundaries.
fn walk(next: &[usize], from: usize) -> Vec<Range<usize>> {
    let n = next.len() - 1;
    let mut out = Vec::new();
    let mut s = from;
    while s < n {
        out.push(s..next[s]);
        s = next[s];
    }
    out
}

/// The dynamic program of [`optimal`] over every suffix: `(H, next)`,
/// where `H[s]` is the best finish of layers `s..n` with copies and
/// compute both starting at 0 and the bytes before `s` already counted in
/// the copies (`H[s] - Pre(s)`: the suffix's best on its own), and
/// `next[s]` the end of the first group of that plan.
fn suffix_plan(bytes: &[u64], compute: &[f64], link: &LinkCost) -> (Vec<f64>, Vec<usize>) {
    let n = bytes.len();
    let mut pre = vec![0.0f64; n + 1];
    for i in 0..n {
        pre[i + 1] = pre[i] + bytes[i] as f64 / link.beta_bytes_per_s;
    }
    let mut suf = vec![0.0f64; n + 1];
    for i in (0..n).rev() {
        suf[i] = suf[i + 1] + compute[i];
    }
    let mut h = vec![f64::NEG_INFINITY; n + 1];
    let mut next = vec![n; n + 1];
    for s in (0..n).rev() {
        let mut best = f64::INFINITY;
        let mut arg = n;
        // Descending `e`: on ties the larger first group (fewer copies) wins.
        for e in (s + 1..=n).rev() {
            let v = (link.alpha_s + pre[e] + suf[s]).max(link.alpha_s + h[e]);
            if v < best {
                best = v;
                arg = e;
            }
        }
        h[s] = best;
        next[s] = arg;
    }
    (h, next)
}

/// When the last group finishes computing, with copies issued back to back
/// from time 0 and compute starting at 0.
pub fn finish_time(
    groups: &[Range<usize>],
    bytes: &[u64],
    compute: &[f64],
    link: &LinkCost,
) -> f64 {
    finish_after(groups, bytes, compute, link, 0.0, 0.0)
}

/// [`finish_time`] with the copies starting at `copied` and the compute
/// at `done`.
fn finish_after(
    groups: &[Range<usize>],
    bytes: &[u64],
    compute: &[f64],
    link: &LinkCost,
    mut copied: f64,
    mut done: f64,
) -> f64 {
    for g in groups {
        copied += link.time(bytes[g.clone()].iter().sum());
        done = done.max(copied) + compute[g.clone()].iter().sum::<f64>();
    }
    done
}

mod direct;
mod helpers;
pub use direct::{with_direct, with_direct_split, DirectCosts, DirectPlan};
pub use helpers::{finish_time_split, optimal_split, HelperLinks};

/// Every grouping of `n` layers into consecutive groups (`2^(n-1)`): the
/// brute force the dynamic programs are tested against.
#[cfg(test)]
fn all_groupings(n: usize) -> Vec<Vec<Range<usize>>> {
    (0..1u32 << (n - 1))
        .map(|mask| {
            let mut g = Vec::new();
            let mut s = 0;
            for i in 1..n {
                if mask & (1 << (i - 1)) != 0 {
                    g.push(s..i);
                    s = i;
                }
            }
            g.push(s..n);
            g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn link() -> LinkCost {
        LinkCost {
            alpha_s: 1e-3,
            beta_bytes_per_s: 1e3,
        }
    }

    proptest! {
        #[test]
        fn optimal_matches_brute_force(
            layers in prop::collection::vec((1u64..50, 0.0f64..0.05), 1..10),
            alpha in 0.0f64..0.02,
        ) {
            let bytes: Vec<u64> = layers.iter().map(|l| l.0).collect();
            let compute: Vec<f64> = layers.iter().map(|l| l.1).collect();
            let link = LinkCost { alpha_s: alpha, beta_bytes_per_s: 1e3 };
            let g = optimal(&bytes, &compute, &link);
            prop_assert_eq!(g.first().unwrap().start, 0);
            prop_assert_eq!(g.last().unwrap().end, bytes.len());
            let best = all_groupings(bytes.len())
                .iter()
                .map(|g| finish_time(g, &bytes, &compute, &link))
                .fold(f64::INFINITY, f64::min);
            let got = finish_time(&g, &bytes, &compute, &link);
            prop_assert!((got - best).abs() <= 1e-9 * best.max(1.0), "{} vs {}", got, best);
        }
    }

    #[test]
    fn extremes_pick_the_obvious_grouping() {
        // Free transfers: one layer per group overlaps best.
        let free = LinkCost {
            alpha_s: 0.0,
            beta_bytes_per_s: 1e3,
        };
        let g = optimal(&[10; 4], &[0.01; 4], &free);
        assert_eq!(g.len(), 4);
        // Huge per-transfer cost: one group.
        let slow = LinkCost {
            alpha_s: 100.0,
            beta_bytes_per_s: 1e3,
        };
        assert_eq!(optimal(&[10; 4], &[0.01; 4], &slow), vec![0..4]);
        assert_eq!(
            groups(Grouping::PerLayer, &[1; 3], &[0.0; 3], &link()).len(),
            3
        );
        assert_eq!(
            groups(Grouping::OneGroup, &[1; 3], &[0.0; 3], &link()),
            vec![0..3]
        );
    }
}
