#!/usr/bin/env bash
# Model-parallel swapping on N GPUs, measured: one command for a device
# machine with N GPUs (results/multi_gpu/ was made by it).
#
#   1. machine.txt: the GPUs, their PCIe links, the topology, NCCL;
#   2. parallel.txt: tp and pp outputs against the one-GPU output on the same
#      weights (the `parallel` test binary, when --bin holds parallel-test);
#   3. swap/: `swap-bench --multi-gpu N`: a model's swap-in whole on one GPU,
#      with pp = N and with tp = N, against the N links' pinned limit
#      measured in the same run;
#   4. profile.yaml: `replay calibrate` for the workload's architectures;
#   5. systems/: the workload's schedule (from `sim`) replayed under
#      computron, pipeswitch and stop-and-start, `sim --compare-systems` with
#      the calibrated profile on that schedule, and `plot compare` of the
#      replays (hardware.*) and of each system's replay against its
#      simulation (<system>/compare).
#
# usage: scripts/multi_gpu.sh [--bin DIR] [--out DIR] [--gpus N]
#                             [--model ARCH] [--workload W.yaml]
#   --bin       folder holding sim, replay, plot, swap-bench (and optionally
#               parallel-test); default: build them with cargo
#   --out       output folder (default out/multi_gpu)
#   --gpus      N (default 2)
#   --model     architecture of the swap-in benchmark (default opt-13b)
#   --workload  workload of step 5 (default experiments/bursty_2gpu.yaml)
#   --device    cuda (default) or cpu, to try the script without a GPU
#   --profile   use this hardware profile (file or preset) instead of step 4
# Every step runs even if an earlier one failed; the exit status is 1 if any
# failed, 2 on bad arguments.
set -uo pipefail

bin=""
out=out/multi_gpu
gpus=2
model=opt-13b
workload=experiments/bursty_2gpu.yaml
device=cuda
profile=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --gpus) gpus="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --workload) workload="$2"; shift 2 ;;
        --device) device="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "multi_gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -f "$workload" ]] || { echo "multi_gpu.sh: no such workload file: $workload" >&2; exit 2; }
if [[ -z "$bin" ]]; then
    cargo build --release -p switchyard-sim -p switchyard-backend -p switchyard-report || exit 1
    bin=target/release
fi
for b in sim replay plot swap-bench; do
    [[ -x "$bin/$b" ]] || { echo "multi_gpu.sh: $bin/$b is missing" >&2; exit 2; }
done
mkdir -p "$out"
export NCCL_NVLS_ENABLE=0
status=0
step() { echo "== $1 ($(date -u +%H:%M:%S))"; }

step machine
{
    nvidia-smi --query-gpu=index,name,memory.total,driver_version,pcie.link.gen.max,pcie.link.width.current --format=csv
    nvidia-smi topo -m
    ldconfig -p | grep -m1 libnccl || echo "libnccl: not found"
    echo "cpus: $(nproc)"
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

step "parallel outputs against one GPU"
if [[ -x "$bin/parallel-test" ]]; then
    "$bin/parallel-test" --nocapture --test-threads 1 >"$out/parallel.txt" 2>&1 || status=1
    cat "$out/parallel.txt"
else
    echo "skipped: $bin/parallel-test not built (cargo test -p switchyard-backend --test parallel)"
fi

step "swap-in of $model on 1 and $gpus GPUs"
"$bin/swap-bench" --device "$device" --multi-gpu "$gpus" --multi-model "$model" --out "$out/swap" 2>&1 \
    | tee "$out/swap.txt" || status=1

name=$(basename "$workload" .yaml)
archs=$(grep -h '^ *- *arch:' "$workload" | sed 's/.*arch: *//; s/ *#.*//' | sort -u | paste -sd, -)
if [[ -z "$profile" ]]; then
    profile="$out/profile.yaml"
    step "calibrate ($archs)"
    "$bin/replay" calibrate --device "$device" --out "$profile" --arch "$archs" \
        --batches 1,2,3,4,5,6,7,8 --name "$name" 2>&1 | tee "$out/calibrate.txt" || status=1
fi

sys="$out/systems"
mkdir -p "$sys"
step "sim --compare-systems on $name"
"$bin/sim" --workload "$workload" --hardware "$profile" --compare-systems \
    --no-timeline --out "$sys/sim" 2>&1 | tee "$sys/sim.txt" || status=1
runs=()
for s in computron pipeswitch stop-and-start; do
    step "replay $name under $s"
    if "$bin/replay" --workload "$workload" --hardware "$profile" --system "$s" --device "$device" \
        --schedule "$sys/sim/schedule.csv" --out "$sys/$s" 2>&1 | tee "$sys/$s.txt"; then
        runs+=("$sys/$s")
        "$bin/plot" compare "$sys/$s" "$sys/sim/$s" --labels hardware,sim --join \
            --title "$name, $s: simulated against measured" --out "$sys/$s/compare" || status=1
    else
        status=1
    fi
done
if [[ ${#runs[@]} -ge 2 ]]; then
    step "plot compare of the replays"
    labels=$(for r in "${runs[@]}"; do basename "$r"; done | paste -sd, -)
    "$bin/plot" compare "${runs[@]}" --labels "$labels" --join --log-x \
        --title "$name on $gpus GPUs, measured" --out "$sys/hardware" || status=1
fi
step done
exit $status
