//! Direct host access in the grouping DP (`policy.direct_host`): which of
//! a stage's layers run from mapped pinned host memory instead of being
//! copied.
//!
//! The host-resident layers are a prefix `0..m` of the stage (embeddings
//! come first, and a layer further on gains nothing: its reads would
//! cross the link while the copies before it do, and it could not start
//! before the layers before it anyway). For each `m` the plan is costed on
//! the model of [`super::finish_time`], extended:
//!
//! - the layers `0..m` run from time 0, each for `max(compute, read)`
//!   ([`DirectCosts::time`]: the read shares the link with the copies);
//! - their reads take their bytes at the link's rate out of the link
//!   before the copies ([`DirectCosts::link`]: bytes are conserved on a
//!   shared link, so the copies end that much later);
//! - the layers `m..n` are grouped by the policy's grouping (for
//!   `optimal`, the DP's suffix from `m`, exact for any start offsets) and
//!   computed with [`DirectCosts::compute_after`] (a head tied to an
//!   embedding left in host memory reads the vocabulary from there).
//!
//! The `m` with the earliest finish wins, up to [`DirectCosts::max_layers`]
//! (what warm passes may lose bounds it: the layers stay in host memory
//! for as long as the model is loaded); ties go to fewer host layers, so
//! a plan that gains nothing copies everything, as without the option.

use super::helpers::split_suffix_plan;
use super::{finish_after, groups, suffix_plan, walk, HelperLinks};
use std::ops::Range;
use switchyard_core::hardware::LinkCost;
use switchyard_core::workload::Grouping;

/// What running each layer of a stage from host memory costs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectCosts {
    /// Per layer: seconds it runs from host memory, its reads sharing the
    /// link with copies (`max(compute, read)`).
    pub time: Vec<f64>,
    /// Per layer: seconds of the link's capacity its reads take from the
    /// copies.
    pub link: Vec<f64>,
    /// Per layer: seconds it computes once layer 0 runs from host memory
    /// (the plain compute time, except a head tied to the embedding,
    /// which then reads the vocabulary over the link).
    pub compute_after: Vec<f64>,
    /// Most layers that may stay in host memory (the caller's bound on
    /// what warm passes may lose to host reads).
    pub max_layers: usize,
}

/// The DP's choice for one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectPlan {
    /// Layers `0..direct` run from host memory (0: none).
    pub direct: usize,
    /// Copy groups of the layers `direct..n`, covering them in order.
    pub groups: Vec<Range<usize>>,
    /// Predicted finish of a cold pass under this plan, seconds.
    pub finish_s: f64,
    /// Predicted finish with every layer copied (the plan without the
    /// option), seconds.
    pub copied_s: f64,
}

/// The plan for a stage of `bytes.len()` layers (copy bytes `bytes`,
/// compute seconds `compute`, copy link `link`) under `policy` when the
/// first layers may run from host memory at `costs`.
#[allow(clippy::single_range_in_vec_init)]
pub fn with_direct(
    policy: Grouping,
    bytes: &[u64],
    compute: &[f64],
    link: &LinkCost,
    costs: &DirectCosts,
) -> DirectPlan {
    let n = bytes.len();
    let all = groups(policy, bytes, compute, link);
    let copied_s = finish_after(&all, bytes, compute, link, 0.0, 0.0);
    let mut best = DirectPlan {
        direct: 0,
        groups: all,
        finish_s: copied_s,
        copied_s,
    };
    if n == 0 {
        return best;
    }
    let next =
        (policy == Grouping::Optimal).then(|| suffix_plan(bytes, &costs.compute_after, link).1);
    let (mut d, mut l) = (0.0f64, 0.0f64);
    for m in 1..=n.min(costs.max_layers) {
        d += costs.time[m - 1];
        l += costs.link[m - 1];
        let rest: Vec<Range<usize>> = match (&next, policy) {
            (_, _) if m == n => Vec::new(),
            (Some(next), _) => walk(next, m),
            (None, Grouping::PerLayer) => (m..n).map(|i| i..i + 1).collect(),
            (None, _) => vec![m..n],
        };
        let finish = finish_after(&rest, bytes, &costs.compute_after, link, l, d);
        if finish < best.finish_s {
            best = DirectPlan {
                direct: m,
                groups: rest,
                finish_s: finish,
                copied_s,
            };
        }
    }
    best
}

/// [`with_direct`] for a stage whose copies are multi-path loads over
/// `links` with `lenders` helpers, grouped by the helper-aware DP
/// ([`super::optimal_split`]).
///
/// The host layers' reads cross the target's own link, the one its own
/// pieces take: they hold it for [`DirectCosts::link`] seconds ahead of
/// the first group's piece over it, while the helpers' links are
/// untouched (the later groups queue behind the first on every link, as
/// the split DP models them). With `m` host layers (run time `d`, link
/// time `l`) and a first copied group `m..e`, the stage finishes at
/// `max(max(d, A) + Suf(m), lane + G(e))`: `A` and `lane` the first
/// group's landing and link time with its own piece `l` late
/// ([`HelperLinks::group_time_late`]), `G` the split DP's best finish of
/// the rest on its own. Exact under that model (tested against brute
/// force); ties go to fewer host layers, as in [`with_direct`].
pub fn with_direct_split(
    bytes: &[u64],
    compute: &[f64],
    links: &HelperLinks,
    lenders: u32,
    costs: &DirectCosts,
) -> DirectPlan {
    let n = bytes.len();
    if n == 0 {
        return with_direct(Grouping::Optimal, bytes, compute, &links.link, costs);
    }
    let (all_g, all_next) = split_suffix_plan(bytes, compute, links, lenders);
    let copied_s = all_g[0];
    let mut best = DirectPlan {
        direct: 0,
        groups: walk(&all_next, 0),
        finish_s: copied_s,
        copied_s,
    };
    let (g, next) = split_suffix_plan(bytes, &costs.compute_after, links, lenders);
    let mut pre = vec![0u64; n + 1];
    for i in 0..n {
        pre[i + 1] = pre[i] + bytes[i];
    }
    let mut suf = vec![0.0f64; n + 1];
    for i in (0..n).rev() {
        suf[i] = suf[i + 1] + costs.compute_after[i];
    }
    let (mut d, mut l) = (0.0f64, 0.0f64);
    for m in 1..=n.min(costs.max_layers) {
        d += costs.time[m - 1];
        l += costs.link[m - 1];
        let (mut finish, mut first) = (d, n);
        if m < n {
            finish = f64::INFINITY;
            // Descending `e`: on ties the larger first group wins.
            for e in (m + 1..=n).rev() {
                let (lane, landed) = links.group_time_late(pre[e] - pre[m], lenders, l);
                let v = (d.max(landed) + suf[m]).max(lane + g[e]);
                if v < finish {
                    (finish, first) = (v, e);
                }
            }
        }
        if finish < best.finish_s {
            let mut groups = Vec::new();
            if m < n {
                groups.push(m..first);
                groups.extend(walk(&next, first));
            }
            best = DirectPlan {
                direct: m,
                groups,
                finish_s: finish,
                copied_s,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> LinkCost {
        LinkCost {
            alpha_s: 1e-4,
            beta_bytes_per_s: 1e3,
        }
    }

    /// Costs of reading `read[i]` bytes per layer at `rate` (shared link:
    /// half of it at most), computing `compute`.
    fn costs(compute: &[f64], read: &[u64], rate: f64) -> DirectCosts {
        let l = link();
        DirectCosts {
            time: compute
                .iter()
                .zip(read)
                .map(|(&c, &r)| {
                    c.max(r as f64 / rate)
                        .max(2.0 * r as f64 / l.beta_bytes_per_s)
                })
                .collect(),
            link: read
                .iter()
                .map(|&r| r as f64 / l.beta_bytes_per_s)
                .collect(),
            compute_after: compute.to_vec(),
            max_layers: compute.len(),
        }
    }

    #[test]
    fn a_large_cheap_embedding_runs_from_host() {
        // Layer 0: 100 bytes of which a pass reads 2, no compute; then
        // four layers of 10 bytes and 5 ms each.
        let bytes = [100, 10, 10, 10, 10];
        let compute = [0.0, 0.005, 0.005, 0.005, 0.005];
        let c = costs(&compute, &[2, 10, 10, 10, 10], 1e3);
        let plan = with_direct(Grouping::Optimal, &bytes, &compute, &link(), &c);
        assert!(plan.direct >= 1, "{plan:?}");
        assert_eq!(plan.groups.first().unwrap().start, plan.direct);
        assert_eq!(plan.groups.last().unwrap().end, 5);
        // Copying it first costs 100 ms of link before any block arrives.
        assert!(plan.copied_s > 0.1, "{plan:?}");
        assert!(plan.finish_s < 0.06, "{plan:?}");
        // The plan's finish is what finish_after gives its groups, the
        // copies after the host layers' link time, the compute after theirs.
        let d: f64 = c.time[..plan.direct].iter().sum();
        let l: f64 = c.link[..plan.direct].iter().sum();
        let again = finish_after(&plan.groups, &bytes, &compute, &link(), l, d);
        assert!((again - plan.finish_s).abs() < 1e-12);
    }

    #[test]
    fn layers_read_whole_at_a_tenth_of_the_link_stay_copied() {
        // Every layer would read all its bytes from host, slowly: the tie
        // rule keeps the copied plan exactly.
        let bytes = [10, 10, 10, 10];
        let compute = [0.005; 4];
        let c = costs(&compute, &bytes, 100.0);
        let plan = with_direct(Grouping::Optimal, &bytes, &compute, &link(), &c);
        assert_eq!(plan.direct, 0, "{plan:?}");
        assert_eq!(
            plan.groups,
            super::super::optimal(&bytes, &compute, &link())
        );
        assert_eq!(plan.finish_s, plan.copied_s);
    }

    #[test]
    fn a_slow_host_read_keeps_the_embedding_copied() {
        // The embedding reads half its bytes per pass at a rate 100 times
        // below the link: copying it is faster.
        let bytes = [100, 10, 10];
        let compute = [0.0, 0.005, 0.005];
        let c = costs(&compute, &[50, 10, 10], 10.0);
        let plan = with_direct(Grouping::Optimal, &bytes, &compute, &link(), &c);
        assert_eq!(plan.direct, 0, "{plan:?}");
    }

    #[test]
    fn a_tied_head_pays_for_the_vocabulary() {
        // The embedding's rows are cheap, but a head tied to it reads 200
        // bytes from host once it stays there (copied or not): copying wins.
        let bytes = [100, 10, 1];
        let compute = [0.0, 0.005, 0.001];
        let mut c = costs(&compute, &[2, 10, 1], 1e3);
        let untied = c.clone();
        c.compute_after[2] = 0.2;
        c.time[2] = 0.2;
        let plan = with_direct(Grouping::Optimal, &bytes, &compute, &link(), &c);
        assert_eq!(plan.direct, 0, "{plan:?}");
        // Without the tie it runs from host.
        let plan = with_direct(Grouping::Optimal, &bytes, &compute, &link(), &untied);
        assert!(plan.direct >= 1, "{plan:?}");
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn fixed_groupings_are_kept_for_the_copied_layers() {
        let bytes = [100, 10, 10, 10];
        let compute = [0.0, 0.005, 0.005, 0.005];
        let c = costs(&compute, &[2, 10, 10, 10], 1e3);
        let per = with_direct(Grouping::PerLayer, &bytes, &compute, &link(), &c);
        assert!(per.direct >= 1, "{per:?}");
        let want: Vec<Range<usize>> = (per.direct..4).map(|i| i..i + 1).collect();
        assert_eq!(per.groups, want);
        let one = with_direct(Grouping::OneGroup, &bytes, &compute, &link(), &c);
        assert!(one.direct >= 1, "{one:?}");
        if one.direct < 4 {
            assert_eq!(one.groups, vec![one.direct..4]);
        }
    }

    #[test]
    fn the_bound_on_layers_is_kept() {
        let bytes = [100, 10, 10];
        let compute = [0.0, 0.005, 0.005];
        let mut c = costs(&compute, &[2, 10, 10], 1e3);
        c.max_layers = 0;
        let plan = with_direct(Grouping::Optimal, &bytes, &compute, &link(), &c);
        assert_eq!(plan.direct, 0, "{plan:?}");
    }

    fn helper_links() -> HelperLinks {
        HelperLinks {
            link: LinkCost {
                alpha_s: 1e-5,
                beta_bytes_per_s: 1e9,
            },
            peer: LinkCost {
                alpha_s: 1e-5,
                beta_bytes_per_s: 8e9,
            },
            chunk: 16 << 20,
        }
    }

    /// Per layer: `(bytes, compute, host time, host link time)`.
    fn split_case(layers: &[(u64, f64, f64, f64)]) -> (Vec<u64>, Vec<f64>, DirectCosts) {
        let bytes = layers.iter().map(|l| l.0).collect();
        let compute: Vec<f64> = layers.iter().map(|l| l.1).collect();
        let costs = DirectCosts {
            time: layers.iter().map(|l| l.2).collect(),
            link: layers.iter().map(|l| l.3).collect(),
            compute_after: compute.clone(),
            max_layers: layers.len(),
        };
        (bytes, compute, costs)
    }

    #[test]
    fn an_embedding_worth_leaving_on_one_link_is_copied_over_two() {
        // 64 MiB read 40 ms a pass (20 ms of the target's link), then
        // three 8 MiB blocks of 5 ms: on one link the embedding's 67 ms
        // copy is worse than reading it; split over two links (34 ms) it
        // is better than the reads, which hold the target's link.
        const MIB: u64 = 1 << 20;
        let (bytes, compute, costs) = split_case(&[
            (64 * MIB, 0.0, 0.040, 0.020),
            (8 * MIB, 0.005, 0.5, 0.008),
            (8 * MIB, 0.005, 0.5, 0.008),
            (8 * MIB, 0.005, 0.5, 0.008),
        ]);
        let l = helper_links();
        let one = with_direct(Grouping::Optimal, &bytes, &compute, &l.link, &costs);
        assert_eq!(one.direct, 1, "{one:?}");
        let split = with_direct_split(&bytes, &compute, &l, 1, &costs);
        assert_eq!(split.direct, 0, "{split:?}");
        assert_eq!(
            split.groups,
            super::super::optimal_split(&bytes, &compute, &l, 1)
        );
        // No lender: the one-link plan's choice and finish (its groups may
        // differ among equally fast ones).
        let none = with_direct_split(&bytes, &compute, &l, 0, &costs);
        assert_eq!(none.direct, one.direct);
        assert!(
            (none.finish_s - one.finish_s).abs() < 1e-12,
            "{none:?} {one:?}"
        );
        // Ignoring the reads' hold on the target's link would leave it in
        // host memory over two links too.
        let mut free = costs.clone();
        free.link = vec![0.0; 4];
        free.time[0] = 0.030;
        assert_eq!(with_direct_split(&bytes, &compute, &l, 1, &free).direct, 1);
    }

    proptest::proptest! {
        #[test]
        fn with_direct_split_matches_brute_force(
            layers in proptest::collection::vec(
                (0u64..24 << 20, 0.0f64..0.01, 0.0f64..0.02, 0.0f64..0.01), 1..7),
            lenders in 0u32..3,
            max_layers in 0usize..7,
        ) {
            let (bytes, compute, mut costs) = split_case(&layers);
            costs.max_layers = max_layers;
            let l = helper_links();
            let plan = with_direct_split(&bytes, &compute, &l, lenders, &costs);
            let n = bytes.len();
            let mut best = f64::INFINITY;
            for m in 0..=n.min(max_layers) {
                let d: f64 = costs.time[..m].iter().sum();
                let late: f64 = costs.link[..m].iter().sum();
                let c = if m == 0 { &compute } else { &costs.compute_after };
                if m == n {
                    best = best.min(d);
                    continue;
                }
                for g in super::super::all_groupings(n - m) {
                    let g: Vec<Range<usize>> = g.iter().map(|r| r.start + m..r.end + m).collect();
                    let f = super::super::helpers::finish_after_split(
                        &g, &bytes, c, (&l, lenders), late, d);
                    best = best.min(f);
                }
            }
            proptest::prop_assert!((plan.finish_s - best).abs() <= 1e-9 * best.max(1.0),
                "{} vs {}", plan.finish_s, best);
            // The plan's groups cover the copied layers and finish as said.
            let (d, late): (f64, f64) = (costs.time[..plan.direct].iter().sum(),
                costs.link[..plan.direct].iter().sum());
            if plan.direct < n {
                let c = if plan.direct == 0 { &compute } else { &costs.compute_after };
                let f = super::super::helpers::finish_after_split(
                    &plan.groups, &bytes, c, (&l, lenders), late, d);
                proptest::prop_assert!((f - plan.finish_s).abs() <= 1e-9 * f.max(1.0));
                proptest::prop_assert_eq!(plan.groups[0].start, plan.direct);
            }
        }
    }
}
