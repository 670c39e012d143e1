//! Every model's FCFS queue of requests in one slab of linked nodes. A
//! model holds only its list's ends ([`Queue`], inline in its state), so
//! a request arriving for a model that has not run lately lands in the
//! node freed last (in cache), not in a heap block of the model's own: at
//! 100,000 models that block was a cache miss per arrival.

/// One model's queue: the ends of its list in [`Queues`], and its length.
#[derive(Debug, Clone, Copy)]
pub(super) struct Queue {
    head: u32,
    tail: u32,
    len: u32,
    /// The front request's arrival sequence number (valid when `len > 0`),
    /// kept inline so that checking a model's head reads only the model.
    head_seq: u64,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            head: NONE,
            tail: NONE,
            len: 0,
            head_seq: 0,
        }
    }
}

impl Queue {
    /// Requests queued.
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    /// The front request's arrival sequence number.
    pub(super) fn front_seq(&self) -> Option<u64> {
        (self.len > 0).then_some(self.head_seq)
    }
}

/// No node.
const NONE: u32 = u32::MAX;

/// `(arrival sequence number, request handle)` and the next node of its queue.
#[derive(Debug, Clone, Copy)]
struct Node {
    seq: u64,
    request: u64,
    next: u32,
}

/// The nodes of every queue, and the free ones (reused last freed first).
#[derive(Debug, Default)]
pub(super) struct Queues {
    nodes: Vec<Node>,
    free: Vec<u32>,
}

impl Queues {
    /// Appends `(seq, request)` to `q`.
    pub(super) fn push_back(&mut self, q: &mut Queue, seq: u64, request: u64) {
        let node = Node {
            seq,
            request,
            next: NONE,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 requests queued")
            }
        };
        if q.tail == NONE {
            q.head = i;
            q.head_seq = seq;
        } else {
            self.nodes[q.tail as usize].next = i;
        }
        q.tail = i;
        q.len += 1;
    }

    /// `(seq, request)` at the front of `q`.
    #[cfg(test)]
    fn front(&self, q: &Queue) -> Option<(u64, u64)> {
        (q.head != NONE).then(|| {
            let n = &self.nodes[q.head as usize];
            (n.seq, n.request)
        })
    }

    /// Takes the front of `q`.
    pub(super) fn pop_front(&mut self, q: &mut Queue) -> Option<(u64, u64)> {
        if q.head == NONE {
            return None;
        }
        let i = q.head;
        let n = self.nodes[i as usize];
        q.head = n.next;
        if q.head == NONE {
            q.tail = NONE;
        } else {
            q.head_seq = self.nodes[q.head as usize].seq;
        }
        q.len -= 1;
        self.free.push(i);
        Some((n.seq, n.request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Interleaved pushes and pops on several queues behave as one
    /// `VecDeque` each, and nodes are reused.
    #[test]
    fn queues_behave_as_deques() {
        let mut qs = Queues::default();
        let mut q = [Queue::default(); 3];
        let mut want: [VecDeque<(u64, u64)>; 3] = Default::default();
        let mut x = 12345u64;
        for step in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let m = (x >> 33) as usize % 3;
            if (x >> 40) % 5 < 3 {
                qs.push_back(&mut q[m], step, step * 7);
                want[m].push_back((step, step * 7));
            } else {
                assert_eq!(qs.pop_front(&mut q[m]), want[m].pop_front());
            }
            assert_eq!(qs.front(&q[m]), want[m].front().copied());
            assert_eq!(q[m].front_seq(), want[m].front().map(|f| f.0));
            assert_eq!(q[m].len(), want[m].len());
        }
        let live: usize = want.iter().map(VecDeque::len).sum();
        assert_eq!(qs.nodes.len() - qs.free.len(), live);
        assert!(qs.nodes.len() < 20_000 / 2, "nodes are reused");
    }
}
