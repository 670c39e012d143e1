//! How to run a simulation ([`SimOptions`]).

use switchyard_core::latency_sketch::DEFAULT_EXACT_QUANTILES;

/// How to run a simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Record spans for `timeline.json`.
    pub timeline: bool,
    /// At most this many spans are kept (the rest are counted as dropped
    /// and reported in [`crate::summary::SimRun::timeline_cut`]).
    pub timeline_max_events: usize,
    /// Spans that end before this virtual time, seconds, are left out.
    pub timeline_from_s: f64,
    /// Spans that start after this virtual time, seconds, are left out.
    pub timeline_to_s: f64,
    /// Show a progress bar on stderr (drawn only when stderr is a terminal).
    pub progress: bool,
    /// Check the scheduler's memory invariants after every event (slow; tests).
    pub check_invariants: bool,
    /// Latencies kept exactly up to this many requests; past it,
    /// percentiles come from a sketch (`summary.json` says so).
    pub exact_quantiles: u64,
    /// Keep the run's latencies for a CDF figure in
    /// [`crate::summary::SimRun::latencies_s`] (off: sweeps and benches
    /// need only the summary).
    pub keep_latencies: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            timeline: true,
            timeline_max_events: DEFAULT_TIMELINE_SPANS,
            timeline_from_s: 0.0,
            timeline_to_s: f64::INFINITY,
            progress: true,
            check_invariants: false,
            exact_quantiles: DEFAULT_EXACT_QUANTILES,
            keep_latencies: false,
        }
    }
}

/// Spans `timeline.json` keeps unless told otherwise (`sim --timeline-max-spans`).
pub const DEFAULT_TIMELINE_SPANS: usize = 200_000;
