#!/usr/bin/env bash
# The papers' own experiments (issue 14), simulated: Computron's swap-in
# and random workloads, PipeSwitch's Fig. 5 and Fig. 7, each on the bundled
# preset a new user would pick and on the profile of the paper's testbed
# (profiles/computron-perlmutter.yaml, profiles/pipeswitch-p3.yaml, whose
# fitted figures are documented in them and in results/papers/README.md).
# Computron's swap-in runs are also made with `--offload on` (offload/),
# for its offload column. Ends with tables.md (published | simulated | ratio, per paper), written by
# scripts/papers_tables.py from the runs.
#
# usage: scripts/papers.sh [--bin DIR] [--out DIR] [--seeds N]
#                          [--replay] [--device cuda|cpu]
#   --bin     folder holding `sim` (and `replay` with --replay; default:
#             cargo build --release of what is needed into target/release)
#   --out     output folder (default results/papers)
#   --seeds   seeds per point of Computron's random workloads (default 5)
#   --replay  also replay Computron's swap-in schedules on this machine's
#             GPUs (four are needed: nvidia-h200-x4), into computron/measured/,
#             which fills the tables' `measured` column, and PipeSwitch's
#             Fig. 5 schedules (fp32 models, one GPU) into pipeswitch/measured/
#   --device  replay's device (default cuda)
#
# Deterministic: the same inputs give the same bytes. Standard tools and
# python3 (standard library) only.
set -euo pipefail

bin=""
out=results/papers
seeds=5
replay=0
device=cuda
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --replay) replay=1; shift ;;
        --device) device="$2"; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "papers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
if [[ -z "$bin" ]]; then
    cargo build --release -q -p switchyard-sim
    if [[ $replay == 1 ]]; then
        cargo build --release -q -p switchyard-backend
    fi
    bin=target/release
fi
sim="$bin/sim"
exp=experiments/papers
mkdir -p "$out"

# One run: sim, then drop the figures (the tables are what this study reads).
run() {
    local dir="$1"; shift
    "$sim" "$@" -o "$dir" >/dev/null 2>"$dir.log.tmp" || { cat "$dir.log.tmp" >&2; exit 1; }
    mv "$dir.log.tmp" "$dir.log"
    rm -f "$dir"/latency_cdf.svg "$dir"/latency_cdf.png
}

# hardware label -> profile (bundled preset, then the paper's testbed).
computron_hw=("preset=a100-pcie4" "testbed=profiles/computron-perlmutter.yaml")
pipeswitch_hw=("preset=v100-pcie3" "testbed=profiles/pipeswitch-p3.yaml")

for hw in "${computron_hw[@]}"; do
    label=${hw%%=*}; profile=${hw#*=}
    mkdir -p "$out/computron/$label"
    for w in "$exp"/computron/swap_*.yaml; do
        run "$out/computron/$label/$(basename "$w" .yaml)" -w "$w" --hardware "$profile"
    done
    # Computron's offload column: the same runs with evictions copied back
    # to host memory (policy.offload).
    mkdir -p "$out/computron/$label/offload"
    for w in "$exp"/computron/swap_*.yaml; do
        run "$out/computron/$label/offload/$(basename "$w" .yaml)" -w "$w" \
            --hardware "$profile" --offload on
    done
    for w in "$exp"/computron/random_*.yaml; do
        d="$out/computron/$label/$(basename "$w" .yaml)"
        "$sim" sweep -w "$w" --hardware "$profile" --cv 0.25,1,4 --seeds "$seeds" \
            --jobs 2 -o "$d" >/dev/null 2>&1
        rm -f "$d"/sweep.svg "$d"/sweep.png
    done
done

for hw in "${pipeswitch_hw[@]}"; do
    label=${hw%%=*}; profile=${hw#*=}
    d="$out/pipeswitch/$label"
    mkdir -p "$d"
    run "$d/ready" -w "$exp/pipeswitch/fig5_ready.yaml" --hardware "$profile"
    run "$d/pipeswitch" -w "$exp/pipeswitch/fig5_switch.yaml" --hardware "$profile"
    run "$d/stop_and_start" -w "$exp/pipeswitch/fig5_switch.yaml" --hardware "$profile" \
        --system stop-and-start
    run "$d/per_layer" -w "$exp/pipeswitch/fig5_switch.yaml" --hardware "$profile" \
        --grouping per_layer
    run "$d/one_group" -w "$exp/pipeswitch/fig5_switch.yaml" --hardware "$profile" \
        --grouping one_group
    run "$d/preempt_training" -w "$exp/pipeswitch/preempt_training.yaml" --hardware "$profile"
done

# Measured: replay of the very schedules `sim` served (the preset's runs).
if [[ $replay == 1 ]]; then
    mkdir -p "$out/computron/measured"
    for w in "$exp"/computron/swap_*.yaml; do
        name=$(basename "$w" .yaml)
        d="$out/computron/measured/$name"
        "$bin/replay" -w "$w" --schedule "$out/computron/preset/$name/schedule.csv" \
            --device "$device" -o "$d" >"$d.log.tmp" 2>&1 || { cat "$d.log.tmp" >&2; exit 1; }
        mv "$d.log.tmp" "$d.log"
        rm -f "$d"/latency_cdf.svg "$d"/latency_cdf.png
        # And with offload (the offload column's `measured`).
        mkdir -p "$out/computron/measured/offload"
        d="$out/computron/measured/offload/$name"
        "$bin/replay" -w "$w" --schedule "$out/computron/preset/offload/$name/schedule.csv" \
            --offload on --device "$device" -o "$d" >"$d.log.tmp" 2>&1 \
            || { cat "$d.log.tmp" >&2; exit 1; }
        mv "$d.log.tmp" "$d.log"
        rm -f "$d"/latency_cdf.svg "$d"/latency_cdf.png
    done
    nvidia-smi -L >"$out/computron/measured/gpus.txt" 2>&1 || true
    # PipeSwitch's Fig. 5 runs (fp32 models, replayed in fp32 since the
    # backend runs a model's dtype) on one GPU, the preset's schedules, into
    # pipeswitch/measured/ (not yet a column of tables.md).
    mkdir -p "$out/pipeswitch/measured"
    for spec in "ready:fig5_ready:" "pipeswitch:fig5_switch:" \
        "stop_and_start:fig5_switch:--system stop-and-start" \
        "per_layer:fig5_switch:--grouping per_layer" \
        "one_group:fig5_switch:--grouping one_group"; do
        IFS=: read -r name wname extra <<<"$spec"
        d="$out/pipeswitch/measured/$name"
        # shellcheck disable=SC2086
        "$bin/replay" -w "$exp/pipeswitch/$wname.yaml" \
            --schedule "$out/pipeswitch/preset/$name/schedule.csv" $extra \
            --device "$device" -o "$d" >"$d.log.tmp" 2>&1 || { cat "$d.log.tmp" >&2; exit 1; }
        mv "$d.log.tmp" "$d.log"
        rm -f "$d"/latency_cdf.svg "$d"/latency_cdf.png
    done
fi

{
    if [[ $replay == 1 ]]; then
        echo "machine: $(nproc) vCPU, $(uname -m), replay on $device (computron/measured/gpus.txt); sim $("$sim" --version)"
        echo "command: scripts/papers.sh --out $out --seeds $seeds --replay --device $device"
    else
        echo "machine: $(nproc) vCPU, $(uname -m), no GPU used; sim $("$sim" --version)"
        echo "command: scripts/papers.sh --out $out --seeds $seeds"
    fi
} >"$out/machine.txt"
python3 scripts/papers_tables.py "$out" >"$out/tables.md"
echo "wrote $out/tables.md"
