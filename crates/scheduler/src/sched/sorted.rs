//! Ordered sets behind each GPU's eviction set (`index.rs`).
//!
//! A GPU holds at most a few hundred evictable stages (its memory over a
//! stage's size), and under LRU a stage re-enters the set with the newest
//! key (computes on one GPU finish in the order they were issued), so
//! inserts land at the back and victims leave from the front: O(1) in a
//! sorted ring buffer ([`SortedSet`]). A stage dispatched again leaves from
//! near the back when it ran lately (a short scan) and from anywhere else
//! by a binary search; an insert or removal shifts the shorter side.
//! Removal is exact, so no stale entries are carried, checked or popped
//! later, and no generations need keeping, as a lazy-deletion heap must.

use super::lazy::LazyHeap;
use std::collections::VecDeque;

/// Entries at the back that a removal scans before it searches.
const NEAR_BACK: usize = 8;

/// A set of distinct `T`, smallest first.
#[derive(Debug)]
pub(super) struct SortedSet<T> {
    items: VecDeque<T>,
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet {
            items: VecDeque::new(),
        }
    }
}

impl<T: Ord + Copy + std::fmt::Debug> SortedSet<T> {
    /// Adds `t`, which must not be in the set.
    pub(super) fn insert(&mut self, t: T) {
        if self.items.back().is_none_or(|b| *b < t) {
            self.items.push_back(t);
            return;
        }
        let i = self.items.partition_point(|e| *e < t);
        debug_assert!(self.items.get(i) != Some(&t), "{t:?} is in the set already");
        self.items.insert(i, t);
    }

    /// Removes `t`, which must be in the set.
    pub(super) fn remove(&mut self, t: &T) {
        let n = self.items.len();
        let near_back = n.saturating_sub(NEAR_BACK);
        let i = if self.items.front() == Some(t) {
            0
        } else if n > NEAR_BACK && self.items[near_back] <= *t {
            // Recently used entries sit near the back: a short scan of
            // neighbouring memory instead of a binary search's scattered
            // probes.
            (near_back..n)
                .rev()
                .find(|&i| self.items[i] == *t)
                .unwrap_or(n)
        } else {
            self.items.partition_point(|e| e < t)
        };
        let gone = self.items.remove(i);
        debug_assert_eq!(gone.as_ref(), Some(t), "{t:?} was not in the set");
    }

    /// The smallest entry that `accept` takes.
    pub(super) fn first(&self, mut accept: impl FnMut(&T) -> bool) -> Option<T> {
        self.items.iter().find(|t| accept(t)).copied()
    }

    /// Every entry, smallest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
}

/// An eviction set: a [`SortedSet`] where entries enter at the back
/// (LRU); a lazy-deletion heap ([`LazyHeap`]) where they enter anywhere
/// (LFU's counts, Belady's next uses: a sorted buffer would shift half its
/// entries per insert). The heap keeps stale entries until they surface,
/// so its queries are told which entries are live (`valid`).
#[derive(Debug)]
pub(super) enum EvictionOrder<T: Ord> {
    /// For keys that mostly grow.
    Sorted(SortedSet<T>),
    /// For keys in any order.
    Heap(LazyHeap<T>),
}

impl<T: Ord + Copy + std::fmt::Debug> EvictionOrder<T> {
    /// An empty set suited to keys that mostly grow (`growing`) or not.
    pub(super) fn new(growing: bool) -> Self {
        if growing {
            EvictionOrder::Sorted(SortedSet::default())
        } else {
            EvictionOrder::Heap(LazyHeap::default())
        }
    }

    /// Adds `t`, which must not be in the set (and must be `valid` until
    /// removed).
    pub(super) fn insert(&mut self, t: T, valid: impl FnMut(&T) -> bool) {
        match self {
            EvictionOrder::Sorted(s) => s.insert(t),
            EvictionOrder::Heap(h) => {
                h.push(t);
                if h.needs_compact() {
                    h.compact(valid);
                }
            }
        }
    }

    /// Removes `t`, which must be in the set.
    pub(super) fn remove(&mut self, t: &T) {
        match self {
            EvictionOrder::Sorted(s) => s.remove(t),
            EvictionOrder::Heap(h) => h.forget(t),
        }
    }

    /// The smallest entry that `accept` takes.
    pub(super) fn first(
        &mut self,
        valid: impl FnMut(&T) -> bool,
        accept: impl FnMut(&T) -> bool,
    ) -> Option<T> {
        match self {
            EvictionOrder::Sorted(s) => s.first(accept),
            EvictionOrder::Heap(h) => h.first(valid, accept),
        }
    }

    /// Every entry, in no particular order, and how many there should be
    /// (a heap's count of live entries: see `check_index`).
    pub(super) fn entries(&self, mut valid: impl FnMut(&T) -> bool) -> (Vec<T>, usize) {
        match self {
            EvictionOrder::Sorted(s) => (s.iter().copied().collect(), s.len()),
            EvictionOrder::Heap(h) => (
                h.entries().filter(|t| valid(t)).copied().collect(),
                h.live(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SortedSet;
    use crate::sched::lazy::tests::draw;
    use std::collections::BTreeSet;

    /// Random inserts (at the back, the front and between) and removals
    /// against a `BTreeSet`: same entries in the same order, same first
    /// accepted entry.
    #[test]
    fn sorted_set_matches_an_ordered_set() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut sorted = SortedSet::<(u64, u32)>::default();
        let mut set = BTreeSet::new();
        let mut key = [None::<u64>; 40];
        let mut clock = 1000u64;
        for step in 0..20_000 {
            let o = draw(&mut rng, 40) as usize;
            if let Some(k) = key[o].take() {
                sorted.remove(&(k, o as u32));
                set.remove(&(k, o as u32));
            }
            if draw(&mut rng, 10) < 6 {
                // Mostly the newest key (as LRU's), else anywhere.
                clock += 1;
                let k = match draw(&mut rng, 4) {
                    0 => draw(&mut rng, 2000),
                    1 => draw(&mut rng, 3),
                    _ => clock,
                };
                key[o] = Some(k);
                sorted.insert((k, o as u32));
                set.insert((k, o as u32));
            }
            let skip = draw(&mut rng, 40) as u32;
            let want = set.iter().find(|&&(_, o)| o != skip).copied();
            assert_eq!(sorted.first(|&(_, o)| o != skip), want, "step {step}");
            assert_eq!(sorted.len(), set.len());
            assert!(sorted.iter().eq(set.iter()), "step {step}");
        }
    }
}
