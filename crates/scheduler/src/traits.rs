//! What each serving system means, in one table: every place in the
//! scheduler that behaves differently per [`System`] reads a field of
//! [`SystemTraits`] instead of matching on the system, and the executors
//! ask [`copy_source`] and [`placements`] rather than deciding for
//! themselves.

use crate::grouping::HelperLinks;
use crate::multipath::Multipath;
use crate::placement::{place_with, Placement, Placing};
use crate::Source;
use switchyard_core::workload::{Grouping, PolicySpec, System};
use switchyard_core::Workload;

/// The behaviour of one serving system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemTraits {
    /// Host memory every weight copy reads from.
    pub source: Source,
    /// Loads are split into the policy's layer groups
    /// ([`switchyard_core::workload::Grouping`]); otherwise a whole stage
    /// shard is one copy.
    pub grouped: bool,
    /// Loaded weights stay in GPU memory after a batch (false: every batch
    /// streams its layers into a scratch region freed when it is done).
    pub caches: bool,
    /// Every model is loaded before the clock starts
    /// ([`crate::Scheduler::preload`]) and kept: nothing is loaded or
    /// evicted during the run, and a workload that does not fit is refused.
    pub preloads: bool,
    /// Models run with their `parallel` (tp x pp) config; otherwise each
    /// model runs whole on one GPU (the one-GPU systems, as published).
    pub model_parallel: bool,
}

impl SystemTraits {
    /// The traits of `system`.
    pub const fn of(system: System) -> SystemTraits {
        match system {
            System::Computron => SystemTraits {
                source: Source::Pinned,
                grouped: false,
                caches: true,
                preloads: false,
                model_parallel: true,
            },
            System::Pipeswitch => SystemTraits {
                source: Source::Pinned,
                grouped: true,
                caches: true,
                preloads: false,
                model_parallel: false,
            },
            System::StopAndStart => SystemTraits {
                source: Source::Pageable,
                grouped: false,
                caches: true,
                preloads: false,
                model_parallel: false,
            },
            System::Resident => SystemTraits {
                source: Source::Pinned,
                grouped: false,
                caches: true,
                preloads: true,
                model_parallel: true,
            },
            System::Streaming => SystemTraits {
                source: Source::Pinned,
                grouped: true,
                caches: false,
                preloads: false,
                model_parallel: false,
            },
        }
    }

    /// The copy grouping the system uses under the policy's `grouping`:
    /// that grouping when [`SystemTraits::grouped`], else one group.
    pub fn grouping(&self, grouping: Grouping) -> Grouping {
        if self.grouped {
            grouping
        } else {
            Grouping::OneGroup
        }
    }

    /// Loads happen while the run goes on (cached, not preloaded): a batch
    /// may find a stage missing and load it.
    pub fn loads_on_demand(&self) -> bool {
        self.caches && !self.preloads
    }
}

/// Host memory that `system` copies weights from: what an executor must
/// hold each model's weights in.
pub fn copy_source(system: System) -> Source {
    SystemTraits::of(system).source
}

/// The placement of every model of `workload` under `policy`, as a
/// [`crate::Scheduler`] built with that policy holds it
/// ([`crate::Scheduler::placements`]); for executors that must lay out
/// weights before the scheduler runs.
pub fn placements(workload: &Workload, policy: PolicySpec) -> Vec<Placement> {
    // `policy.direct_host` is refused at parse time for the systems that
    // cannot honour it; a policy swapped in later (`--compare-systems`)
    // runs without it.
    let direct_host = workload.loading.direct_host
        && switchyard_core::workload::direct_host_refusal(policy.system).is_none();
    let gpus = workload.cluster.gpus.max(1);
    let hw = &workload.cluster.hardware;
    // Multi-path loads get groups planned for the helper links they are
    // split over (`policy.multipath_grouping: helpers`, the default).
    let planner = Multipath::new(&workload.loading, gpus, hw.usable_bytes())
        .filter(|_| workload.loading.grouping.helper_aware());
    let links = planner.as_ref().map(|mp| {
        let links = HelperLinks {
            link: match SystemTraits::of(policy.system).source {
                Source::Pageable => hw.pageable,
                Source::Pinned => hw.pinned,
            },
            peer: hw.peer,
            chunk: mp.chunk(),
        };
        (links, mp.helpers())
    });
    let how = Placing {
        direct_host,
        helpers: links.as_ref().map(|(l, k)| (l, *k)),
        ..Placing::new(policy.system, policy.grouping)
    };
    place_with(&workload.models, &workload.dtypes, gpus, hw, &how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gpu_systems_and_sources() {
        for s in System::ALL {
            let t = SystemTraits::of(s);
            assert_eq!(
                t.model_parallel,
                matches!(s, System::Computron | System::Resident),
                "{s:?}"
            );
            assert_eq!(t.source == Source::Pageable, s == System::StopAndStart);
            assert_eq!(
                t.loads_on_demand(),
                !matches!(s, System::Resident | System::Streaming)
            );
        }
    }
}
