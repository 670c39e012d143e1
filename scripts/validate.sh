#!/usr/bin/env bash
# Validation: the simulator against the hardware, on the same schedules.
#
# For each workload: calibrate the machine once (`replay calibrate`), then
# `sim` with the calibrated profile (which also writes the schedule),
# `replay` of that very schedule on the device, and `plot compare` of the
# two (hardware first, so errors are the simulator's against it). Ends with
# summary.md: per workload, measured and simulated p50/p99, their relative
# errors, the KS distance and the replay's late dispatches.
#
# usage: scripts/validate.sh [--device cuda|cpu] [--bin DIR] [--out DIR]
#                            [--profile FILE] [--batches LIST] [WORKLOAD.yaml ...]
#   --device   replay device (default cuda)
#   --bin      folder holding sim, replay and plot (default: build them with
#              cargo into target/release)
#   --out      output folder (default out/validation)
#   --profile  use this hardware profile (a file or a preset) instead of calibrating
#   --batches  batch sizes to calibrate (default 1,2,3,4,5,6,7,8)
#   --system   serve every workload with this system (sim and replay alike)
#              instead of its `policy.system`
#   workloads  default: experiments/validation/*.yaml
#
# A workload whose replay fails (e.g. it needs more GPUs than the machine
# has) is reported as failed in summary.md with the reason; the others go on.
# Exit status: 0 when every workload ran, 1 otherwise, 2 on bad arguments.
set -euo pipefail

device=cuda
bin=""
out=out/validation
profile=""
batches=1,2,3,4,5,6,7,8
system=()
workloads=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --batches) batches="$2"; shift 2 ;;
        --system) system=(--system "$2"); shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        -*) echo "validate.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) workloads+=("$1"); shift ;;
    esac
done
if [[ ${#workloads[@]} -eq 0 ]]; then
    workloads=(experiments/validation/*.yaml)
fi
for w in "${workloads[@]}"; do
    [[ -f "$w" ]] || { echo "validate.sh: no such workload file: $w" >&2; exit 2; }
done
if [[ -z "$bin" ]]; then
    cargo build --release -p switchyard-sim -p switchyard-backend -p switchyard-report
    bin=target/release
fi
for b in sim replay plot; do
    [[ -x "$bin/$b" ]] || { echo "validate.sh: $bin/$b is missing" >&2; exit 2; }
done
mkdir -p "$out"

if [[ -z "$profile" ]]; then
    # Every architecture the workloads name, once.
    archs=$(grep -h '^ *- *arch:' "${workloads[@]}" | sed 's/.*arch: *//; s/ *#.*//' | sort -u | paste -sd, -)
    profile="$out/profile.yaml"
    echo "== calibrate ($archs; batches $batches)"
    "$bin/replay" calibrate --device "$device" --out "$profile" --arch "$archs" \
        --batches "$batches" --name validation 2>&1 | tee "$out/calibrate.txt"
fi

status=0
rows=()
for w in "${workloads[@]}"; do
    name=$(basename "$w" .yaml)
    dir="$out/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo "== $name: sim"
    "$bin/sim" --workload "$w" --hardware "$profile" "${system[@]}" --out "$dir/sim" 2>&1 | tee "$dir/sim.txt"
    echo "== $name: replay on $device"
    if ! "$bin/replay" --workload "$w" --hardware "$profile" --device "$device" "${system[@]}" \
        --schedule "$dir/sim/schedule.csv" --out "$dir/replay" >"$dir/replay.txt" 2>&1; then
        cat "$dir/replay.txt"
        reason=$(grep -m1 '^error' "$dir/replay.txt" | cut -c1-160 | tr '|' '/')
        rows+=("| $name | replay failed: ${reason:-see replay.txt} |$(printf ' |%.0s' {1..9})")
        status=1
        continue
    fi
    cat "$dir/replay.txt"
    echo "== $name: compare"
    "$bin/plot" compare "$dir/replay" "$dir/sim" --labels hardware,sim --join \
        --title "$name: simulated against measured" --out "$dir/compare" | tee "$dir/compare.txt"
    # table.csv: header, the hardware row, the sim row (errors against hardware).
    hw=$(sed -n 2p "$dir/compare/table.csv")
    sm=$(sed -n 3p "$dir/compare/table.csv")
    late=$(grep -o '"late_dispatches": *[0-9]*' "$dir/replay/summary.json" | grep -o '[0-9]*$')
    n=$(echo "$hw" | cut -d, -f3)
    rows+=("$(awk -F, -v h="$hw" -v s="$sm" -v name="$name" -v late="$late" -v n="$n" 'BEGIN {
        split(h, a, ","); split(s, b, ",");
        printf "| %s | %d | %.2f | %.2f | %+.1f%% | %.2f | %.2f | %+.1f%% | %.4f | %.3f | %d |",
            name, n, a[5], b[5], 100 * b[11], a[7], b[7], 100 * b[13], b[14], b[15], late }')")
done

{
    echo "| workload | requests | p50 hw ms | p50 sim ms | p50 err | p99 hw ms | p99 sim ms | p99 err | KS | mean abs err ms | late dispatches |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    printf '%s\n' "${rows[@]}"
} >"$out/summary.md"
echo "== summary ($out/summary.md)"
cat "$out/summary.md"
exit $status
