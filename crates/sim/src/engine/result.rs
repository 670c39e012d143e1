//! Ending a run: spans kept for the timeline (window and cap; offload spans) and the
//! run's records summed into a [`SimResult`].

use super::*;

impl Engine<'_> {
    pub(super) fn span(&mut self, s: Span) {
        keep_span(
            &mut self.timeline,
            &mut self.timeline_cut_at,
            self.opts,
            self.now,
            s,
        );
    }

    /// The summary of the run so far (call when it is over).
    pub(super) fn result(mut self) -> SimResult {
        let workload = self.workload;
        let stats = self.sched.load_stats();
        let models = workload
            .models
            .iter()
            .enumerate()
            .map(|(m, spec)| {
                let placement = self.sched.placement(m as u32);
                let (direct_host_layers, direct_host_bytes) = placement.direct_host();
                let (multipath_groups, one_link) = placement.helper_groups();
                ModelResult {
                    model: spec.name.clone(),
                    summary: self.lat.model(m),
                    loads: stats[m].loads,
                    bytes_loaded: stats[m].bytes,
                    direct_host_layers,
                    direct_host_bytes,
                    multipath_groups,
                    one_link_groups: if multipath_groups > 0 { one_link } else { 0 },
                }
            })
            .collect();
        let (overall, latencies_s) = self.lat.overall(self.opts.keep_latencies);
        let policy = self.policy;
        SimResult {
            workload: workload.name.clone(),
            system: policy.system.name().to_string(),
            eviction: policy.eviction.name().to_string(),
            grouping: policy.grouping.name().to_string(),
            multipath_helpers: if workload.loading.multipath() {
                workload.loading.helpers
            } else {
                0
            },
            direct_host: self.sched.direct_host(),
            summary: overall,
            loads: stats.iter().map(|s| s.loads).sum(),
            bytes_loaded: stats.iter().map(|s| s.bytes).sum(),
            offloads: self.sched.offload().then_some(self.offloads),
            events: self.events,
            run: SimRun {
                simulated_s: self.now,
                latencies_s,
                quantiles_sketched: self.lat.sketched(),
                timeline_cut: self.timeline_cut_at.map(|t| TimelineCut {
                    max_spans: self.opts.timeline_max_events as u64,
                    kept_spans: self.timeline.spans.len() as u64,
                    dropped_spans: self.timeline.dropped,
                    complete_until_s: t,
                }),
                background: self.background.results(
                    workload,
                    |g| self.stream_free[g as usize],
                    self.now.max(workload.duration_s),
                ),
                timeline: self.timeline,
            },
            models,
        }
    }
}

/// The timeline's span of offload `o`, from `start` to `end`.
pub(super) fn offload_span(o: &OffloadOp, start: f64, end: f64) -> Span {
    Span {
        gpu: o.gpu,
        track: Track::Offload,
        model: o.model,
        stage: o.stage,
        layers: (o.layers.start, o.layers.end),
        start_s: start,
        end_s: end,
        batch_size: 0,
        bytes: o.bytes,
        streamed: false,
        host_s: None,
    }
}

/// Keeps `span` in `timeline` if it overlaps the window of `opts` and the
/// cap leaves room; notes in `cut_at` the time `now` when the cap first bites
/// (every span issued before then, so every span starting before it, is kept).
pub(super) fn keep_span(
    timeline: &mut Timeline,
    cut_at: &mut Option<f64>,
    opts: &SimOptions,
    now: f64,
    span: Span,
) {
    if span.end_s < opts.timeline_from_s || span.start_s > opts.timeline_to_s {
        return;
    }
    if timeline.spans.len() >= opts.timeline_max_events && cut_at.is_none() {
        *cut_at = Some(now);
    }
    timeline.push(opts.timeline_max_events, span);
}
