//! The forward pass on the CPU device (always) and the CUDA device (when a
//! GPU is present) matches the f32 host reference on tiny transformers.

mod common;
use switchyard_backend::check::{
    forward_check, forward_check_typed, fresh_seed, graph_check, tolerance, GRAPH_PLACEMENTS,
};
use switchyard_backend::device::cpu::CpuDevice;
use switchyard_backend::device::{Device, Dtype};
use switchyard_backend::model::tiny::tiny_models;

/// Every tiny model in fp32 and bf16 on `dev`, each within its type's
/// tolerance; fp32 must also beat fp16's error (it rounds nothing to 16 bits).
fn check_types(dev: &mut dyn Device, kind: &str) {
    for (arch, dims, seq) in tiny_models() {
        let seed = fresh_seed();
        let model = (arch.as_str(), dims, seq);
        let reqs = [3, 17, 4242, 9];
        let half = forward_check_typed(dev, model, &reqs, seed, Dtype::Fp16).unwrap();
        for dtype in [Dtype::Fp32, Dtype::Bf16] {
            let err = forward_check_typed(dev, model, &reqs, seed, dtype).unwrap();
            println!(
                "{kind} {arch} {}: relative error {err:.2e}, fp16 {half:.2e} (seed {seed})",
                dtype.name()
            );
            assert!(
                err < tolerance(dtype),
                "{arch} {dtype:?}: relative error {err} (seed {seed})"
            );
        }
        let single = forward_check_typed(dev, model, &reqs, seed, Dtype::Fp32).unwrap();
        assert!(single < half, "{arch}: fp32 {single} vs fp16 {half}");
    }
}

#[test]
fn cpu_forward_in_fp32_and_bf16_matches_reference() {
    check_types(&mut CpuDevice::new(1), "cpu");
}

#[test]
fn cuda_forward_in_fp32_and_bf16_matches_reference() {
    let Some(mut dev) = common::cuda_or_skip() else {
        return;
    };
    check_types(&mut dev, "cuda");
}

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

fn check_graphs(dev: &mut dyn Device, kind: &str) {
    for ((arch, dims, seq), dtype) in tiny_models()
        .into_iter()
        .zip(Dtype::ALL.into_iter().cycle())
    {
        let seed = fresh_seed();
        let (err, g) = graph_check(dev, (&arch, dims, seq), seed, dtype).unwrap();
        println!(
            "{kind} {arch} {} through graphs: relative error {err:.2e} {g:?} (seed {seed})",
            dtype.name()
        );
        assert!(
            err < tolerance(dtype),
            "{arch}: relative error {err} (seed {seed})"
        );
        let n = GRAPH_PLACEMENTS as u64;
        assert_eq!(g.captures, n, "{arch}: one capture per placement");
        assert!(g.launches >= 2 * n, "{arch}: {g:?}");
        // The last placement is one too many for the shape: its capture
        // takes the oldest graph over, in place (CUDA may refuse, then
        // instantiates anew).
        assert!(
            g.updates == 1 || (kind == "cuda" && g.updates == 0),
            "{arch}: {g:?}"
        );
    }
}

#[test]
fn cpu_warm_passes_through_graphs_match_reference() {
    check_graphs(&mut CpuDevice::new(1), "cpu");
}

#[test]
fn cuda_warm_passes_through_graphs_match_reference() {
    let Some(mut dev) = common::cuda_or_skip() else {
        return;
    };
    check_graphs(&mut dev, "cuda");
}

#[test]
fn cpu_pass_reading_the_embedding_from_mapped_host_memory_matches_reference() {
    let mut dev = CpuDevice::new(1);
    for (arch, dims, seq) in tiny_models() {
        let seed = fresh_seed();
        let err = switchyard_backend::check::direct_host_check(
            &mut dev,
            &arch,
            dims,
            seq,
            &[3, 17, 4242],
            seed,
        )
        .unwrap();
        println!("cpu {arch} (embedding in host memory): relative error {err:.2e} (seed {seed})");
        assert!(err < 1e-2, "{arch}: relative error {err} (seed {seed})");
    }
}

#[test]
fn cuda_pass_reading_the_embedding_from_mapped_host_memory_matches_reference() {
    let Some(mut dev) = common::cuda_or_skip() else {
        return;
    };
    for (arch, dims, seq) in tiny_models() {
        let seed = fresh_seed();
        let err = switchyard_backend::check::direct_host_check(
            &mut dev,
            &arch,
            dims,
            seq,
            &[3, 17, 4242, 9],
            seed,
        )
        .unwrap();
        println!("cuda {arch} (embedding in host memory): relative error {err:.2e} (seed {seed})");
        assert!(err < 1e-2, "{arch}: relative error {err} (seed {seed})");
    }
}
