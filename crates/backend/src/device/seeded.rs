//! Seeded values computed the same way on the host and on every device: the
//! weight fill's counter-based uniform stream (the CUDA `fill_random` kernel
//! in [`crate::device::cuda::source`] mirrors it).

/// SplitMix64 finaliser: a strong 64-bit mix.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th value of stream `seed`, uniform in `[-1, 1)` (the CUDA fill
/// kernel computes the same function).
pub fn uniform(seed: u64, i: u64) -> f32 {
    let r = mix64(seed ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    ((r >> 40) as f32) * (1.0 / (1u64 << 23) as f32) - 1.0
}
