//! Memory of the workload's background jobs: each holds its bytes out of
//! its GPU's pool all along (the clocks time its iterations).

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
