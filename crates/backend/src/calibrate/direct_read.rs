//! The direct-host read rate (`links.direct_host_gbps`): a matrix product
//! whose weight operand lies in mapped pinned host memory
//! ([`Device::map_host`]), as a layer left in host memory runs, timed
//! between compute-stream events. With eight activation columns the
//! product reads each weight once and computes next to nothing, so its
//! time is the weight's bytes over the rate the kernel reads host memory.

use crate::device::{Device, Gemm, Mat, StreamKind};
use anyhow::Result;

/// Rows of the weight (the inner dimension of the product).
const K: usize = 4096;
/// Activation columns (tokens): few, so reading the weight dominates.
const TOKENS: usize = 8;

/// Sustained rate of `reps` products, back to back, reading a `bytes`
/// weight (rounded down to whole rows of [`K`]) from mapped pinned host
/// memory on GPU 0, bytes/s. Uses the arena from offset `scratch` for the
/// activations and the output (a few MiB).
pub fn direct_read_rate(
    dev: &mut dyn Device,
    bytes: u64,
    scratch: u64,
    reps: usize,
) -> Result<f64> {
    let n = ((bytes / 2) as usize / K).max(1);
    let weight = (n * K * 2) as u64;
    let host = dev.alloc_host(weight, true)?;
    // SAFETY: `host` lives to the end of this function, after the last
    // product reading the mapping is synchronised; nothing writes it.
    let w = unsafe { dev.map_host(0, &host, 0, weight) }?;
    let x = scratch;
    let c = x + (K * TOKENS * 2) as u64;
    dev.fill_random(0, x, K * TOKENS, 17, 0.05, crate::device::Dtype::Fp16)?;
    // C (n x 8) = W^T (n x K, read transposed from rows of K) X (K x 8).
    let g = Gemm::plain(n, TOKENS, K, Mat::t(w, K), Mat::n(x, K), Mat::n(c, n));
    // One untimed product first: the path is warm when timing starts.
    dev.gemm(0, &g)?;
    let start = dev.record(0, StreamKind::Compute)?;
    for _ in 0..reps.max(1) {
        dev.gemm(0, &g)?;
    }
    let end = dev.record(0, StreamKind::Compute)?;
    dev.synchronize(end)?;
    let s = dev.elapsed_s(start, end)?;
    dev.release(start);
    dev.release(end);
    drop(host);
    Ok((weight * reps.max(1) as u64) as f64 / s.max(1e-12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_device_reads_mapped_weights() {
        let mut dev = crate::device::cpu::CpuDevice::new(1);
        dev.init_arena(4 << 20).unwrap();
        let r = direct_read_rate(&mut dev, 1 << 20, 0, 2).unwrap();
        assert!(r.is_finite() && r > 0.0, "{r}");
    }
}
