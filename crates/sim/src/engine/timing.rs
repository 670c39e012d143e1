//! Timing what the scheduler issued: copies on their links (and the host
//! topology's shares) and computes on the two clocks (the host issuing
//! layers, the GPU running them).

use super::*;
use switchyard_core::direct_host;

impl<'a> Engine<'a> {
    /// Copy timing: `(start, end)` of copy `c` issued now. It waits for its
    /// lane (its GPU's link; pageable copies: the one shared host path when
    /// the profile says `pageable_shared`) and takes `alpha + bytes / beta`
    /// of the pinned or pageable link (times the jitter factor).
    ///
    /// With a `host` topology in the profile, `beta` is at most the share
    /// of host memory and of the GPU's upstream link that falls to it when
    /// the bandwidth is split evenly among the GPUs copying in this step
    /// (see `Engine::note_copying`). The share is fixed when the copy is
    /// issued: exact when GPUs copy alike (a tensor- or pipeline-parallel
    /// load), pessimistic for a copy that outlasts the others.
    pub fn time_copy(&mut self, c: &CopyOp) -> (f64, f64) {
        let hw = &self.workload.cluster.hardware;
        let n_gpus = self.stream_free.len();
        let g = c.gpu as usize;
        let (link, lane) = match c.source {
            Source::Pinned => (&hw.pinned, g),
            Source::Pageable if hw.pageable_shared => (&hw.pageable, n_gpus),
            Source::Pageable => (&hw.pageable, g),
        };
        let start = self.link_free[lane].max(self.now);
        let cost = match hw.host.share_bytes_per_s(c.gpu, &self.copying) {
            Some(share) if share < link.beta_bytes_per_s => link.alpha_s + c.bytes as f64 / share,
            _ => link.time(c.bytes),
        };
        let end = start + cost * self.noise.copy();
        self.link_free[lane] = end;
        self.copy_busy[g] = self.copy_busy[g].max(end);
        let id = c.id as usize;
        if self.copy_done.len() <= id {
            self.copy_done.resize(id + 1, 0.0);
            self.copy_lane.resize(id + 1, u32::MAX);
            self.copy_issued.resize(id + 1, 0.0);
        }
        self.copy_done[id] = end;
        self.copy_lane[id] = lane as u32;
        self.copy_issued[id] = match c.source {
            Source::Pinned => self.now,
            Source::Pageable => end,
        };
        (start, end)
    }

    /// Offload timing: `(start, end)` of offload `o` issued now. It runs on
    /// its GPU's device-to-host lane, beside the copies into the GPU (PCIe
    /// is full duplex), one offload after another, and takes
    /// `alpha + bytes / beta` of the pinned (or pageable) link, times the
    /// jitter factor. With a `host` topology it counts among the GPUs
    /// copying in this step (`Engine::note_copying`): host memory's
    /// bandwidth is shared by both directions, and a GPU loading and
    /// offloading at once takes one share for both.
    pub fn time_offload(&mut self, o: &OffloadOp) -> (f64, f64) {
        let hw = &self.workload.cluster.hardware;
        let g = o.gpu as usize;
        let link = match o.source {
            Source::Pinned => &hw.pinned,
            Source::Pageable => &hw.pageable,
        };
        let start = self.d2h_free[g].max(self.now);
        let cost = match hw.host.share_bytes_per_s(o.gpu, &self.copying) {
            Some(share) if share < link.beta_bytes_per_s => link.alpha_s + o.bytes as f64 / share,
            _ => link.time(o.bytes),
        };
        let end = start + cost * self.noise.copy();
        self.d2h_free[g] = end;
        self.copy_busy[g] = self.copy_busy[g].max(end);
        (start, end)
    }

    /// Compute timing: `(start of its first layer, end)` of task `id` issued
    /// now. It starts once the previous stage's activations have crossed the
    /// peer link and every GPU of its group is free; a GPU that sat idle
    /// pays the profile's idle penalty at the first layer (hidden when later
    /// layers wait on their copies anyway); each layer range listed in the
    /// task's waits starts no earlier than its copies are done.
    pub fn time_compute(&mut self, id: TaskId) -> (f64, f64) {
        let workload: &'a Workload = self.workload;
        let hw = &workload.cluster.hardware;
        let task = self.sched.task(id);
        let table = &self.tables[self.table(task.model)];
        let b = task.batch_size;
        let f = self.noise.compute();
        let mut t = self.now;
        if task.input_from.is_some() {
            let shape = &workload.models[task.model as usize].shape;
            t += hw.peer.time(activation_bytes(shape, b));
        }
        let idle_since = task
            .gpus
            .iter()
            .map(|&g| self.stream_free[g as usize])
            .fold(f64::NEG_INFINITY, f64::max);
        t = t.max(idle_since);
        // A background job on these GPUs yields them at its iteration's
        // end; the GPU was busy with it until then, never idle.
        let stream_free = &self.stream_free;
        let handed = self
            .background
            .preempt(&task.gpus, |g| stream_free[g as usize], t);
        let idle_since = if handed > t { handed } else { idle_since };
        t = handed;
        let layers = task.layers.start as usize..task.layers.end as usize;
        let mut cursor = layers.start;
        let mut first: Option<f64> = None;
        // Replay's one host thread issues every GPU's passes: a pass on
        // another GPU being issued now holds this one back (never, unless
        // the profile measured issuing).
        if (self.host_issuing.0..self.host_issuing.1).contains(&t) {
            t = self.host_issuing.1;
        }
        // Two clocks: `h`, the host issuing the layers (at the calibrated,
        // issue-bound rate; it starts once every copy waited for is
        // issued), and `t`, the GPU running them: a layer ends no earlier
        // than issued, and where it waited for a copy the host was ahead,
        // so it runs at the GPU's own (queued) rate.
        let issued = task.waits.iter().map(|w| self.copy_issued[w.1 as usize]);
        let mut h = issued.fold(t, f64::max);
        // The host stalls now and then while issuing (the profile's host
        // stalls; none unless measured): the stall holds the host clock,
        // so it shows where the host, not a copy, sets the pace.
        let issue_s = table.issue_time(layers.clone(), b) * f;
        let stall = self.noise.host_stall(issue_s);
        self.host_issuing = (h, h + issue_s + stall);
        // The first layer starts at `t`; a GPU that sat idle before it pays
        // the profile's idle penalty there (hidden when later layers wait
        // on their copies anyway).
        let begin = |first: &mut Option<f64>, t: &mut f64, h: &mut f64| {
            if first.is_none() {
                *first = Some(*t);
                let extra = hw.compute.idle_extra_s(*t - idle_since);
                *t += extra;
                *h += extra + stall;
            }
        };
        let plain = |range: Range<usize>, t: &mut f64, h: &mut f64| {
            *h += table.time(range.clone(), b) * f;
            *t = (*t + table.queued_time(range, b) * f).max(*h);
        };
        // Direct host access: the layers of this pass that read pinned host
        // memory over the GPU's link, and the link's lane they share with
        // the copies.
        let mut reads = std::mem::take(&mut self.host_reads);
        reads.clear();
        if !task.direct.is_empty() {
            let shape = &workload.models[task.model as usize].shape;
            let direct = task.direct.start as usize..task.direct.end as usize;
            for l in layers.clone() {
                let bytes = direct_host::host_read_bytes(shape, &direct, l, b);
                if bytes > 0 {
                    reads.push(HostRead {
                        layer: l as u32,
                        bytes,
                        start_s: 0.0,
                        end_s: 0.0,
                    });
                }
            }
        }
        let lane_of = task.gpus[0] as usize;
        // Copies queued on the link run until `copies_end`; the reads push
        // `lane`, where the copies issued later start.
        let copies_end = self.link_free[lane_of];
        let mut lane = copies_end;
        // Link seconds the reads took from the copies in flight on the
        // GPU's own link, and from when.
        let late = std::cell::Cell::new((0.0f64, f64::INFINITY));
        // A layer reading host memory runs for at least its reads: at the
        // direct-host rate, or half the link while copies are queued on it
        // (two flows sharing it); the copies on the link lose its bytes at
        // the link's rate: those issued after it start later (`lane`), and
        // those in flight, which this task waits for, land `late` later
        // (the grouping DP's model, `grouping::with_direct` and
        // `with_direct_split`); a helper's pieces, forwarded over the peer
        // link, do not.
        let mut run = |range: Range<usize>, t: &mut f64, h: &mut f64| {
            let mut from = range.start;
            for r in reads.iter_mut() {
                let l = r.layer as usize;
                if !range.contains(&l) {
                    continue;
                }
                if l > from {
                    plain(from..l, t, h);
                }
                *h += table.time(l..l + 1, b) * f;
                let start = *t;
                let read = direct_host::read_s(hw, r.bytes, copies_end > start);
                *t = (start + (table.queued_time(l..l + 1, b) * f).max(read)).max(*h);
                lane = lane.max(start) + direct_host::link_s(hw, r.bytes);
                if copies_end > start {
                    let (l, from) = late.get();
                    late.set((l + direct_host::link_s(hw, r.bytes), from.min(start)));
                }
                (r.start_s, r.end_s) = (start, start + read);
                from = l + 1;
            }
            if from < range.end {
                plain(from..range.end, t, h);
            }
        };
        let mut i = 0;
        while i < task.waits.len() {
            let range = task.waits[i].0.clone();
            let (rs, re) = (range.start as usize, range.end as usize);
            // The layers before the group (host layers: their reads may
            // delay the group's copies).
            if rs > cursor {
                begin(&mut first, &mut t, &mut h);
                run(cursor..rs, &mut t, &mut h);
            }
            let mut ready = 0.0f64;
            let (l, from) = late.get();
            while i < task.waits.len() && task.waits[i].0 == range {
                let c = task.waits[i].1 as usize;
                let mut done = self.copy_done[c];
                if l > 0.0 && self.copy_lane[c] == lane_of as u32 && done > from {
                    done += l;
                }
                ready = ready.max(done);
                i += 1;
            }
            t = t.max(ready);
            begin(&mut first, &mut t, &mut h);
            run(rs..re, &mut t, &mut h);
            cursor = re;
        }
        begin(&mut first, &mut t, &mut h);
        let start = first.expect("set by begin");
        if cursor < layers.end {
            run(cursor..layers.end, &mut t, &mut h);
        }
        if !reads.is_empty() {
            self.link_free[lane_of] = lane;
        }
        self.host_reads = reads;
        for &g in &task.gpus {
            self.stream_free[g as usize] = t;
        }
        if task.stage == 0 {
            let bi = task.batch as usize;
            if self.batch_start.len() <= bi {
                self.batch_start.resize(bi + 1, 0.0);
            }
            self.batch_start[bi] = start;
        }
        (start, t)
    }
}
