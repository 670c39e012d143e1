//! Closed-loop arrivals (`arrivals: { process: closed_loop, ... }`): each
//! client sends its next request when its previous one completes (plus a
//! think time), so arrivals depend on completions. [`ClosedLoop`] is the
//! rule; both clocks drive it: `sim` from its completion events, `replay`
//! from the completions it sees on the device.
//!
//! With a scheduling cycle (`cycle_s: C`) the GPU takes turns between
//! another task and the clients, PipeSwitch's Fig. 6: the other task's
//! turns are `[2kC, (2k+1)C)`, the clients' `[(2k+1)C, (2k+2)C)`. A client
//! sends only inside its turns (a request due outside waits for the next
//! turn's start); with `cycle_task` set, one request for that model
//! arrives at the start of each of the other task's turns (the task taking
//! the GPU), and the clients serve the other models.

use crate::schedule::{round_ns, Request};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A validated closed-loop process.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedLoopSpec {
    /// Clients, each with one request outstanding at most.
    pub clients: u32,
    /// Seconds a client waits after a completion before its next request.
    pub think_s: f64,
    /// The scheduling cycle, if the GPU takes turns with another task.
    pub cycle: Option<Cycle>,
}

/// A scheduling cycle: turns of `cycle_s` seconds, the other task's first.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    /// Length of one turn, seconds.
    pub cycle_s: f64,
    /// Model (index) whose one request opens each of the other task's
    /// turns; `None`: the other task is not served (the GPU idles).
    pub task: Option<u32>,
}

impl ClosedLoopSpec {
    /// The model client `c` asks for: the models other than the cycle's
    /// task, taken in turn (client `c` gets the `c mod n`-th of them).
    pub fn model_of(&self, client: u32, n_models: u32) -> u32 {
        match self.cycle.as_ref().and_then(|c| c.task) {
            // The models but the task, in file order: skip over it.
            Some(task) => {
                let i = client % (n_models - 1);
                if i >= task {
                    i + 1
                } else {
                    i
                }
            }
            None => client % n_models,
        }
    }

    /// The first time at or after `t` a client may send: `t` itself inside
    /// a client turn (or with no cycle), else the start of the next one.
    pub fn next_send(&self, t: f64) -> f64 {
        match &self.cycle {
            None => t,
            Some(c) => {
                let period = 2.0 * c.cycle_s;
                let k = (t / period).floor();
                let turn = k * period + c.cycle_s;
                if t < turn {
                    turn
                } else if t < turn + c.cycle_s {
                    t
                } else {
                    turn + period
                }
            }
        }
    }

    /// The client turn holding `t`, as `(index, start_s)`, if any
    /// (turn `k` starts at `(2k+1) * cycle_s`).
    pub fn client_turn(&self, t: f64) -> Option<(u64, f64)> {
        let c = self.cycle.as_ref()?;
        let period = 2.0 * c.cycle_s;
        let k = (t / period).floor();
        let start = k * period + c.cycle_s;
        (t >= start && t < start + c.cycle_s).then_some((k as u64, start))
    }
}

/// Source index of the cycle's task in the heap of due arrivals (clients
/// are `0..clients`).
const TASK: u32 = u32::MAX;

/// The closed loop as it runs: the next arrival of each client (and of
/// the cycle's task), in time order; a client's next is set when its
/// previous request completes ([`ClosedLoop::finished`]). Request ids are
/// given in arrival order as the arrivals are taken ([`ClosedLoop::pop`]),
/// so the requests come out as a schedule would hold them.
#[derive(Debug, Clone)]
pub struct ClosedLoop {
    spec: ClosedLoopSpec,
    /// The model each client asks for ([`ClosedLoopSpec::model_of`]).
    model_of: Vec<u32>,
    duration_s: f64,
    /// `(arrival time bits, source)`, earliest first; ties by source.
    due: BinaryHeap<Reverse<(u64, u32)>>,
    /// The client of each request outstanding.
    owner: HashMap<u64, u32>,
    next_id: u64,
}

impl ClosedLoop {
    /// The loop at time 0: every client due at its first send time (0, or
    /// the first client turn), the cycle's task at 0. Sends at or past
    /// `duration_s` are dropped: the run ends once the last request is done.
    pub fn new(spec: &ClosedLoopSpec, n_models: u32, duration_s: f64) -> ClosedLoop {
        let mut l = ClosedLoop {
            spec: spec.clone(),
            model_of: (0..spec.clients)
                .map(|c| spec.model_of(c, n_models))
                .collect(),
            duration_s,
            due: BinaryHeap::new(),
            owner: HashMap::new(),
            next_id: 0,
        };
        for c in 0..spec.clients {
            l.push(spec.next_send(0.0), c);
        }
        if spec.cycle.as_ref().is_some_and(|c| c.task.is_some()) {
            l.push(0.0, TASK);
        }
        l
    }

    fn push(&mut self, t: f64, source: u32) {
        let t = round_ns(t);
        if t < self.duration_s {
            self.due.push(Reverse((t.to_bits(), source)));
        }
    }

    /// The time of the next arrival, if any is due.
    pub fn peek(&self) -> Option<f64> {
        self.due.peek().map(|Reverse((t, _))| f64::from_bits(*t))
    }

    /// Takes the next arrival, numbered after the previous one.
    pub fn pop(&mut self) -> Option<Request> {
        let Reverse((bits, source)) = self.due.pop()?;
        let t = f64::from_bits(bits);
        let id = self.next_id;
        self.next_id += 1;
        let model = if source == TASK {
            let c = self.spec.cycle.clone().expect("a task has a cycle");
            self.push(t + 2.0 * c.cycle_s, TASK);
            c.task.expect("a task source has a task")
        } else {
            self.owner.insert(id, source);
            self.model_of[source as usize]
        };
        Some(Request {
            id,
            arrival_s: t,
            model,
        })
    }

    /// Request `id` completed at `finish_s` (its output back at the
    /// client): its client's next request is due after the think time,
    /// inside a client turn. A request of the cycle's task starts nothing.
    pub fn finished(&mut self, id: u64, finish_s: f64) {
        if let Some(c) = self.owner.remove(&id) {
            let t = self.spec.next_send(finish_s + self.spec.think_s);
            self.push(t, c);
        }
    }

    /// Requests taken so far.
    pub fn arrived(&self) -> u64 {
        self.next_id
    }

    /// Requests taken and not yet [`ClosedLoop::finished`] (clients' only).
    pub fn outstanding(&self) -> usize {
        self.owner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(clients: u32, think_s: f64, cycle: Option<Cycle>) -> ClosedLoopSpec {
        ClosedLoopSpec {
            clients,
            think_s,
            cycle,
        }
    }

    #[test]
    fn a_client_sends_again_only_after_its_completion() {
        let mut l = ClosedLoop::new(&spec(1, 0.5, None), 1, 10.0);
        let r = l.pop().unwrap();
        assert_eq!((r.id, r.arrival_s, r.model), (0, 0.0, 0));
        assert_eq!(l.peek(), None, "nothing before the completion");
        l.finished(0, 1.25);
        assert_eq!(l.peek(), Some(1.75));
        let r = l.pop().unwrap();
        assert_eq!((r.id, r.arrival_s), (1, 1.75));
        // Past duration_s nothing more is sent.
        l.finished(1, 9.8);
        assert_eq!(l.peek(), None);
    }

    #[test]
    fn clients_wait_for_their_turn_and_the_task_opens_the_others() {
        let c = Cycle {
            cycle_s: 2.0,
            task: Some(0),
        };
        let s = spec(2, 0.0, Some(c));
        assert_eq!(s.next_send(0.5), 2.0);
        assert_eq!(s.next_send(3.0), 3.0);
        assert_eq!(s.next_send(4.0), 6.0);
        assert_eq!(s.client_turn(3.0), Some((0, 2.0)));
        assert_eq!(s.client_turn(4.5), None);
        assert_eq!(s.client_turn(7.0), Some((1, 6.0)));
        // Clients serve the models other than the task, in turn.
        assert_eq!(
            (s.model_of(0, 3), s.model_of(1, 3), s.model_of(2, 3)),
            (1, 2, 1)
        );
        let mid = spec(
            3,
            0.0,
            Some(Cycle {
                cycle_s: 2.0,
                task: Some(1),
            }),
        );
        assert_eq!(
            (mid.model_of(0, 3), mid.model_of(1, 3), mid.model_of(2, 3)),
            (0, 2, 0)
        );
        assert_eq!(spec(3, 0.0, None).model_of(4, 3), 1);
        let mut l = ClosedLoop::new(&s, 3, 8.0);
        let first: Vec<(f64, u32)> = (0..3)
            .map(|_| l.pop().map(|r| (r.arrival_s, r.model)).unwrap())
            .collect();
        assert_eq!(first, vec![(0.0, 0), (2.0, 1), (2.0, 2)]);
        // The task's next turn, at 4 s; a reply at 4.1 s waits for 6 s.
        l.finished(1, 4.1);
        assert_eq!(l.pop().map(|r| (r.arrival_s, r.model)), Some((4.0, 0)));
        assert_eq!(l.pop().map(|r| (r.arrival_s, r.model)), Some((6.0, 1)));
        assert_eq!(l.outstanding(), 2);
    }
}
