#!/usr/bin/env bash
# Multi-path loading (issue 15) on a machine with two or more GPUs.
#
# 1. multipath-bench: whole-model swap-in of opt-6.7b and opt-13b onto
#    GPU 0, direct and multi-path, beside one link's and all links' pinned
#    limits measured in the same run (bench/multipath.{md,csv,json}).
# 2. experiments/multipath_bursty.yaml: sim and replay of one schedule with
#    `--loading multipath` and `--loading direct`, and `plot compare` of
#    the four runs (hardware multipath first); gains.md: each side's
#    multipath gain in mean and p99 latency, sim beside hardware.
#
# usage: scripts/multipath.sh [--device cuda|cpu] [--bin DIR] [--out DIR]
#                             [--profile FILE|PRESET] [--gpus N]
#   --device   device for the bench and replay (default cuda)
#   --bin      folder holding sim, replay, plot and multipath-bench
#              (default: build them with cargo into target/release)
#   --out      output folder (default out/multipath)
#   --profile  hardware profile for sim and replay (default: calibrate
#              opt-2.7b on this machine into OUT/profile.yaml)
#   --gpus     GPUs of the bench (default 2)
#   --workload the bursty workload (default experiments/multipath_bursty.yaml)
#   --skip-bench  leave out step 1
#   --multipath-grouping G  sim and replay the multipath runs with
#              `--multipath-grouping G` (helpers, one_link, every_helper;
#              default: the workload's)
# On `--device cpu` the bench runs a small synthetic model (emulated GPUs
# copy one after another, so no gain is expected there).
set -euo pipefail

device=cuda
bin=""
out=out/multipath
profile=""
gpus=2
skip_bench=0
w=experiments/multipath_bursty.yaml
mpg=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --gpus) gpus="$2"; shift 2 ;;
        --workload) w="$2"; shift 2 ;;
        --skip-bench) skip_bench=1; shift ;;
        --multipath-grouping) mpg=(--multipath-grouping "$2"); shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "multipath.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -z "$bin" ]]; then
    cargo build --release -p switchyard-sim -p switchyard-backend -p switchyard-report
    bin=target/release
fi
mkdir -p "$out"

echo "== multipath-bench on $device ($gpus GPUs)"
if [[ "$skip_bench" == 1 ]]; then
    echo "(skipped)"
elif [[ "$device" == cpu ]]; then
    "$bin/multipath-bench" --device cpu --gpus "$gpus" --gpu-memory-gib 4.5 --staging-mib 64 --reps 2 \
        --models "name: syn, layers: 8, layer_mb: 16, layer_ms: 1" --out "$out/bench"
else
    "$bin/multipath-bench" --device "$device" --gpus "$gpus" --out "$out/bench"
fi

if [[ -z "$profile" ]]; then
    profile="$out/profile.yaml"
    echo "== calibrate the workload's architectures"
    archs=$(grep -h 'arch:' "$w" | sed 's/.*arch: *//; s/[ ,}].*//' | sort -u | paste -sd, -)
    "$bin/replay" calibrate --device "$device" --out "$profile" --arch "$archs" \
        --batches 1,2,3,4,5,6,7,8 --name multipath 2>&1 | tee "$out/calibrate.txt"
fi

for mode in multipath direct; do
    echo "== sim ($mode)"
    sched=("${mpg[@]}")
    [[ "$mode" == direct ]] && sched=(--schedule "$out/sim_multipath/schedule.csv")
    "$bin/sim" --workload "$w" --hardware "$profile" --loading "$mode" "${sched[@]}" \
        --out "$out/sim_$mode" 2>&1 | tee "$out/sim_$mode.txt"
done
for mode in multipath direct; do
    echo "== replay ($mode) on $device"
    grouping=()
    [[ "$mode" == multipath ]] && grouping=("${mpg[@]}")
    "$bin/replay" --workload "$w" --hardware "$profile" --device "$device" --loading "$mode" \
        "${grouping[@]}" --schedule "$out/sim_multipath/schedule.csv" --out "$out/hw_$mode" 2>&1 | tee "$out/hw_$mode.txt"
done
"$bin/plot" compare "$out/hw_multipath" "$out/sim_multipath" "$out/hw_direct" "$out/sim_direct" \
    --labels hw-multipath,sim-multipath,hw-direct,sim-direct --join \
    --title "$(basename "$w" .yaml): multi-path vs direct loading" --out "$out/compare"

# Each side's gain: direct latency over multipath latency (mean and p99).
stat() { grep -o "\"$2\": *[0-9.e+-]*" "$1/summary.json" | head -1 | grep -o '[0-9.e+-]*$'; }
{
    echo "# $(basename "$w" .yaml): multi-path gain, sim beside hardware"
    echo
    echo "command: scripts/multipath.sh --device $device --profile $profile --workload $w ${mpg[*]} --out $out"
    echo
    echo "| statistic | hw direct | hw multipath | hw gain | sim direct | sim multipath | sim gain | sim gain / hw gain |"
    echo "|---|---|---|---|---|---|---|---|"
    for s in mean_s p50_s p99_s; do
        hd=$(stat "$out/hw_direct" $s); hm=$(stat "$out/hw_multipath" $s)
        sd=$(stat "$out/sim_direct" $s); sm=$(stat "$out/sim_multipath" $s)
        awk -v s=$s -v hd="$hd" -v hm="$hm" -v sd="$sd" -v sm="$sm" 'BEGIN {
            hg = hd / hm; sg = sd / sm;
            printf "| %s | %.4f | %.4f | %.3fx | %.4f | %.4f | %.3fx | %.3f |\n", s, hd, hm, hg, sd, sm, sg, sg / hg }'
    done
} > "$out/gains.md"
cat "$out/gains.md"
