//! A hint to the CPU to bring a value's memory into cache ahead of use.
//!
//! The simulator at 100,000 models spends much of each request in cache
//! misses on that model's state, scattered over several arrays; it knows
//! which models come next (arrivals are drawn ahead), so it can ask for
//! their lines while it works on the current one.

/// Asks the CPU to load the cache lines `value` spans (only the value
/// itself, not what it points to). The hint reads nothing and cannot fault.
/// A no-op where the target has no prefetch instruction wired up here.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    let start = value as *const T as usize;
    lines(start, start + std::mem::size_of::<T>().max(1));
}

/// [`prefetch`] of the bytes of a slice (nothing if it is empty).
#[inline(always)]
pub fn prefetch_bytes(bytes: &[u8]) {
    let start = bytes.as_ptr() as usize;
    lines(start, start + bytes.len());
}

/// Prefetches the lines of addresses `start..end`.
#[inline(always)]
fn lines(start: usize, end: usize) {
    let mut line = start & !(LINE - 1);
    while line < end {
        prefetch_line(line);
        line += LINE;
    }
}

/// Bytes in a cache line.
const LINE: usize = 64;

#[inline(always)]
fn prefetch_line(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint (PREFETCHT0): it never faults, even
    // on an address outside the process, and reads no value; SSE is part of
    // the x86_64 baseline, so the target feature it needs is always there.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
