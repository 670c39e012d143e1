//! Timing of the workload's background jobs: each runs iterations back to
//! back on its GPU while no request's work is there, and a request's work
//! waits for the end of the iteration in progress when it is issued.

use serde::Serialize;
use switchyard_core::Workload;

/// What a background job got done in a simulated run (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackgroundResult {
    /// The job's name.
    pub name: String,
    /// Its GPU.
    pub gpu: u32,
    /// Iterations completed by the end of the run.
    pub iterations: u64,
    /// Iterations per second over the run.
    pub iterations_per_s: f64,
    /// That rate over the rate of the GPU to itself (1 / iteration time):
    /// the share of the GPU the job kept.
    pub share: f64,
}

/// Per GPU: its job's iteration time (if it has one) and iterations done.
#[derive(Debug, Default)]
pub(crate) struct Background {
    iteration_s: Vec<Option<f64>>,
    done: Vec<u64>,
}

impl Background {
    pub(crate) fn new(workload: &Workload, gpus: usize) -> Background {
        let mut iteration_s = vec![None; gpus];
        for b in &workload.background {
            if let Some(slot) = iteration_s.get_mut(b.gpu as usize) {
                *slot = Some(b.iteration_s);
            }
        }
        Background {
            iteration_s,
            done: vec![0; gpus],
        }
    }

    /// A request's work on `gpus` can start at `t` (their streams free
    /// since `idle_since[g]`, never before time 0): the time the GPUs are
    /// handed over, the end of each job's iteration in progress at `t`
    /// (`t` itself without jobs). Counts the iterations run meanwhile.
    pub(crate) fn preempt(&mut self, gpus: &[u32], idle_since: impl Fn(u32) -> f64, t: f64) -> f64 {
        let mut handed = t;
        for &g in gpus {
            let Some(iter) = self.iteration_s[g as usize] else {
                continue;
            };
            let resume = idle_since(g).max(0.0);
            if t > resume {
                let k = ((t - resume) / iter).ceil();
                self.done[g as usize] += k as u64;
                handed = handed.max(resume + k * iter);
            }
        }
        handed
    }

    /// Results at the end of a run of `span_s` seconds: each job also runs
    /// the whole iterations that fit after its GPU's last request.
    pub(crate) fn results(
        &self,
        workload: &Workload,
        idle_since: impl Fn(u32) -> f64,
        span_s: f64,
    ) -> Vec<BackgroundResult> {
        workload
            .background
            .iter()
            .filter(|b| (b.gpu as usize) < self.done.len())
            .map(|b| {
                let resume = idle_since(b.gpu).max(0.0);
                let tail = if span_s > resume {
                    ((span_s - resume) / b.iteration_s).floor() as u64
                } else {
                    0
                };
                let iterations = self.done[b.gpu as usize] + tail;
                let per_s = if span_s > 0.0 {
                    iterations as f64 / span_s
                } else {
                    0.0
                };
                BackgroundResult {
                    name: b.name.clone(),
                    gpu: b.gpu,
                    iterations,
                    iterations_per_s: per_s,
                    share: per_s * b.iteration_s,
                }
            })
            .collect()
    }
}
