//! The discrete-event simulator of Switchyard as a library: drives the
//! scheduler ([`switchyard_scheduler::Scheduler`]) with a virtual clock and
//! the cost model of [`switchyard_core::cost`], and writes what happened.
//!
//! - [`simulate`] / [`simulate_policy`]: run one serving system on a schedule,
//!   streaming one [`RequestRecord`] per request into a [`RecordSink`]
//!   ([`RecordWriter`], shared with `replay`, writes `requests.csv`).
//! - [`write_summary`]: `summary.json` ([`switchyard_core::summary`], the
//!   type `replay` writes too); [`write_comparison`]: several systems
//!   in one file; [`write_timeline`]: `timeline.json` (Chrome trace events,
//!   opens in Perfetto; one process per GPU with a compute track and a copy
//!   track for its link).
//!
//! # Timing model
//!
//! Events sit in a binary heap keyed by (virtual time, issue sequence), so
//! ties resolve in a fixed order; at equal times completions come before
//! arrivals. Each GPU has a copy stream (its host link) and a compute
//! stream, each serving work in issue order: a copy of `b` bytes takes
//! `alpha + b / beta` of the pinned or pageable link, so concurrent copies on
//! one link share it (they queue at full bandwidth) while copies on
//! different GPUs' links overlap fully. A compute task starts when every GPU
//! of its tensor-parallel group is free and the previous stage's activations
//! have crossed the peer link (`alpha + bytes / beta`); each layer group then
//! waits for its copies. Per-layer compute times come from
//! [`switchyard_core::cost::ComputeTable`] at the batch's size; a task whose
//! GPU sat idle before it pays the profile's idle penalty at its first layer
//! (`compute.idle_penalty_us`, measured by `replay calibrate`). A request
//! finishes the profile's `request_overhead_s` after its batch's last layer
//! (the output's trip to the host). When the profile has `jitter`, each
//! copy's and each compute task's time is multiplied by a seeded log-normal
//! factor of mean 1 (drawn in event order: same seed, same times).

pub mod background;
mod engine;
mod jitter;
mod sink;
mod summary;
pub mod sweep;
pub mod sweep_shard;

pub use engine::{
    simulate, simulate_closed, simulate_plan, simulate_plan_logged, simulate_policy, Engine,
    SimOptions, DEFAULT_TIMELINE_SPANS,
};
pub use sink::{NullSink, RecordSink};
pub use summary::{write_comparison, write_summary, ModelResult, SimResult, SimRun, TimelineCut};
pub use switchyard_core::records::{RecordWriter, RequestRecord};
pub use switchyard_core::timeline::{self, write_timeline, Span, Timeline, Track};
