//! Ordered sets behind each GPU's eviction set (`index.rs`).
//!
//! A GPU holds at most a few hundred evictable stages (its memory over a
//! stage's size), and under LRU a stage re-enters the set with the newest
//! key (computes on one GPU finish in the order they were issued), so
//! inserts land at the back and victims leave from the front. A stage
//! dispatched again leaves from wherever it sits: in a sorted list linked
//! through one slab per GPU ([`LinkedSet`]) that touches the entry and its
//! two neighbours, where a sorted buffer's binary search probes seven or
//! eight places and its removal shifts a stretch of entries (together 15 %
//! of the cache misses of 100,000 models on 1,024 GPUs). An insert that
//! belongs elsewhere walks from the back. Removal is exact, so no
//! stale entries are carried, checked or popped later, and no generations
//! need keeping, as a lazy-deletion heap must.

use super::lazy::LazyHeap;

/// No node: the end of a list.
pub(super) const NIL: u32 = u32::MAX;

/// An entry and its neighbours' slots.
#[derive(Debug)]
struct Node<T> {
    t: T,
    prev: u32,
    next: u32,
}

/// A set of distinct `T`, smallest first, as a doubly linked list whose
/// nodes live in one slab; [`LinkedSet::insert`] returns the entry's slot,
/// which [`LinkedSet::remove`] is given back.
#[derive(Debug)]
pub(super) struct LinkedSet<T> {
    nodes: Vec<Node<T>>,
    head: u32,
    tail: u32,
    /// Freed slots, linked through `next`; the last freed is reused first
    /// (its memory is likely still cached).
    free: u32,
    len: usize,
}

impl<T> Default for LinkedSet<T> {
    fn default() -> Self {
        LinkedSet {
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
        }
    }
}

impl<T: Ord + Copy + std::fmt::Debug> LinkedSet<T> {
    /// Adds `t`, which must not be in the set; returns its slot.
    pub(super) fn insert(&mut self, t: T) -> u32 {
        // The node `t` follows (NIL: it goes first): the back for keys
        // that grow, else walked to from the back (the front at once when
        // `t` is below it).
        let mut after = self.tail;
        if after != NIL && self.nodes[after as usize].t > t {
            if self.nodes[self.head as usize].t > t {
                after = NIL;
            } else {
                while self.nodes[after as usize].t > t {
                    after = self.nodes[after as usize].prev;
                }
            }
        }
        debug_assert!(
            after == NIL || self.nodes[after as usize].t < t,
            "{t:?} is in the set already"
        );
        let next = if after == NIL {
            self.head
        } else {
            self.nodes[after as usize].next
        };
        let node = Node {
            t,
            prev: after,
            next,
        };
        let slot = if self.free != NIL {
            let slot = self.free;
            self.free = self.nodes[slot as usize].next;
            self.nodes[slot as usize] = node;
            slot
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        self.set_next(after, slot);
        self.set_prev(next, slot);
        self.len += 1;
        slot
    }

    /// Points node `n`'s forward link (the head, for [`NIL`]) at `to`.
    fn set_next(&mut self, n: u32, to: u32) {
        match n {
            NIL => self.head = to,
            n => self.nodes[n as usize].next = to,
        }
    }

    /// Points node `n`'s backward link (the tail, for [`NIL`]) at `to`.
    fn set_prev(&mut self, n: u32, to: u32) {
        match n {
            NIL => self.tail = to,
            n => self.nodes[n as usize].prev = to,
        }
    }

    /// Removes the entry at `slot` (from [`LinkedSet::insert`]), which must
    /// be `t`.
    pub(super) fn remove(&mut self, slot: u32, t: &T) {
        let Node { prev, next, .. } = self.nodes[slot as usize];
        debug_assert_eq!(
            &self.nodes[slot as usize].t, t,
            "slot {slot} holds another entry"
        );
        self.set_next(prev, next);
        self.set_prev(next, prev);
        self.nodes[slot as usize].next = self.free;
        self.free = slot;
        self.len -= 1;
    }

    /// The smallest entry that `accept` takes.
    pub(super) fn first(&self, mut accept: impl FnMut(&T) -> bool) -> Option<T> {
        self.iter().find(|t| accept(t)).copied()
    }

    /// Every entry, smallest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        let mut n = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(n as usize)?;
            n = node.next;
            Some(&node.t)
        })
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// An eviction set: a [`LinkedSet`] where entries enter at the back
/// (LRU); a lazy-deletion heap ([`LazyHeap`]) where they enter anywhere
/// (LFU's counts, Belady's next uses: a list would walk half its entries
/// per insert). The heap keeps stale entries until they surface, so its
/// queries are told which entries are live (`valid`).
#[derive(Debug)]
pub(super) enum EvictionOrder<T: Ord> {
    /// For keys that mostly grow.
    Linked(LinkedSet<T>),
    /// For keys in any order.
    Heap(LazyHeap<T>),
}

impl<T: Ord + Copy + std::fmt::Debug> EvictionOrder<T> {
    /// An empty set suited to keys that mostly grow (`growing`) or not.
    pub(super) fn new(growing: bool) -> Self {
        if growing {
            EvictionOrder::Linked(LinkedSet::default())
        } else {
            EvictionOrder::Heap(LazyHeap::default())
        }
    }

    /// Adds `t`, which must not be in the set (and must be `valid` until
    /// removed); returns the slot [`EvictionOrder::remove`] takes (a heap's
    /// is [`NIL`]).
    pub(super) fn insert(&mut self, t: T, valid: impl FnMut(&T) -> bool) -> u32 {
        match self {
            EvictionOrder::Linked(s) => s.insert(t),
            EvictionOrder::Heap(h) => {
                h.push(t);
                if h.needs_compact() {
                    h.compact(valid);
                }
                NIL
            }
        }
    }

    /// Removes `t`, which must be in the set, inserted at `slot`.
    pub(super) fn remove(&mut self, t: &T, slot: u32) {
        match self {
            EvictionOrder::Linked(s) => s.remove(slot, t),
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
            EvictionOrder::Linked(s) => s.first(accept),
            EvictionOrder::Heap(h) => h.first(valid, accept),
        }
    }

    /// Every entry, in no particular order, and how many there should be
    /// (a heap's count of live entries: see `check_index`).
    pub(super) fn entries(&self, mut valid: impl FnMut(&T) -> bool) -> (Vec<T>, usize) {
        match self {
            EvictionOrder::Linked(s) => (s.iter().copied().collect(), s.len()),
            EvictionOrder::Heap(h) => (
                h.entries().filter(|t| valid(t)).copied().collect(),
                h.live(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LinkedSet;
    use crate::sched::lazy::tests::draw;
    use std::collections::BTreeSet;

    /// Random inserts (at the back, the front and between) and removals
    /// against a `BTreeSet`, over few entries and over many: same entries
    /// in the same order, same first accepted entry, slots reused.
    #[test]
    fn linked_set_matches_an_ordered_set() {
        for objects in [40u64, 400] {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            let mut linked = LinkedSet::<(u64, u32)>::default();
            let mut set = BTreeSet::new();
            let mut key = vec![None::<(u64, u32)>; objects as usize];
            let mut clock = 1000u64;
            for step in 0..40_000 {
                let o = draw(&mut rng, objects) as usize;
                if let Some((k, slot)) = key[o].take() {
                    linked.remove(slot, &(k, o as u32));
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
                    key[o] = Some((k, linked.insert((k, o as u32))));
                    set.insert((k, o as u32));
                }
                let skip = draw(&mut rng, objects) as u32;
                let want = set.iter().find(|&&(_, o)| o != skip).copied();
                assert_eq!(linked.first(|&(_, o)| o != skip), want, "step {step}");
                assert_eq!(linked.len(), set.len());
                assert!(linked.iter().eq(set.iter()), "step {step}");
                assert!(linked.nodes.len() <= objects as usize, "slots not reused");
            }
        }
    }
}
