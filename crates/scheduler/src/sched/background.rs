//! Memory of the workload's background jobs: each holds its bytes out of
//! its GPU's pool all along (the clocks time its iterations).

use crate::Action;
use switchyard_core::hardware::GIB;
use switchyard_core::{InputError, Workload};

/// Bytes of GPU `g`'s pool: `capacity` less what a background job there holds.
pub(super) fn pool_bytes(workload: &Workload, g: u32, capacity: u64) -> u64 {
    let held = workload.background_on(g).map_or(0, |b| b.memory_bytes);
    capacity.saturating_sub(held)
}

/// Fails (naming `background`) when a shard of `shard` bytes of model `m`
/// placed on GPU `g` does not fit beside the background job there.
pub(super) fn check_fit(
    workload: &Workload,
    m: usize,
    shard: u64,
    g: u32,
    capacity: u64,
) -> Result<(), InputError> {
    let Some(b) = workload.background_on(g) else {
        return Ok(());
    };
    let left = pool_bytes(workload, g, capacity);
    if shard <= left {
        return Ok(());
    }
    Err(InputError::new(
        &workload.source,
        None,
        "background",
        format!(
            "model `{}` needs {:.2} GiB on GPU {g}, but background job `{}` leaves {:.2} GiB of it",
            workload.models[m].name,
            shard as f64 / GIB,
            b.name,
            left as f64 / GIB
        ),
    ))
}

/// When each GPU's background job yields to requests: preempted before the
/// first compute issued while it runs, resumed once every compute issued on
/// the GPU is reported done (the rule `sim` times).
#[derive(Debug, Default)]
pub(super) struct Preemption {
    /// Whether any GPU has a background job (nothing to do otherwise).
    any: bool,
    /// Per GPU: whether it has a background job.
    job: Vec<bool>,
    /// Per GPU: computes issued and not yet reported done.
    running: Vec<u32>,
    /// Per GPU: whether its job is preempted now.
    preempted: Vec<bool>,
}

impl Preemption {
    /// Every job running, nothing issued.
    pub(super) fn new(workload: &Workload, n_gpus: u32) -> Preemption {
        let job: Vec<bool> = (0..n_gpus)
            .map(|g| workload.background_on(g).is_some())
            .collect();
        Preemption {
            any: job.iter().any(|&j| j),
            job,
            running: vec![0; n_gpus as usize],
            preempted: vec![false; n_gpus as usize],
        }
    }

    /// A compute is about to be issued on `gpus`: preempts their running jobs.
    pub(super) fn issue(&mut self, gpus: &[u32], actions: &mut Vec<Action>) {
        if !self.any {
            return;
        }
        for &g in gpus {
            let g_ = g as usize;
            if !self.job[g_] {
                continue;
            }
            self.running[g_] += 1;
            if !self.preempted[g_] {
                self.preempted[g_] = true;
                actions.push(Action::Preempt(g));
            }
        }
    }

    /// A compute on `gpus` is done. Call [`Preemption::settle`] once the
    /// event's own computes are issued.
    pub(super) fn done(&mut self, gpus: &[u32]) {
        if !self.any {
            return;
        }
        for &g in gpus {
            if self.job[g as usize] {
                self.running[g as usize] -= 1;
            }
        }
    }

    /// Resumes the jobs of those of `gpus` left with no compute issued (a
    /// compute issued in the same event keeps the job preempted, as `sim`
    /// runs no iteration in between).
    pub(super) fn settle(&mut self, gpus: &[u32], actions: &mut Vec<Action>) {
        if !self.any {
            return;
        }
        for &g in gpus {
            let g_ = g as usize;
            if self.job[g_] && self.running[g_] == 0 && self.preempted[g_] {
                self.preempted[g_] = false;
                actions.push(Action::Resume(g));
            }
        }
    }
}
