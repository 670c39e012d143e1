//! The real executor of Switchyard: devices behind one trait (CUDA through
//! cudarc, and the CPU), real models (true layer shapes, fp16 weights, a real
//! forward pass), PipeSwitch-style swapping (pinned host store, one
//! pre-allocated GPU pool handed out by offset, copy and compute streams
//! ordered by events), and `replay`, which serves a schedule in real time
//! driven by the same scheduler as the simulator.

// A model's stages are a list of layer ranges; one stage (`&[0..n]`) is the
// common case, not a typo for `0..n`.
#![allow(clippy::single_range_in_vec_init)]

pub mod calibrate;
pub mod check;
pub mod device;
pub mod exec;
pub mod forward;
pub mod host_cpus;
pub mod host_store;
pub mod model;
pub mod multi_bench;
pub mod multipath_bench;
pub mod pace;
pub mod pool;
pub mod replay;
pub mod span_log;
pub mod warm_bench;
