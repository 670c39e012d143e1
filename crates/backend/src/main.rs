//! `replay`: serves a schedule on real GPUs (or the CPU device) in real time,
//! driven by the simulator's scheduler; `replay calibrate` measures a device
//! into a hardware profile; `replay selftest` checks the forward pass.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use switchyard_backend::calibrate::{calibrate, CalibrateOptions};
use switchyard_backend::device::{DeviceError, Dtype};
use switchyard_backend::host_cpus::{self, CpuPin};
use switchyard_backend::host_store::WeightSource;
use switchyard_backend::pace::IdleWait;
use switchyard_backend::{check, device, replay};
use switchyard_core::hardware::HardwareProfile;
use switchyard_core::overrides::PolicyOverrides;
use switchyard_core::workload::Process;
use switchyard_core::{Error, InputError, Schedule, Workload, EXIT_BAD_INPUT};

/// Replay a request schedule on a device, driven by the simulator's scheduler.
#[derive(Debug, Parser)]
#[command(
    name = "replay",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Workload YAML file (cluster, models, policy).
    #[arg(long, short = 'w')]
    workload: Option<PathBuf>,
    /// Schedule CSV (`id,arrival_s,model`), e.g. written by `sim`. Left
    /// out for a closed-loop workload (`process: closed_loop`): replay then
    /// runs the loop itself, each client's next request due when replay
    /// sees its previous one finished (plus the think time), and writes the
    /// arrivals it produced to schedule.csv. Given with a closed-loop
    /// workload, the file's times are served as fixed arrivals (as `sim
    /// --schedule` does), not tied to completions.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// Output folder.
    #[arg(long, short = 'o', default_value = "out")]
    out: PathBuf,
    /// Device: `cuda` or `cpu`.
    #[arg(long, default_value = "cuda", value_parser = ["cuda", "cpu"])]
    device: String,
    /// Override `cluster.hardware` (preset name or profile YAML).
    #[arg(long)]
    hardware: Option<String>,
    /// Folder of `<model>.safetensors` / `<arch>.safetensors` weights
    /// (models without a file get seeded random weights).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of random weights (default: the workload's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Policy overrides, the same flags and errors as `sim`'s, so one
    /// schedule can be replayed under any override it was simulated with.
    #[command(flatten)]
    policy: PolicyOverrides,
    /// Warm one-GPU passes through CUDA graphs (`on`), captured per pool
    /// placement, or every pass layer by layer (`off`, the default: the
    /// simulator does not model the captures). Calibrate with the same.
    #[arg(long, default_value = "off", value_parser = ["on", "off"])]
    graphs: String,
    /// Host CPUs of the thread that issues every copy and launch: `off`
    /// (the OS decides, the default), `auto` (the first GPU's NUMA-local
    /// CPUs, from its PCI device) or a CPU list such as `0-7,16`.
    #[arg(long, default_value = "off", value_parser = CpuPin::from_name)]
    pin_cpus: CpuPin,
    /// How the host thread waits with nothing in flight: `sleep` (until
    /// 1 ms before the next arrival, when 1.5 ms or more away, the default)
    /// or `spin` (busy throughout). Calibrate with the same.
    #[arg(long, default_value = "sleep", value_parser = IdleWait::from_name)]
    idle: IdleWait,
    /// Most models (copies and trace names expanded) a workload may serve.
    #[arg(long, default_value_t = switchyard_core::workload::DEFAULT_MAX_MODELS)]
    max_models: u64,
    /// Most GPUs a cluster may have.
    #[arg(long, default_value_t = switchyard_core::workload::DEFAULT_MAX_GPUS)]
    max_gpus: u64,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Measure links and per-layer compute; write a hardware profile YAML.
    Calibrate {
        /// Device: `cuda` or `cpu`.
        #[arg(long, default_value = "cuda", value_parser = ["cuda", "cpu"])]
        device: String,
        /// Profile file to write.
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Architectures to time per layer, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "opt-1.3b,bert-base,gpt2")]
        arch: Vec<String>,
        /// Batch sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
        batches: Vec<u32>,
        /// Profile supplying what is not measured.
        #[arg(long, default_value = "h200-pcie5")]
        base: String,
        /// Name of the new profile (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Repetitions per measurement.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Passes through CUDA graphs (`on`) or layer by layer (`off`), as
        /// the replays this profile is for run them.
        #[arg(long, default_value = "off", value_parser = ["on", "off"])]
        graphs: String,
        /// Tensor-parallel degrees whose passes are also timed, split over
        /// that many GPUs, comma-separated (e.g. `2`); needs as many GPUs.
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(2..))]
        tp: Vec<u32>,
        /// Host CPUs of the thread that issues every copy and launch: `off`
        /// (the OS decides, the default), `auto` (the first GPU's NUMA-local
        /// CPUs, from its PCI device) or a CPU list such as `0-7,16`.
        #[arg(long, default_value = "off", value_parser = CpuPin::from_name)]
        pin_cpus: CpuPin,
        /// How idle gaps are waited, as the replays this profile is for
        /// wait between requests (`replay --idle`).
        #[arg(long, default_value = "sleep", value_parser = IdleWait::from_name)]
        idle: IdleWait,
        /// Weight types whose GEMM rate and passes are measured,
        /// comma-separated (`fp16`, `fp32`, `bf16`); fp16 is always
        /// measured. fp32 and bf16 passes go to `calibrated` under
        /// `arch@fp32` / `arch@bf16`, the fp32 rate to
        /// `compute.fp32_flops_per_s`.
        #[arg(long, value_delimiter = ',', default_value = "fp16", value_parser = ["fp16", "fp32", "bf16"])]
        dtypes: Vec<String>,
    },
    /// Time warm forward passes layer by layer and through graphs; prints CSV.
    Passes {
        /// Device: `cuda` or `cpu`.
        #[arg(long, default_value = "cuda", value_parser = ["cuda", "cpu"])]
        device: String,
        /// Architectures, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "bert-base,gpt2,opt-1.3b,opt-2.7b"
        )]
        arch: Vec<String>,
        /// Batch sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        batches: Vec<u32>,
        /// Timed passes per architecture, batch size and way.
        #[arg(long, default_value_t = 50)]
        reps: usize,
    },
    /// Check the forward pass against the f32 host reference.
    Selftest {
        /// Device: `cuda` or `cpu`.
        #[arg(long, default_value = "cuda", value_parser = ["cuda", "cpu"])]
        device: String,
    },
}

/// Why `replay` failed: the variant gives the exit status, so nothing is
/// recovered by downcasting.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Bad input (workload, schedule, profile, flags): exit 2.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Bad input or a failed read/write ([`Error::exit_code`]).
    #[error(transparent)]
    Core(#[from] Error),
    /// The device failed: exit 1.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The run failed: exit 1.
    #[error(transparent)]
    Run(#[from] anyhow::Error),
}

impl CliError {
    /// The process exit status.
    fn exit_code(&self) -> i32 {
        match self {
            CliError::Input(_) => EXIT_BAD_INPUT,
            CliError::Core(e) => e.exit_code(),
            CliError::Device(_) | CliError::Run(_) => 1,
        }
    }
}

/// `e` and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// Pins this (the host) thread as `pin` says, near `dev`'s first GPU for
/// `auto`: the CPU list it runs on, `None` when unpinned.
fn pin_host_thread(pin: &CpuPin, dev: &dyn device::Device) -> Result<Option<String>, CliError> {
    let bus = dev.pci_bus_id(0);
    let cpus = host_cpus::apply(pin, bus.as_deref(), &mut |n| eprintln!("note: {n}"))
        .map_err(|e| InputError::new("<flags>", None, "--pin-cpus", e))?;
    if let Some(c) = &cpus {
        eprintln!("host thread pinned to CPUs {c}");
    }
    Ok(cpus)
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.cmd {
        Some(Cmd::Calibrate {
            device,
            out,
            arch,
            batches,
            base,
            name,
            reps,
            tp,
            graphs,
            pin_cpus,
            idle,
            dtypes,
        }) => {
            let base = HardwareProfile::resolve(&base, None)?;
            let gpus = tp.iter().copied().max().unwrap_or(1) as usize;
            let mut dev = device::open(&device, gpus)?;
            let pinned = pin_host_thread(&pin_cpus, dev.as_ref())?;
            let name = name.unwrap_or_else(|| {
                out.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "calibrated".into())
            });
            let opts = CalibrateOptions {
                archs: arch,
                batches,
                base,
                name,
                reps: reps.max(1),
                tp,
                graphs: graphs == "on",
                idle,
                dtypes: dtypes
                    .iter()
                    .filter_map(|d| Dtype::from_name(d).ok())
                    .collect(),
            };
            let (mut profile, mut report) = calibrate(dev.as_mut(), &opts)?;
            let describe = dev.describe();
            switchyard_backend::calibrate::paced::refine(dev, &opts, &mut profile, &mut report)?;
            eprint!("{report}");
            let mut text = format!("# Written by `replay calibrate` on {describe}.\n");
            text += &format!(
                "# host thread: {}\n",
                pinned.map_or("unpinned".into(), |c| format!("pinned to CPUs {c}"))
            );
            for line in report.lines() {
                text += &format!("# {line}\n");
            }
            text += &profile.to_yaml();
            switchyard_core::output::write_atomic(&out, text.as_bytes())?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
        Some(Cmd::Passes {
            device,
            arch,
            batches,
            reps,
        }) => {
            let mut dev = device::open(&device, 1)?;
            eprintln!("{}", dev.describe());
            println!("{}", switchyard_backend::warm_bench::CSV_HEADER);
            for a in &arch {
                for r in switchyard_backend::warm_bench::measure(
                    dev.as_mut(),
                    std::slice::from_ref(a),
                    &batches,
                    reps,
                )? {
                    println!("{}", r.csv());
                    eprintln!("{}: {} graph launches", r.arch, r.graph_launches);
                }
            }
            Ok(())
        }
        Some(Cmd::Selftest { device }) => {
            let mut dev = device::open(&device, 1)?;
            // Every element type, each against its own tolerance.
            let mut failed = Vec::new();
            for dtype in Dtype::ALL {
                let mut worst = 0f64;
                for (arch, dims, seq) in switchyard_backend::model::tiny::tiny_models() {
                    let seed = check::fresh_seed();
                    let model = (arch.as_str(), dims, seq);
                    let requests = [1, 2, 3, 77];
                    let err =
                        check::forward_check_typed(dev.as_mut(), model, &requests, seed, dtype)?;
                    println!(
                        "{} {arch} {}: relative error {err:.2e} vs f32 reference (seed {seed})",
                        dev.kind(),
                        dtype.name()
                    );
                    worst = worst.max(err);
                    if dev.graphs_supported() {
                        let (err, g) = check::graph_check(dev.as_mut(), model, seed, dtype)?;
                        println!(
                            "{} {arch} {} warm passes through graphs at {} pool offsets: relative error {err:.2e}; {} launches, {} captures ({} updated in place)",
                            dev.kind(),
                            dtype.name(),
                            check::GRAPH_PLACEMENTS,
                            g.launches,
                            g.captures,
                            g.updates
                        );
                        worst = worst.max(err);
                    }
                }
                let tol = check::tolerance(dtype);
                if worst.is_nan() || worst >= tol {
                    failed.push(format!(
                        "{}: relative error {worst:.2e}, tolerance {tol:.0e}",
                        dtype.name()
                    ));
                }
            }
            if !failed.is_empty() {
                return Err(anyhow::anyhow!(
                    "forward pass differs from the reference ({})",
                    failed.join("; ")
                )
                .into());
            }
            Ok(())
        }
        None => {
            let a = cli.run;
            let Some(wpath) = &a.workload else {
                return Err(InputError::new(
                    "<flags>",
                    None,
                    "--workload",
                    "required (or use a subcommand: calibrate, selftest)",
                )
                .into());
            };
            let limits = switchyard_core::workload::Limits {
                max_models: a.max_models,
                max_gpus: a.max_gpus,
            };
            let mut w = Workload::load_with(wpath, a.hardware.as_deref(), &limits)?;
            a.policy.apply(&mut w, wpath)?;
            replay::check_supported(&w)?;
            let closed = matches!(w.arrivals.process, Process::ClosedLoop(_));
            let schedule = match &a.schedule {
                Some(spath) => {
                    if closed {
                        eprintln!(
                            "note: serving {}'s arrival times as fixed; replay runs the closed loop only without --schedule",
                            spath.display()
                        );
                    }
                    Some(Schedule::read_csv(spath, &w.model_names())?)
                }
                None if closed => {
                    if switchyard_scheduler::Scheduler::needs_future(w.policy) {
                        return Err(switchyard_core::arrivals::closed_loop_not_drawn(&w).into());
                    }
                    None
                }
                None => {
                    return Err(InputError::new(
                        wpath,
                        None,
                        "--schedule",
                        "required: the workload's arrivals are not a closed loop (`sim -w W --schedule-only` writes one)",
                    )
                    .into())
                }
            };
            let seed = a.seed.unwrap_or(w.seed);
            if let Some(dir) = a.weights.as_ref().filter(|d| !d.is_dir()) {
                return Err(InputError::new(
                    dir,
                    None,
                    "--weights",
                    "is not a folder (expected one holding <model or arch>.safetensors files)",
                )
                .into());
            }
            // Before any GPU work: a run can take minutes, and its results
            // must have somewhere to go (a fresh folder swapped in at the
            // end, so `--out` holds one run's files, all new or all old).
            let set = switchyard_core::output_set::OutputSet::begin(&a.out)?;
            let weights = match &a.weights {
                Some(dir) => WeightSource::Safetensors {
                    dir: dir.clone(),
                    seed,
                },
                None => WeightSource::Random { seed },
            };
            let dev = device::open(&a.device, w.cluster.gpus as usize)?;
            // Before weights are built: a refusal costs nothing.
            switchyard_backend::exec::check_peer_access(dev.as_ref(), &w)?;
            let host_cpus = pin_host_thread(&a.pin_cpus, dev.as_ref())?;
            let mut ex = replay::build_executor(dev, &w, &weights)?;
            ex.graphs.off = a.graphs == "off";
            ex.host_cpus = host_cpus;
            ex.idle = a.idle;
            // Ctrl-C ends the run early with what it measured (a second
            // one ends the process at once).
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || {
                if flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    std::process::exit(130);
                }
            })
            .map_err(|e| anyhow::anyhow!("cannot catch Ctrl-C: {e}"))?;
            let r = match &schedule {
                Some(schedule) => replay::replay_until(ex, &w, schedule, set.path(), &stop)?,
                None => replay::replay_closed_until(ex, &w, set.path(), &stop)?,
            };
            set.commit()?;
            if r.run.partial {
                eprintln!(
                    "interrupted: {} of {} requests finished; wrote them to {} (summary.json: \"partial\": true)",
                    r.summary.requests,
                    schedule.as_ref().map_or(r.summary.requests, |s| s.requests.len() as u64),
                    a.out.display()
                );
                std::process::exit(130);
            }
            eprintln!(
                "{}: {} requests on {}; p50 {:.2} ms, p99 {:.2} ms; late dispatches: {} (max {:.2} ms); wrote {}",
                w.name,
                r.summary.requests,
                r.run.device,
                r.summary.p50_s * 1e3,
                r.summary.p99_s * 1e3,
                r.run.late_dispatches,
                r.run.max_dispatch_delay_s * 1e3,
                a.out.display()
            );
            Ok(())
        }
    }
}
