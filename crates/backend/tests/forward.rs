//! The forward pass on the CPU device (always) and the CUDA device (when a
//! GPU is present) matches the f32 host reference on tiny transformers.

mod common;
use switchyard_backend::check::{forward_check, fresh_seed, tiny_models};
use switchyard_backend::device::cpu::CpuDevice;

#[test]
fn cpu_forward_matches_reference() {
    let mut dev = CpuDevice::new(1);
    for (arch, dims, seq) in tiny_models() {
        let seed = fresh_seed();
        let err = forward_check(&mut dev, &arch, dims, seq, &[3, 17, 4242], seed).unwrap();
        println!("cpu {arch}: relative error {err:.2e} (seed {seed})");
        assert!(err < 1e-2, "{arch}: relative error {err} (seed {seed})");
    }
}

#[test]
fn cuda_forward_matches_reference() {
    let Some(mut dev) = common::cuda_or_skip() else {
        return;
    };
    for (arch, dims, seq) in tiny_models() {
        let seed = fresh_seed();
        let err = forward_check(&mut dev, &arch, dims, seq, &[3, 17, 4242, 9], seed).unwrap();
        println!("cuda {arch}: relative error {err:.2e} (seed {seed})");
        assert!(err < 1e-2, "{arch}: relative error {err} (seed {seed})");
    }
}
