//! What `replay calibrate` measures (shared by every calibration step).

use switchyard_core::hardware::{calibrated_key, HardwareProfile};
use switchyard_core::model::Dtype;

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
    /// How idle gaps are waited, as `replay --idle` waits between requests.
    pub idle: crate::pace::IdleWait,
    /// Weight types whose passes (and GEMM rate) are measured; fp16's are
    /// measured whatever this says (the request overhead, jitter and idle
    /// penalty come from them).
    pub dtypes: Vec<Dtype>,
}

impl CalibrateOptions {
    /// The weight types measured: fp16 first, then the others asked for,
    /// each once.
    pub fn dtypes(&self) -> Vec<Dtype> {
        Dtype::ALL
            .into_iter()
            .filter(|&d| d == Dtype::Fp16 || self.dtypes.contains(&d))
            .collect()
    }

    /// Every `(architecture, weight type)` measured, fp16's first in
    /// `archs` order (so an fp16-only calibration is the one of before),
    /// then each other type's.
    pub fn entries(&self) -> Vec<(String, Dtype)> {
        self.dtypes()
            .into_iter()
            .flat_map(|d| self.archs.iter().map(move |a| (a.clone(), d)))
            .collect()
    }

    /// The profile's `calibrated` key of an entry ([`calibrated_key`]).
    pub fn key(arch: &str, dtype: Dtype) -> String {
        calibrated_key(arch, dtype)
    }
}
