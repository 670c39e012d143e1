//! `arrivals: { process: closed_loop }`: parsed with its defaults, and
//! every bad value names the field and the line.

use std::path::Path;
use switchyard_core::closed_loop::{ClosedLoopSpec, Cycle};
use switchyard_core::workload::Process;
use switchyard_core::{arrivals, Workload};
mod common;

use common::check;

/// A workload of two models whose arrivals block is `arrivals` (lines of
/// its own, indented by two).
fn with_arrivals(arrivals: &str) -> String {
    format!(
        "name: t\nseed: 1\nduration_s: 4\ncluster:\n  hardware: v100-pcie3\n  gpus: 1\n\
         models:\n  - {{ arch: resnet-152, name: train }}\n  - {{ arch: resnet-152 }}\n\
         arrivals:\n{arrivals}policy:\n  system: pipeswitch\n"
    )
}

fn spec(text: &str) -> ClosedLoopSpec {
    match Workload::parse(Path::new("t.yaml"), text)
        .unwrap()
        .arrivals
        .process
    {
        Process::ClosedLoop(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_client_without_think_time_or_cycle_is_the_default() {
    let s = spec(&with_arrivals("  process: closed_loop\n"));
    assert_eq!(
        s,
        ClosedLoopSpec {
            clients: 1,
            think_s: 0.0,
            cycle: None
        }
    );
}

#[test]
fn the_cycle_task_is_a_model_index() {
    let s = spec(&with_arrivals(
        "  process: closed_loop\n  clients: 3\n  think_ms: 2.5\n  cycle_s: 2\n  cycle_task: train\n",
    ));
    assert_eq!(s.clients, 3);
    assert_eq!(s.think_s, 0.0025);
    assert_eq!(
        s.cycle,
        Some(Cycle {
            cycle_s: 2.0,
            task: Some(0)
        })
    );
}

#[test]
fn a_closed_loop_is_not_generated_ahead() {
    let w = Workload::parse(
        Path::new("t.yaml"),
        &with_arrivals("  process: closed_loop\n"),
    )
    .unwrap();
    let Err(e) = arrivals::plan(&w, 1000) else {
        panic!("a closed loop was planned ahead")
    };
    assert!(e.to_string().contains("depend on completions"), "{e}");
}

#[test]
fn bad_values_name_the_field_and_line() {
    let cl = "  process: closed_loop\n";
    check(
        &with_arrivals(&format!("{cl}  clients: 0\n")),
        "arrivals.clients",
        "clients:",
        ">= 1",
    );
    check(
        &with_arrivals(&format!("{cl}  clients: 2000000\n")),
        "arrivals.clients",
        "clients:",
        "at most",
    );
    check(
        &with_arrivals(&format!("{cl}  think_ms: -1\n")),
        "arrivals.think_ms",
        "think_ms:",
        ">= 0",
    );
    check(
        &with_arrivals(&format!("{cl}  cycle_s: 0\n")),
        "arrivals.cycle_s",
        "cycle_s:",
        "> 0",
    );
    check(
        &with_arrivals(&format!("{cl}  cycle_s: 0.0000001\n")),
        "arrivals.cycle_s",
        "cycle_s:",
        "at least",
    );
    check(
        &with_arrivals(&format!("{cl}  cycle_task: train\n")),
        "arrivals.cycle_task",
        "cycle_task:",
        "give `cycle_s` too",
    );
    check(
        &with_arrivals(&format!("{cl}  cycle_s: 1\n  cycle_task: nope\n")),
        "arrivals.cycle_task",
        "cycle_task:",
        "no model is named `nope`",
    );
    check(
        &with_arrivals(&format!("{cl}  rate: 5\n")),
        "arrivals.rate",
        "rate:",
        "takes no `rate`",
    );
    check(
        &with_arrivals("  process: poisson\n  rate: 1\n  clients: 2\n"),
        "arrivals.clients",
        "clients:",
        "of `process: closed_loop` only",
    );
}

#[test]
fn a_cycle_task_that_is_the_only_model_leaves_the_clients_nothing() {
    let text = "name: t\nseed: 1\nduration_s: 4\ncluster:\n  hardware: v100-pcie3\n  gpus: 1\n\
                models:\n  - { arch: resnet-152, name: train }\n\
                arrivals:\n  process: closed_loop\n  cycle_s: 1\n  cycle_task: train\n\
                policy:\n  system: pipeswitch\n";
    check(text, "arrivals.cycle_task", "cycle_task:", "the only model");
}
