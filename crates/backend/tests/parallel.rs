//! Model parallelism gives the one-GPU outputs: tensor parallelism (tp = 2,
//! Megatron split, all-reduces), pipeline parallelism (pp = 2, activations
//! handed over peer to peer or through the host) and both, on the same
//! weights, on the CPU device (always) and on CUDA (when it has the GPUs).

mod common;
use switchyard_backend::check::{
    fresh_seed, parallel_forward, parallel_forward_typed, rel_err, tolerance,
};
use switchyard_backend::device::{cpu::CpuDevice, cuda, Device, Dtype, Kernels};
use switchyard_backend::model::tiny::tiny_models;

const CONFIGS: [(usize, usize); 3] = [(2, 1), (1, 2), (2, 2)];

fn cpu(gpus: usize, peer: bool) -> Box<dyn Device> {
    let mut d = CpuDevice::new(gpus);
    d.peer = peer;
    Box::new(d)
}

#[test]
fn cpu_tp_and_pp_match_one_gpu() {
    let requests = [3, 17, 4242];
    for (arch, dims, seq) in tiny_models() {
        let seed = fresh_seed();
        let one =
            parallel_forward(cpu(1, true), (&arch, dims, seq), &requests, seed, (1, 1)).unwrap();
        assert!(one.ref_err < 1e-2, "{arch} 1x1: {}", one.ref_err);
        for (tp, pp) in CONFIGS {
            let got = parallel_forward(
                cpu(tp * pp, true),
                (&arch, dims, seq),
                &requests,
                seed,
                (tp, pp),
            )
            .unwrap();
            let err = rel_err(&got.out, &one.out);
            println!(
                "cpu {arch} tp={tp} pp={pp}: vs one GPU {err:.2e}, vs reference {:.2e}",
                got.ref_err
            );
            assert!(err < 5e-3, "{arch} tp={tp} pp={pp}: {err} (seed {seed})");
            assert!(
                got.ref_err < 1e-2,
                "{arch} tp={tp} pp={pp}: {}",
                got.ref_err
            );
            assert_eq!(got.handoffs.peer, ((pp - 1) * tp) as u64);
            assert_eq!(got.handoffs.host, 0);
        }
    }
}

/// fp32 and bf16 models split tp x pp: all-reduces, all-gathers and
/// hand-overs in the model's type, against the reference and one GPU.
fn typed_splits_match(open: &dyn Fn(usize) -> Option<Box<dyn Device>>, kind: &str) {
    let requests = [3, 17, 4242];
    for ((arch, dims, seq), dtype) in
        tiny_models()
            .into_iter()
            .zip([Dtype::Fp32, Dtype::Bf16, Dtype::Fp32])
    {
        let seed = fresh_seed();
        let model = (arch.as_str(), dims, seq);
        let one = parallel_forward_typed(open(1).unwrap(), model, &requests, seed, (1, 1), dtype)
            .unwrap();
        for (tp, pp) in CONFIGS {
            let Some(dev) = open(tp * pp) else {
                println!("skipped {kind} {arch} tp={tp} pp={pp}: too few GPUs");
                continue;
            };
            let got = parallel_forward_typed(dev, model, &requests, seed, (tp, pp), dtype).unwrap();
            let err = rel_err(&got.out, &one.out);
            println!(
                "{kind} {arch} {} tp={tp} pp={pp}: vs one GPU {err:.2e}, vs reference {:.2e}",
                dtype.name(),
                got.ref_err
            );
            assert!(
                got.ref_err < tolerance(dtype),
                "{arch} {dtype:?} tp={tp} pp={pp}: {}",
                got.ref_err
            );
            assert!(
                err < tolerance(dtype),
                "{arch} {dtype:?} tp={tp} pp={pp}: {err}"
            );
        }
    }
}

#[test]
fn cpu_fp32_and_bf16_splits_match_one_gpu() {
    typed_splits_match(&|n| Some(cpu(n, true)), "cpu");
}

#[test]
fn cuda_fp32_and_bf16_splits_match_one_gpu() {
    let Some(dev) = common::cuda_or_skip() else {
        return;
    };
    let have = dev.gpus();
    drop(dev);
    if have > 1 && !cuda::nccl_present() {
        println!("skipped: no libnccl.so on this machine");
        return;
    }
    typed_splits_match(
        &|n| (n <= have).then(|| Box::new(cuda::CudaDevice::open().unwrap()) as Box<dyn Device>),
        "cuda",
    );
}

#[test]
fn cpu_pp_without_peer_access_goes_through_the_host() {
    let (arch, dims, seq) = tiny_models().remove(0);
    let seed = fresh_seed();
    let one = parallel_forward(cpu(1, true), (&arch, dims, seq), &[5, 6], seed, (1, 1)).unwrap();
    let got = parallel_forward(cpu(4, false), (&arch, dims, seq), &[5, 6], seed, (2, 2)).unwrap();
    assert_eq!(got.handoffs.host, 2);
    assert_eq!(got.handoffs.peer, 0);
    assert!(rel_err(&got.out, &one.out) < 5e-3);
}

#[test]
fn cpu_tp_that_does_not_divide_the_heads_is_refused() {
    let (arch, dims, seq) = tiny_models().remove(0);
    let e = parallel_forward(cpu(3, true), (&arch, dims, seq), &[1], 1, (3, 1)).unwrap_err();
    assert!(format!("{e:#}").contains("heads"), "{e:#}");
}

#[test]
fn cuda_tp_and_pp_match_one_gpu() {
    let Some(dev) = common::cuda_or_skip() else {
        return;
    };
    let n = dev.gpus();
    drop(dev);
    let open = || -> Box<dyn Device> { Box::new(cuda::CudaDevice::open().unwrap()) };
    let requests = [3, 17, 4242, 9];
    for (arch, dims, seq) in tiny_models() {
        let seed = fresh_seed();
        let one = parallel_forward(open(), (&arch, dims, seq), &requests, seed, (1, 1)).unwrap();
        println!("cuda {arch} tp=1 pp=1: vs reference {:.2e}", one.ref_err);
        assert!(one.ref_err < 1e-2);
        for (tp, pp) in CONFIGS {
            if tp * pp > n {
                println!(
                    "skipped cuda {arch} tp={tp} pp={pp}: needs {} GPUs, this machine has {n}",
                    tp * pp
                );
                continue;
            }
            let got =
                parallel_forward(open(), (&arch, dims, seq), &requests, seed, (tp, pp)).unwrap();
            let err = rel_err(&got.out, &one.out);
            println!(
                "cuda {arch} tp={tp} pp={pp}: vs one GPU {err:.2e}, vs reference {:.2e}, handoffs {:?}",
                got.ref_err, got.handoffs
            );
            assert!(err < 5e-3, "{arch} tp={tp} pp={pp}: {err} (seed {seed})");
        }
    }
}

/// NCCL loads and runs on one GPU (a one-rank communicator leaves the data
/// as it is); the two-GPU machine runs the real all-reduces above.
#[test]
fn cuda_nccl_one_rank_collectives_run() {
    let Some(mut dev) = common::cuda_or_skip() else {
        return;
    };
    if !cuda::nccl_present() {
        println!("skipped: no libnccl.so on this machine");
        return;
    }
    use switchyard_backend::device::StreamKind;
    let n = 4096;
    dev.init_arena(3 * n as u64 * 2).unwrap();
    let half = switchyard_backend::device::Dtype::Fp16;
    dev.fill_random(0, 0, n, 7, 1.0, half).unwrap();
    dev.all_reduce(&[0], &[0], n, half).unwrap();
    dev.all_gather(&[0], &[0], &[n as u64 * 2], n, half)
        .unwrap();
    let out = dev.alloc_host(2 * n as u64 * 2, true).unwrap();
    dev.copy_d2h(0, 0, &out, 0, 2 * n as u64 * 2).unwrap();
    let e = dev.record(0, StreamKind::Compute).unwrap();
    dev.synchronize(e).unwrap();
    let (a, b) = out.as_slice().split_at(n * 2);
    assert_eq!(a, b, "one-rank all-gather copies the input");
    assert!(a.iter().any(|&x| x != 0));
    println!("cuda: NCCL one-rank all-reduce and all-gather ran");
}
