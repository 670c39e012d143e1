//! `swap-bench`: the swapping benchmarks, written to `--out` as CSV and
//! markdown.
//!
//! 1. Pinned copy limit (1 GiB host-to-device copies) and the swap-in of a
//!    whole OPT-6.7B from pinned memory (one copy, and layer by layer).
//! 2. PipeSwitch's experiment: time from request to result for a cold model
//!    (weights in host memory) vs warm, for BERT-base, GPT-2 and OPT-1.3B at
//!    batch 8, with stop-and-start (pageable, whole model, then run),
//!    per-layer pipelining, one group and the optimal grouping (groups from
//!    the scheduler's placement for the `--hardware` profile, planned for
//!    the benchmarked batch size; beside it, the grouping planned for batch 1).

// One group holding every layer is `&[0..n]`, a list of one range.
#![allow(clippy::single_range_in_vec_init)]

use anyhow::Result;
use clap::Parser;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use switchyard_backend::calibrate::measure_h2d;
use switchyard_backend::device::{self, StreamKind};
use switchyard_backend::exec::{ComputeOp, CopyOp, Executor};
use switchyard_backend::host_store::{HostStore, WeightSource};
use switchyard_backend::model::shard::ShardLayout;
use switchyard_backend::model::ModelLayout;
use switchyard_core::hardware::GIB_BYTES;
use switchyard_core::stats::median;
use switchyard_core::workload::{Grouping, ModelSpec, System};
use switchyard_core::HardwareProfile;

#[derive(Debug, Parser)]
#[command(
    name = "swap-bench",
    about = "Swap-in bandwidth and PipeSwitch cold/warm latency"
)]
struct Args {
    /// Device: `cuda` or `cpu`.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Output folder.
    #[arg(long, short = 'o', default_value = "out/swap-bench")]
    out: PathBuf,
    /// Hardware profile for the optimal grouping (preset or file).
    #[arg(long, default_value = "h200-pcie5")]
    hardware: String,
    /// Models of the cold/warm experiment.
    #[arg(long, value_delimiter = ',', default_value = "bert-base,gpt2,opt-1.3b")]
    models: Vec<String>,
    /// Model of the whole-model swap-in.
    #[arg(long, default_value = "opt-6.7b")]
    big: String,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Repetitions (median reported).
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Multi-GPU mode only: swap-in of `--multi-model` whole on one GPU,
    /// with pp = N and with tp = N, against the N links' measured limit
    /// (writes multi_gpu.csv and multi_gpu.md).
    #[arg(long)]
    multi_gpu: Option<usize>,
    /// Model of the multi-GPU mode.
    #[arg(long, default_value = "opt-13b")]
    multi_model: String,
}

/// Issues `copies` (ranges, pinned) and one compute waiting on them; returns
/// request-to-result seconds (host clock: issue to the host seeing the output).
fn cold_run(
    ex: &mut Executor,
    model: usize,
    groups: &[std::ops::Range<usize>],
    pinned: bool,
    batch: usize,
    key: &mut u64,
) -> Result<f64> {
    let n = ex.layouts[model].layers();
    let t0 = Instant::now();
    let mut waits = Vec::new();
    for g in groups {
        *key += 1;
        let off = ex.layouts[model].layer_offsets[g.start];
        ex.copy(CopyOp {
            key: *key,
            gpu: 0,
            model,
            layers: g.clone(),
            pool_offset: off,
            pinned,
            ..Default::default()
        })?;
        waits.push((g.clone(), *key));
    }
    *key += 1;
    let ck = *key;
    ex.compute(ComputeOp {
        key: ck,
        gpus: vec![0],
        model,
        layers: 0..n,
        requests: (0..batch as u64).collect(),
        waits,
        ..Default::default()
    })?;
    let done = ex.wait_for_compute(ck)?;
    Ok((done - t0).as_secs_f64())
}

fn main() -> Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.out)?;
    if let Some(n) = a.multi_gpu {
        let mut dev = device::open(&a.device, n)?;
        let limit = if dev.kind() == "cuda" {
            GIB_BYTES
        } else {
            16 << 20
        };
        let r = switchyard_backend::multi_bench::multi_gpu(
            dev.as_mut(),
            &a.multi_model,
            n,
            a.reps,
            limit,
        )?;
        let md = switchyard_backend::multi_bench::to_markdown(
            &r,
            &format!("{}: {}", dev.kind(), dev.describe()),
        );
        print!("{md}");
        switchyard_core::output::write_atomic(
            &a.out.join("multi_gpu.csv"),
            switchyard_backend::multi_bench::to_csv(&r).as_bytes(),
        )?;
        switchyard_core::output::write_atomic(&a.out.join("multi_gpu.md"), md.as_bytes())?;
        let mut json = serde_json::to_vec_pretty(&r)?;
        json.push(b'\n');
        switchyard_core::output::write_atomic(&a.out.join("multi_gpu.json"), &json)?;
        return Ok(());
    }
    let hw = HardwareProfile::resolve(&a.hardware, None)?;
    let mut dev = device::open(&a.device, 1)?;
    let cuda = dev.kind() == "cuda";
    let describe = dev.describe();
    let mut md = format!(
        "# swap-bench\n\ndevice: {describe}; profile for grouping: {}\n\n",
        hw.name
    );

    // 1. Pinned limit and the big model's swap-in.
    let big = ModelLayout::new(
        &switchyard_core::arch::builtin(&a.big)
            .ok_or_else(|| anyhow::anyhow!("unknown arch {}", a.big))?,
    )?;
    let big_bytes = big.total_bytes();
    dev.init_arena(big_bytes.div_ceil(256) * 256 + (64 << 20))?;
    let limit_size: u64 = if cuda { GIB_BYTES } else { 16 << 20 };
    let limit = measure_h2d(dev.as_mut(), true, &[limit_size], a.reps)?;
    let limit_bw = limit_size as f64 / limit.samples[0].1;
    let t = Instant::now();
    let host = HostStore::build(
        dev.as_mut(),
        std::slice::from_ref(&big),
        &[ShardLayout::single(&big)],
        std::slice::from_ref(&a.big),
        true,
        false,
        &WeightSource::Random { seed: 1 },
    )?;
    eprintln!(
        "{}: {:.2} GB pinned allocated and filled in {:.1} s",
        a.big,
        big_bytes as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );
    let buf = host.models[0].pinned.as_ref().unwrap();
    let mut whole = Vec::new();
    let mut per_layer = Vec::new();
    for _ in 0..a.reps.min(5) {
        let e0 = dev.record(0, StreamKind::Copy)?;
        dev.copy_h2d(0, buf, 0, 0, big_bytes)?;
        let e1 = dev.record(0, StreamKind::Copy)?;
        for l in 0..big.layers() {
            let (s, e) = (big.layer_offsets[l], big.layer_offsets[l + 1]);
            dev.copy_h2d(0, buf, s, s, e - s)?;
        }
        let e2 = dev.record(0, StreamKind::Copy)?;
        dev.synchronize(e2)?;
        whole.push(dev.elapsed_s(e0, e1)?);
        per_layer.push(dev.elapsed_s(e1, e2)?);
        for e in [e0, e1, e2] {
            dev.release(e);
        }
    }
    let (bw_whole, bw_layers) = (
        big_bytes as f64 / median(&mut whole),
        big_bytes as f64 / median(&mut per_layer),
    );
    drop(host);
    let mut csv = String::from("what,bytes,gb_per_s,fraction_of_pinned_limit\n");
    writeln!(
        csv,
        "pinned_limit_{}MiB,{limit_size},{:.3},1.000",
        limit_size >> 20,
        limit_bw / 1e9
    )?;
    writeln!(
        csv,
        "{}_one_copy,{big_bytes},{:.3},{:.3}",
        a.big,
        bw_whole / 1e9,
        bw_whole / limit_bw
    )?;
    writeln!(
        csv,
        "{}_per_layer_copies,{big_bytes},{:.3},{:.3}",
        a.big,
        bw_layers / 1e9,
        bw_layers / limit_bw
    )?;
    std::fs::write(a.out.join("swap_in.csv"), &csv)?;
    writeln!(md, "## Swap-in of {} ({:.2} GB) from pinned memory\n\n| copy | GB/s | of pinned limit |\n|---|---|---|", a.big, big_bytes as f64 / 1e9)?;
    writeln!(
        md,
        "| pinned limit ({} MiB copies) | {:.2} | 100% |",
        limit_size >> 20,
        limit_bw / 1e9
    )?;
    writeln!(
        md,
        "| whole model, one copy | {:.2} | {:.1}% |",
        bw_whole / 1e9,
        100.0 * bw_whole / limit_bw
    )?;
    writeln!(
        md,
        "| whole model, one copy per layer | {:.2} | {:.1}% |\n",
        bw_layers / 1e9,
        100.0 * bw_layers / limit_bw
    )?;
    eprint!("{csv}");

    // 2. PipeSwitch's experiment.
    let layouts: Vec<ModelLayout> = a
        .models
        .iter()
        .map(|m| {
            ModelLayout::new(
                &switchyard_core::arch::builtin(m)
                    .ok_or_else(|| anyhow::anyhow!("unknown arch {m}"))?,
            )
        })
        .collect::<Result<_>>()?;
    let host = HostStore::build(
        dev.as_mut(),
        &layouts,
        &layouts.iter().map(ShardLayout::single).collect::<Vec<_>>(),
        &a.models,
        true,
        true,
        &WeightSource::Random { seed: 2 },
    )?;
    let pool = layouts
        .iter()
        .map(|l| l.total_bytes())
        .max()
        .unwrap_or(0)
        .div_ceil(256)
        * 256;
    let mut ex = Executor::new(
        dev,
        host,
        layouts.clone(),
        &vec![a.batch; layouts.len()],
        pool,
        hw.compute.synthetic_batch_slope,
    )?;
    let mut key = 0u64;
    let mut csv = String::from("model,batch,warm_ms,copy_all_ms,first_group_copy_ms,target_ms,stop_and_start_ms,per_layer_ms,one_group_ms,optimal_ms,optimal_groups,optimal_over_target,optimal_over_bound,optimal_b1_ms,optimal_b1_groups\n");
    writeln!(
        md,
        "## PipeSwitch: request to result, batch {} (median of {})\n",
        a.batch, a.reps
    )?;
    writeln!(
        md,
        "target = max(pure copy, warm compute) + first group's copy (optimal grouping)\n"
    )?;
    writeln!(md, "| model | warm ms | pure copy ms | stop-and-start ms | per-layer ms | one group ms | optimal ms (groups) | first group copy ms | target ms | optimal / target | optimal / max(copy, warm) | optimal planned for batch 1, ms (groups) |\n|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for (m, name) in a.models.iter().enumerate() {
        let n = layouts[m].layers();
        let spec = ModelSpec {
            name: name.clone(),
            shape: layouts[m].shape.clone(),
            tp: 1,
            pp: 1,
            max_batch: a.batch as u32,
            micro_batch: a.batch as u32,
            slo_s: None,
        };
        // The scheduler's groups of the whole model for a load that a batch
        // of `batch` runs behind.
        let groups = |g: Grouping, batch: usize| -> Vec<std::ops::Range<usize>> {
            let p = switchyard_scheduler::placement::place(
                std::slice::from_ref(&spec),
                1,
                &hw,
                System::Pipeswitch,
                g,
            );
            p[0].groups_for(0, batch as u32)
                .ranges
                .iter()
                .map(|r| r.start as usize..r.end as usize)
                .collect()
        };
        let optimal = groups(Grouping::Optimal, a.batch);
        // For comparison: the same DP planned with batch 1's compute times.
        let optimal_b1 = groups(Grouping::Optimal, 1);
        let res = |gs: &[std::ops::Range<usize>],
                   pinned: bool,
                   ex: &mut Executor,
                   key: &mut u64|
         -> Result<f64> {
            let mut v = Vec::new();
            for _ in 0..a.reps + 1 {
                v.push(cold_run(ex, m, gs, pinned, a.batch, key)?);
                ex.evict(0, m, 0, layouts[m].total_bytes());
            }
            v.remove(0);
            Ok(median(&mut v))
        };
        let sas = res(&[0..n], false, &mut ex, &mut key)?;
        let per_layer = res(
            &groups(Grouping::PerLayer, a.batch),
            true,
            &mut ex,
            &mut key,
        )?;
        let one = res(&[0..n], true, &mut ex, &mut key)?;
        let opt = res(&optimal, true, &mut ex, &mut key)?;
        let opt_b1 = res(&optimal_b1, true, &mut ex, &mut key)?;
        // Warm: weights resident, compute only.
        key += 1;
        ex.copy(CopyOp {
            key,
            gpu: 0,
            model: m,
            layers: 0..n,
            pool_offset: 0,
            pinned: true,
            ..Default::default()
        })?;
        ex.drain()?;
        let mut warm = Vec::new();
        for _ in 0..a.reps + 1 {
            key += 1;
            let t0 = Instant::now();
            ex.compute(ComputeOp {
                key,
                gpus: vec![0],
                model: m,
                layers: 0..n,
                requests: (0..a.batch as u64).collect(),
                ..Default::default()
            })?;
            warm.push((ex.wait_for_compute(key)? - t0).as_secs_f64());
        }
        warm.remove(0);
        let warm = median(&mut warm);
        // Pure copy time of the whole model and of the optimal first group.
        let time_copy = |ex: &mut Executor, r: std::ops::Range<usize>| -> Result<f64> {
            let mut v = Vec::new();
            let buf = ex.host.models[m].pinned.as_ref().unwrap();
            let (s, e) = (
                layouts[m].layer_offsets[r.start],
                layouts[m].layer_offsets[r.end],
            );
            for _ in 0..a.reps {
                let e0 = ex.dev.record(0, StreamKind::Copy)?;
                ex.dev.copy_h2d(0, buf, s, s, e - s)?;
                let e1 = ex.dev.record(0, StreamKind::Copy)?;
                ex.dev.synchronize(e1)?;
                v.push(ex.dev.elapsed_s(e0, e1)?);
                ex.dev.release(e0);
                ex.dev.release(e1);
            }
            Ok(median(&mut v))
        };
        let copy_all = time_copy(&mut ex, 0..n)?;
        let first = time_copy(&mut ex, optimal[0].clone())?;
        ex.evict(0, m, 0, layouts[m].total_bytes());
        let target = copy_all.max(warm) + first;
        let ms = |s: f64| s * 1e3;
        writeln!(
            csv,
            "{name},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{:.3},{:.3},{:.3},{}",
            a.batch,
            ms(warm),
            ms(copy_all),
            ms(first),
            ms(target),
            ms(sas),
            ms(per_layer),
            ms(one),
            ms(opt),
            optimal.len(),
            opt / target,
            opt / copy_all.max(warm),
            ms(opt_b1),
            optimal_b1.len()
        )?;
        writeln!(
            md,
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} ({}) | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} ({}) |",
            ms(warm),
            ms(copy_all),
            ms(sas),
            ms(per_layer),
            ms(one),
            ms(opt),
            optimal.len(),
            ms(first),
            ms(target),
            opt / target,
            opt / copy_all.max(warm),
            ms(opt_b1),
            optimal_b1.len()
        )?;
        eprintln!("{name}: warm {:.2} ms, copy {:.2} ms, s&s {:.2}, per-layer {:.2}, one {:.2}, optimal {:.2} ({} groups), target {:.2}", ms(warm), ms(copy_all), ms(sas), ms(per_layer), ms(one), ms(opt), optimal.len(), ms(target));
    }
    std::fs::write(a.out.join("pipeswitch.csv"), &csv)?;
    std::fs::write(a.out.join("README.md"), &md)?;
    println!("{md}");
    Ok(())
}
