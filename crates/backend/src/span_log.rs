//! What the hardware did, span by span, for `timeline.json`: the same
//! Chrome-trace file `sim` writes ([`switchyard_core::timeline`]), with
//! measured times (each span's start from its own GPU events, its end when
//! the host saw it done).

use std::collections::HashMap;
use std::time::Instant;
use switchyard_core::timeline::{Span, Timeline, Track};
use switchyard_scheduler::{CopyOp, OffloadOp, Task};

/// Spans kept at most (the rest are counted as dropped), as in `sim`.
pub const MAX_SPANS: usize = 200_000;

/// Measured spans of a replay, and the copies still in flight.
pub struct SpanLog {
    timeline: Timeline,
    copies: HashMap<u64, Span>,
    t0: Instant,
}

impl SpanLog {
    /// An empty log over `gpus` GPUs and the workload's model names.
    pub fn new(gpus: u32, models: Vec<String>) -> SpanLog {
        SpanLog {
            timeline: Timeline {
                gpus,
                models,
                ..Timeline::default()
            },
            copies: HashMap::new(),
            t0: Instant::now(),
        }
    }

    /// Sets the run's start instant (time 0 of every span).
    pub fn start(&mut self, t0: Instant) {
        self.t0 = t0;
    }

    /// Remembers copy `key` (the executor's) as the scheduler issued it.
    pub fn copy_issued(&mut self, key: u64, c: &CopyOp) {
        self.copies.insert(
            key,
            Span {
                gpu: c.gpu,
                track: match c.via {
                    // A piece's measured span is its forward into `gpu`.
                    Some(v) => Track::Peer { from: v.helper },
                    None => Track::Copy,
                },
                model: c.model,
                stage: c.stage,
                layers: (c.layers.start, c.layers.end),
                start_s: 0.0,
                end_s: 0.0,
                batch_size: 0,
                bytes: c.bytes,
                streamed: c.streamed,
                host_s: None,
            },
        );
    }

    /// Remembers offload `key` (the executor's) as the scheduler issued it;
    /// [`SpanLog::copy_done`] times it.
    pub fn offload_issued(&mut self, key: u64, o: &OffloadOp) {
        self.copies.insert(
            key,
            Span {
                gpu: o.gpu,
                track: Track::Offload,
                model: o.model,
                stage: o.stage,
                layers: (o.layers.start, o.layers.end),
                start_s: 0.0,
                end_s: 0.0,
                batch_size: 0,
                bytes: o.bytes,
                streamed: false,
                host_s: None,
            },
        );
    }

    /// Copy `key` ran from `start` to `at`; a multi-path piece's forward,
    /// after its host-to-helper copy of `staged_s` seconds, drawn on the
    /// helper's link track as ending when the forward started.
    pub fn copy_done(&mut self, key: u64, start: Instant, at: Instant, staged_s: Option<f64>) {
        if let Some(mut s) = self.copies.remove(&key) {
            s.start_s = self.secs(start);
            s.end_s = self.secs(at);
            if let (Track::Peer { from }, Some(leg)) = (s.track, staged_s) {
                self.push(Span {
                    gpu: from,
                    track: Track::Copy,
                    start_s: s.start_s - leg,
                    end_s: s.start_s,
                    ..s.clone()
                });
            }
            self.push(s);
        }
    }

    /// `task` ran from `start` to `at`, its issuing holding the host for
    /// `host_s` seconds: one span on each of its GPUs.
    pub fn compute_done(&mut self, task: &Task, start: Instant, at: Instant, host_s: f64) {
        for &gpu in &task.gpus {
            self.push(Span {
                gpu,
                track: Track::Compute,
                model: task.model,
                stage: task.stage,
                layers: (task.layers.start, task.layers.end),
                start_s: self.secs(start),
                end_s: self.secs(at),
                batch_size: task.batch_size,
                bytes: 0,
                streamed: task.streamed,
                host_s: Some(host_s),
            });
        }
    }

    /// The spans, in completion order.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    fn push(&mut self, s: Span) {
        // Warm-up and preloading happen before time 0: not part of the run.
        if s.start_s >= 0.0 {
            self.timeline.push(MAX_SPANS, s);
        }
    }

    fn secs(&self, i: Instant) -> f64 {
        match i.checked_duration_since(self.t0) {
            Some(d) => d.as_secs_f64(),
            None => -self.t0.duration_since(i).as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spans_are_timed_from_the_start_and_warm_up_is_left_out() {
        let mut log = SpanLog::new(1, vec!["m".into()]);
        let t0 = Instant::now() + Duration::from_millis(10);
        log.start(t0);
        let op = CopyOp {
            id: 0,
            model: 0,
            stage: 0,
            gpu: 0,
            shard: 0,
            layers: 0..4,
            bytes: 100,
            shard_offset: 0,
            pool_offset: 0,
            source: switchyard_scheduler::Source::Pinned,
            streamed: false,
            via: None,
            part: None,
        };
        log.copy_issued(1, &op);
        log.copy_issued(2, &op);
        log.copy_done(
            1,
            t0 - Duration::from_millis(5),
            t0 - Duration::from_millis(1),
            None,
        );
        log.copy_done(
            2,
            t0 + Duration::from_millis(2),
            t0 + Duration::from_millis(5),
            None,
        );
        log.copy_done(3, t0, t0, None); // never issued: ignored
        let spans = &log.timeline().spans;
        assert_eq!(spans.len(), 1);
        assert!((spans[0].start_s - 0.002).abs() < 1e-9);
        assert!((spans[0].end_s - 0.005).abs() < 1e-9);
        assert_eq!((spans[0].bytes, spans[0].track), (100, Track::Copy));
    }
}
