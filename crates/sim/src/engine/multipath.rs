//! Timing of multi-path loading's pieces ([`switchyard_scheduler::Via`]):
//! the host-to-helper leg queues on the helper's link lane with the
//! helper's own copies (so a helper's own traffic and the pieces it
//! carries for others contend), then the forward leg queues on the
//! target's peer-link ingress lane (all helpers forwarding into one GPU
//! share it, as on an NVSwitch) and takes the profile's `peer` cost. With
//! a `host` topology in the profile the host leg gets the helper's share
//! of it, like a direct copy. A
//! piece written into staging bytes an earlier piece used starts no
//! earlier than that piece's forward is done (the staging ring's hazard).

use super::Engine;
use switchyard_core::timeline::{Span, Track};
use switchyard_scheduler::{CopyOp, Source};

impl Engine<'_> {
    /// Times piece `c` (its `via` set) issued now, schedules its
    /// completion at the end of the forward leg and records both legs'
    /// spans: the host copy on the helper's link track, the forward on the
    /// target's peer track from the helper.
    pub(super) fn time_piece(&mut self, c: &CopyOp) {
        let via = c.via.expect("a piece has a helper");
        let hw = &self.workload.cluster.hardware;
        let n_gpus = self.stream_free.len();
        let h = via.helper as usize;
        let (link, lane) = match c.source {
            Source::Pinned => (&hw.pinned, h),
            Source::Pageable if hw.pageable_shared => (&hw.pageable, n_gpus),
            Source::Pageable => (&hw.pageable, h),
        };
        let f = self.noise.copy();
        let (soff, send) = (via.staging_offset, via.staging_offset + c.bytes);
        let staged = &mut self.staged[h];
        let mut reusable = self.now;
        staged.retain(|&(o, b, done)| {
            let overlaps = o < send && soff < o + b;
            if overlaps {
                reusable = reusable.max(done);
            }
            !overlaps
        });
        let start = self.link_free[lane].max(reusable);
        // The profile's `host` topology shares its bandwidth among the GPUs
        // copying, the helper among them (as for a direct copy).
        let cost = match hw.host.share_bytes_per_s(via.helper, &self.copying) {
            Some(share) if share < link.beta_bytes_per_s => link.alpha_s + c.bytes as f64 / share,
            _ => link.time(c.bytes),
        };
        let staged = start + cost * f;
        self.link_free[lane] = staged;
        self.copy_busy[h] = self.copy_busy[h].max(staged);
        let g = c.gpu as usize;
        let fwd_start = self.peer_free[g].max(staged);
        let end = fwd_start + hw.peer.time(c.bytes) * f;
        self.peer_free[g] = end;
        self.staged[h].push_back((soff, c.bytes, end));
        let id = c.id as usize;
        if self.copy_done.len() <= id {
            self.copy_done.resize(id + 1, 0.0);
            self.copy_lane.resize(id + 1, u32::MAX);
            self.copy_issued.resize(id + 1, 0.0);
        }
        self.copy_lane[id] = u32::MAX;
        self.copy_done[id] = end;
        self.copy_issued[id] = match c.source {
            Source::Pinned => self.now,
            Source::Pageable => staged,
        };
        self.complete_at(end, false, c.id);
        if self.opts.timeline {
            let span = |gpu: u32, track: Track, start_s: f64, end_s: f64| Span {
                gpu,
                track,
                model: c.model,
                stage: c.stage,
                layers: (c.layers.start, c.layers.end),
                start_s,
                end_s,
                batch_size: 0,
                bytes: c.bytes,
                streamed: c.streamed,
                host_s: None,
            };
            self.span(span(via.helper, Track::Copy, start, staged));
            self.span(span(
                c.gpu,
                Track::Peer { from: via.helper },
                fwd_start,
                end,
            ));
        }
    }
}
