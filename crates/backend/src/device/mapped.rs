//! Host memory mapped into a GPU's address space (direct host access,
//! `policy.direct_host`): kernels read weights in pinned host memory
//! where they lie. Each device hands out [`DevPtr`]s for mapped ranges
//! from [`MAPPED_BASE`] on, above any arena, and resolves them here to the
//! address its kernels use (CUDA: the mapped device pointer; CPU: the host
//! address).

use super::error::{invalid, DeviceResult};
use super::ops::DevPtr;

/// First [`DevPtr`] of mapped host memory: far above any arena.
pub const MAPPED_BASE: DevPtr = 1 << 60;

/// Alignment of mapped ranges in the [`DevPtr`] space.
const MAPPED_ALIGN: u64 = 256;

/// One GPU's mapped host ranges.
#[derive(Debug, Default)]
pub struct MappedRanges {
    /// `(first DevPtr, bytes, address the kernels use)`, ascending.
    ranges: Vec<(DevPtr, u64, u64)>,
}

impl MappedRanges {
    /// Adds `bytes` at kernel address `real`; returns the [`DevPtr`] that
    /// names its first byte.
    pub fn add(&mut self, real: u64, bytes: u64) -> DevPtr {
        let at = self.ranges.last().map_or(MAPPED_BASE, |&(a, n, _)| {
            (a + n).div_ceil(MAPPED_ALIGN) * MAPPED_ALIGN
        });
        self.ranges.push((at, bytes, real));
        at
    }

    /// Whether `at` names mapped host memory rather than the arena.
    pub fn is_mapped(at: DevPtr) -> bool {
        at >= MAPPED_BASE
    }

    /// The kernel address of `[at, at + bytes)`, a mapped range (checked:
    /// inside one range handed out by [`MappedRanges::add`]).
    pub fn resolve(&self, at: DevPtr, bytes: u64) -> DeviceResult<u64> {
        let i = self.ranges.partition_point(|&(a, _, _)| a <= at);
        if let Some(&(a, n, real)) = i.checked_sub(1).and_then(|i| self.ranges.get(i)) {
            if at + bytes <= a + n {
                return Ok(real + (at - a));
            }
        }
        invalid!("access [{at:#x}, +{bytes}) to mapped host memory outside every mapped range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_inside_and_refuse_outside() {
        let mut m = MappedRanges::default();
        let a = m.add(1000, 300);
        let b = m.add(5000, 10);
        assert_eq!(a, MAPPED_BASE);
        assert_eq!(b, MAPPED_BASE + 512);
        assert!(MappedRanges::is_mapped(b) && !MappedRanges::is_mapped(100));
        assert_eq!(m.resolve(a + 20, 280).unwrap(), 1020);
        assert_eq!(m.resolve(b + 2, 8).unwrap(), 5002);
        assert!(m.resolve(a + 20, 281).is_err());
        assert!(m.resolve(a + 300, 1).is_err());
        assert!(m.resolve(MAPPED_BASE - 1, 1).is_err());
    }
}
