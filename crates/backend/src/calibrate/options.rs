//! What `replay calibrate` measures (shared by every calibration step).

use switchyard_core::hardware::HardwareProfile;

/// What to measure.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// Architectures whose per-layer times are measured.
    pub archs: Vec<String>,
    /// Batch sizes measured.
    pub batches: Vec<u32>,
    /// Base profile for the fields not measured (the caller resolves the
    /// preset or file, so a bad one is reported as bad input).
    pub base: HardwareProfile,
    /// Name of the new profile.
    pub name: String,
    /// Repetitions per measurement.
    pub reps: usize,
    /// Tensor-parallel degrees (above 1) whose passes are timed on that
    /// many GPUs; empty for none.
    pub tp: Vec<u32>,
    /// Warm passes through CUDA graphs, as `replay --graphs on` runs them.
    pub graphs: bool,
}
