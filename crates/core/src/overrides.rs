//! The policy overrides `sim` and `replay` both take on the command line
//! (`--system`, `--eviction`, `--grouping`, `--loading`,
//! `--multipath-grouping`, `--direct-host`, `--offload`): one definition of
//! the flags, their help and their errors, so a schedule simulated under an
//! override can be replayed under the same one.

use crate::workload::{Eviction, Grouping, Loading, MultipathGrouping, PolicyName, System};
use crate::{InputError, Workload};
use std::path::Path;

/// Command-line overrides of a workload's `policy` (flatten into a clap
/// parser with `#[command(flatten)]`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyOverrides {
    /// Override `policy.system`.
    #[arg(long, value_parser = System::from_name)]
    pub system: Option<System>,
    /// Override `policy.eviction` (lru, lfu, belady). Belady needs the
    /// future: `sim` holds the whole schedule in memory (about 24 bytes a
    /// request), where the others draw arrivals as the clock reaches them.
    #[arg(long, value_parser = Eviction::from_name)]
    pub eviction: Option<Eviction>,
    /// Override `policy.grouping` (optimal, per_layer, one_group).
    #[arg(long, value_parser = Grouping::from_name)]
    pub grouping: Option<Grouping>,
    /// Override `policy.loading` (direct, multipath).
    #[arg(long, value_parser = Loading::from_name)]
    pub loading: Option<Loading>,
    /// Override `policy.multipath_grouping` (helpers, one_link): what copy
    /// time the grouping DP plans multi-path loads with (multipath only).
    #[arg(long, value_parser = MultipathGrouping::from_name)]
    pub multipath_grouping: Option<MultipathGrouping>,
    /// Override `policy.direct_host` (on, off): the grouping DP may leave
    /// a model's first layers in pinned host memory, read in place.
    #[arg(long, value_parser = ["on", "off"])]
    pub direct_host: Option<String>,
    /// Override `policy.offload` (on, off): an eviction copies the weights
    /// back to host memory, freeing them when that copy is done.
    #[arg(long, value_parser = ["on", "off"])]
    pub offload: Option<String>,
}

impl PolicyOverrides {
    /// Applies the overrides to `workload` (read from `path`, which errors
    /// name): system, eviction and grouping first, then loading, the
    /// multi-path grouping (refused without multi-path loading), direct
    /// host access and offload, each checked against the system in force.
    pub fn apply(&self, workload: &mut Workload, path: &Path) -> Result<(), InputError> {
        let p = &mut workload.policy;
        p.system = self.system.unwrap_or(p.system);
        p.eviction = self.eviction.unwrap_or(p.eviction);
        p.grouping = self.grouping.unwrap_or(p.grouping);
        let system = p.system;
        if let Some(mode) = self.loading {
            workload.loading = workload
                .loading
                .with_mode(mode, &workload.cluster)
                .map_err(|e| InputError::new(path, None, "--loading", e))?;
        }
        if let Some(g) = self.multipath_grouping {
            if !workload.loading.multipath() {
                return Err(InputError::new(
                    path,
                    None,
                    "--multipath-grouping",
                    "only meaningful with multi-path loading (`--loading multipath`)",
                ));
            }
            workload.loading.grouping = g;
        }
        if let Some(on) = &self.direct_host {
            workload.loading = workload
                .loading
                .with_direct_host(on == "on", system)
                .map_err(|e| InputError::new(path, None, "--direct-host", e))?;
        }
        if let Some(on) = &self.offload {
            let on = on == "on";
            if let Some(why) = crate::workload::offload_refusal(system).filter(|_| on) {
                return Err(InputError::new(path, None, "--offload", why));
            }
            workload.policy.offload = on;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        o: PolicyOverrides,
    }

    fn workload(policy: &str) -> Workload {
        let text = format!(
            "name: t\nseed: 1\nduration_s: 1\ncluster: {{ hardware: h200-pcie5, gpus: 2 }}\n\
             models:\n  - {{ arch: bert-base }}\narrivals: {{ process: poisson, rate: 1 }}\n\
             policy: {{ {policy} }}\n"
        );
        Workload::parse(Path::new("w.yaml"), &text).unwrap()
    }

    fn apply(policy: &str, flags: &[&str]) -> Result<Workload, InputError> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(flags.iter().copied())).unwrap();
        let mut w = workload(policy);
        cli.o.apply(&mut w, Path::new("w.yaml")).map(|()| w)
    }

    #[test]
    fn every_override_lands_in_the_workload() {
        let w = apply(
            "system: pipeswitch",
            &[
                "--system",
                "streaming",
                "--eviction",
                "lfu",
                "--grouping",
                "per_layer",
                "--loading",
                "multipath",
                "--multipath-grouping",
                "one_link",
            ],
        )
        .unwrap();
        assert_eq!(w.policy.system, System::Streaming);
        assert_eq!(w.policy.eviction, Eviction::Lfu);
        assert_eq!(w.policy.grouping, Grouping::PerLayer);
        assert!(w.loading.multipath());
        assert_eq!(w.loading.grouping, MultipathGrouping::OneLink);
        let w = apply("system: pipeswitch", &["--direct-host", "on"]).unwrap();
        assert!(w.loading.direct_host);
        // Nothing given: the workload as written.
        let w = apply("system: pipeswitch, eviction: lfu", &[]).unwrap();
        assert_eq!(
            w.policy,
            workload("system: pipeswitch, eviction: lfu").policy
        );
        assert_eq!(w.loading, workload("system: pipeswitch").loading);
    }

    #[test]
    fn refusals_name_the_flag_and_the_file() {
        let e = apply("system: pipeswitch", &["--multipath-grouping", "helpers"]).unwrap_err();
        assert_eq!(e.field, "--multipath-grouping");
        assert_eq!(e.file, Path::new("w.yaml"));
        // The system in force is the overridden one.
        let e = apply(
            "system: pipeswitch",
            &["--system", "resident", "--offload", "on"],
        );
        assert_eq!(e.unwrap_err().field, "--offload");
        let bad = Cli::try_parse_from(["x", "--loading", "fast"]).unwrap_err();
        assert!(bad.to_string().contains("direct, multipath"), "{bad}");
    }
}
