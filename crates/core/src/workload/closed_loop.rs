//! Validation of `arrivals: { process: closed_loop, ... }` into a
//! [`ClosedLoopSpec`] (the rule itself: [`crate::closed_loop`]).

use super::raw::RawArrivals;
use super::{ModelSpec, Process};
use crate::closed_loop::{ClosedLoopSpec, Cycle};
use crate::error::InputError;
use crate::yaml::Ctx;
use serde_saphyr::{Location, Spanned};

/// Most clients a closed loop may have.
pub const MAX_CLIENTS: u64 = 1_000_000;
/// Shortest scheduling cycle accepted, seconds.
pub const MIN_CYCLE_S: f64 = 1e-3;

/// The closed-loop process of `raw` (whose `process` is `closed_loop`).
pub(super) fn validate(
    ctx: &Ctx,
    raw: &Spanned<RawArrivals>,
    models: &[ModelSpec],
) -> Result<Process, InputError> {
    let a = &raw.value;
    refuse_given(
        ctx,
        [
            (a.rate.as_ref().map(|v| v.referenced), "rate"),
            (a.cv.as_ref().map(|v| v.referenced), "cv"),
            (a.skew.as_ref().map(|v| v.referenced), "skew"),
            (a.path.as_ref().map(|v| v.referenced), "path"),
        ],
        |field| {
            format!("`closed_loop` takes no `{field}`: each client sends its next request when its previous one completes (give `clients`, `think_ms`)")
        },
    )?;
    if a.per_model {
        return Err(ctx.err(
            &raw.referenced,
            "arrivals.per_model",
            "`closed_loop` has no per-model streams: client c asks for the c-th model in turn",
        ));
    }
    let clients = match &a.clients {
        Some(v) => {
            let n = ctx.at_least_one(v, "arrivals.clients")?;
            if n > MAX_CLIENTS {
                return Err(ctx.err(
                    &v.referenced,
                    "arrivals.clients",
                    format!("expected at most {MAX_CLIENTS} clients, got {n}"),
                ));
            }
            n as u32
        }
        None => 1,
    };
    let think_s = match &a.think_ms {
        Some(v) => ctx.non_negative(v, "arrivals.think_ms", "milliseconds")? * 1e-3,
        None => 0.0,
    };
    let cycle = match &a.cycle_s {
        Some(v) => {
            let c = ctx.positive(v, "arrivals.cycle_s", "seconds")?;
            if c < MIN_CYCLE_S {
                return Err(ctx.err(
                    &v.referenced,
                    "arrivals.cycle_s",
                    format!("expected a cycle of at least {MIN_CYCLE_S} s, got {c:e}"),
                ));
            }
            Some(c)
        }
        None => None,
    };
    let task = match &a.cycle_task {
        None => None,
        Some(t) if cycle.is_none() => {
            return Err(ctx.err(
                &t.referenced,
                "arrivals.cycle_task",
                "a `cycle_task` takes turns with the clients: give `cycle_s` too",
            ))
        }
        Some(t) => {
            let i = models
                .iter()
                .position(|m| m.name == t.value)
                .ok_or_else(|| {
                    ctx.err(
                        &t.referenced,
                        "arrivals.cycle_task",
                        format!("no model is named `{}`", t.value),
                    )
                })?;
            if models.len() < 2 {
                return Err(ctx.err(
                    &t.referenced,
                    "arrivals.cycle_task",
                    format!(
                        "`{}` is the only model: the clients need another one to ask for",
                        t.value
                    ),
                ));
            }
            Some(i as u32)
        }
    };
    Ok(Process::ClosedLoop(ClosedLoopSpec {
        clients,
        think_s,
        cycle: cycle.map(|cycle_s| Cycle { cycle_s, task }),
    }))
}

/// Refuses the closed-loop fields under any other process.
pub(super) fn refuse_stray(ctx: &Ctx, raw: &Spanned<RawArrivals>) -> Result<(), InputError> {
    let a = &raw.value;
    refuse_given(
        ctx,
        [
            (a.clients.as_ref().map(|v| v.referenced), "clients"),
            (a.think_ms.as_ref().map(|v| v.referenced), "think_ms"),
            (a.cycle_s.as_ref().map(|v| v.referenced), "cycle_s"),
            (a.cycle_task.as_ref().map(|v| v.referenced), "cycle_task"),
        ],
        |field| format!("`{field}` is a field of `process: closed_loop` only"),
    )
}

/// The error for the first of `fields` (`arrivals.<name>`) that was given,
/// saying `why(name)`.
fn refuse_given(
    ctx: &Ctx,
    fields: [(Option<Location>, &str); 4],
    why: impl Fn(&str) -> String,
) -> Result<(), InputError> {
    match fields.into_iter().find_map(|(at, f)| at.map(|at| (at, f))) {
        Some((at, field)) => Err(ctx.err(&at, format!("arrivals.{field}"), why(field))),
        None => Ok(()),
    }
}
