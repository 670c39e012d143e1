//! A min-heap with lazy deletion: the ordered set behind the per-GPU
//! indexes (`index.rs`). Removing an entry only counts it as gone; the
//! entry stays in the heap until it reaches the top (or a compaction) and
//! is dropped there, because its owner's state no longer vouches for it
//! (the `valid` test the queries are given). Inserting is a push (O(1) for
//! keys that grow, as LRU's and arrival order's do), removing O(1), and
//! the first valid entry is found by popping stale ones off the top.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Entries in the heap beyond twice the live ones (plus this slack) are
/// compacted away.
const SLACK: usize = 32;

/// Pushes after which the heap compacts regardless: no entry lives
/// through more, so owners may tell stale entries by 32-bit generations
/// that advance at most twice per push.
const MAX_PUSHES: u32 = 1 << 30;

/// A min-heap of `T` whose removals are lazy (see the module docs).
#[derive(Debug)]
pub(super) struct LazyHeap<T: Ord> {
    /// Live and stale entries, smallest on top.
    heap: BinaryHeap<Reverse<T>>,
    /// Entries pushed and not yet removed.
    live: usize,
    /// Pushes since the last compaction.
    pushes: u32,
    /// Valid entries popped past by [`LazyHeap::first`] (reused).
    aside: Vec<T>,
}

impl<T: Ord> Default for LazyHeap<T> {
    fn default() -> Self {
        LazyHeap {
            heap: BinaryHeap::new(),
            live: 0,
            pushes: 0,
            aside: Vec::new(),
        }
    }
}

impl<T: Ord + Copy> LazyHeap<T> {
    /// Adds `t` (its owner must vouch for it until [`LazyHeap::forget`]).
    pub(super) fn push(&mut self, t: T) {
        self.heap.push(Reverse(t));
        self.live += 1;
        self.pushes += 1;
    }

    /// Entry `t`, pushed earlier, is no longer vouched for by its owner;
    /// dropped now if it is on top (its owner's state is at hand now, and
    /// the victim and the model just dispatched are the usual cases).
    pub(super) fn forget(&mut self, t: &T) {
        self.live -= 1;
        if self.heap.peek().is_some_and(|Reverse(top)| top == t) {
            self.heap.pop();
        }
    }

    /// Whether stale entries outnumber live ones enough to compact.
    pub(super) fn needs_compact(&self) -> bool {
        self.heap.len() > 2 * self.live + SLACK || self.pushes >= MAX_PUSHES
    }

    /// Drops every entry `valid` rejects.
    pub(super) fn compact(&mut self, mut valid: impl FnMut(&T) -> bool) {
        self.heap.retain(|Reverse(t)| valid(t));
        self.pushes = 0;
    }

    /// The smallest valid entry that `accept` takes; stale entries met on
    /// the way are dropped, valid ones passed over are kept.
    pub(super) fn first(
        &mut self,
        mut valid: impl FnMut(&T) -> bool,
        mut accept: impl FnMut(&T) -> bool,
    ) -> Option<T> {
        let mut found = None;
        while let Some(&Reverse(top)) = self.heap.peek() {
            if !valid(&top) {
                self.heap.pop();
            } else if accept(&top) {
                found = Some(top);
                break;
            } else {
                self.heap.pop();
                self.aside.push(top);
            }
        }
        for t in self.aside.drain(..) {
            self.heap.push(Reverse(t));
        }
        found
    }

    /// Entries pushed and not removed.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Every entry held, live or stale, in no order.
    pub(super) fn entries(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|Reverse(t)| t)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::LazyHeap;
    use std::collections::BTreeSet;

    /// xorshift64: a fixed stream of test draws below `n` (the ordered
    /// sets' tests share it).
    pub(in crate::sched) fn draw(state: &mut u64, n: u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % n
    }

    /// Random pushes and removals against a `BTreeSet`: the first valid
    /// accepted entry is always the set's first accepted one, and
    /// compaction keeps exactly the live entries.
    #[test]
    fn lazy_heap_matches_an_ordered_set() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut heap = LazyHeap::<(u64, u32, u32)>::default();
        let mut set = BTreeSet::new();
        // Per owner, its entry's generation (the heap entry's third field).
        let mut gen = [0u32; 40];
        let mut key = [None::<u64>; 40];
        for step in 0..20_000 {
            let o = draw(&mut rng, 40) as usize;
            if let Some(k) = key[o].take() {
                set.remove(&(k, o as u32));
                heap.forget(&(k, o as u32, gen[o]));
                gen[o] += 1;
            }
            if draw(&mut rng, 10) < 6 {
                let k = draw(&mut rng, 50);
                key[o] = Some(k);
                set.insert((k, o as u32));
                heap.push((k, o as u32, gen[o]));
            }
            let valid = |&(_, o, g): &(u64, u32, u32)| gen[o as usize] == g;
            if heap.needs_compact() {
                heap.compact(valid);
            }
            let skip = draw(&mut rng, 40) as u32;
            let want = set.iter().find(|&&(_, o)| o != skip).copied();
            let got = heap.first(valid, |&(_, o, _)| o != skip);
            assert_eq!(got.map(|(k, o, _)| (k, o)), want, "step {step}");
            assert_eq!(heap.live(), set.len());
            assert!(heap.entries().count() <= 2 * set.len() + super::SLACK + 1);
        }
    }
}
