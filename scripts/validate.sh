#!/usr/bin/env bash
# Validation: the simulator against the hardware, on the same schedules.
#
# For each workload: calibrate the machine once (`replay calibrate`), then
# `sim` with the calibrated profile (which also writes the schedule),
# `replay` of that very schedule on the device, and `plot compare` of the
# two (hardware first, so errors are the simulator's against it). Ends with
# summary.md: per workload, measured and simulated p50/p99, their relative
# errors, the KS distance and the replay's late dispatches; and with
# cold_warm.md: per workload and model, the median hardware and simulated
# latency of cold and of warm requests (scripts/cold_warm_split.py), where
# a miss's cause is read first.
#
# usage: scripts/validate.sh [--device cuda|cpu] [--bin DIR] [--out DIR]
#                            [--profile FILE] [--batches LIST] [--floor]
#                            [--graphs on|off] [--pin-cpus off|auto|LIST]
#                            [--idle sleep|spin]
#                            [WORKLOAD.yaml | DIR ...]
#   --device   replay device (default cuda)
#   --bin      folder holding sim, replay and plot (default: build them with
#              cargo into target/release)
#   --out      output folder (default out/validation)
#   --profile  use this hardware profile (a file or a preset) instead of calibrating
#   --batches  batch sizes to calibrate (default 1,2,3,4,5,6,7,8)
#   --system   serve every workload with this system (sim and replay alike)
#              instead of its `policy.system`
#   --graphs   on|off: calibrate and replay warm passes through CUDA graphs
#              (default off)
#   --pin-cpus off|auto|LIST: where calibrate's and replay's host thread
#              runs (default off; see `replay --help`)
#   --idle     sleep|spin: how calibrate's idle gaps and replay's host
#              thread wait with nothing in flight (default sleep; see
#              `replay --help`)
#   --floor    replay each schedule a second time and compare the two
#              hardware runs (the noise floor), in summary.md
#   workloads  files, or folders meaning their *.yaml; default: both halves,
#              experiments/validation/tune and experiments/validation/holdout.
#              summary.md names each workload's half (its folder's name).
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
floor=0
graphs=off
pin=off
idle=sleep
workloads=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --batches) batches="$2"; shift 2 ;;
        --system) system=(--system "$2"); shift 2 ;;
        --floor) floor=1; shift ;;
        --graphs) graphs="$2"; shift 2 ;;
        --pin-cpus) pin="$2"; shift 2 ;;
        --idle) idle="$2"; shift 2 ;;
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
        -*) echo "validate.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
            if [[ -d "$1" ]]; then
                workloads+=("$1"/*.yaml)
            else
                workloads+=("$1")
            fi
            shift ;;
    esac
done
if [[ ${#workloads[@]} -eq 0 ]]; then
    workloads=(experiments/validation/tune/*.yaml experiments/validation/holdout/*.yaml)
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
    # Every tensor-parallel degree above 1 (`tp: N`), timed on N GPUs.
    tps=$({ grep -ho 'tp: *[0-9]*' "${workloads[@]}" || true; } | sed 's/tp: *//' | awk '$1 > 1' | sort -un | paste -sd, -)
    profile="$out/profile.yaml"
    echo "== calibrate ($archs; batches $batches${tps:+; tp $tps})"
    "$bin/replay" calibrate --device "$device" --out "$profile" --arch "$archs" \
        --batches "$batches" ${tps:+--tp "$tps"} --graphs "$graphs" --pin-cpus "$pin" --idle "$idle" --name validation 2>&1 | tee "$out/calibrate.txt"
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
    if ! "$bin/replay" --workload "$w" --hardware "$profile" --device "$device" --graphs "$graphs" --pin-cpus "$pin" --idle "$idle" "${system[@]}" \
        --schedule "$dir/sim/schedule.csv" --out "$dir/replay" >"$dir/replay.txt" 2>&1; then
        cat "$dir/replay.txt"
        reason=$(grep -m1 '^error' "$dir/replay.txt" | cut -c1-160 | tr '|' '/')
        rows+=("| $name | $(basename "$(dirname "$w")") | replay failed: ${reason:-see replay.txt} |$(printf ' |%.0s' {1..11})")
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
    delay=$(grep -o '"mean_dispatch_delay_s": *[0-9.e-]*' "$dir/replay/summary.json" | grep -o '[0-9.e-]*$')
    half=$(basename "$(dirname "$w")")
    floor_cols="| | |"
    if [[ $floor -eq 1 ]]; then
        echo "== $name: replay again (noise floor)"
        if "$bin/replay" --workload "$w" --hardware "$profile" --device "$device" --graphs "$graphs" --pin-cpus "$pin" --idle "$idle" "${system[@]}" \
            --schedule "$dir/sim/schedule.csv" --out "$dir/replay2" >"$dir/replay2.txt" 2>&1; then
            "$bin/plot" compare "$dir/replay" "$dir/replay2" --labels hardware,hardware2 --join \
                --title "$name: hardware against itself" --out "$dir/floor" >"$dir/floor.txt"
            f=$(sed -n 3p "$dir/floor/table.csv")
            floor_cols=$(awk -v f="$f" 'BEGIN { split(f, c, ",");
                printf "| %+.1f%% / %+.1f%% / %+.1f%% | %.4f |", 100 * c[11], 100 * c[12], 100 * c[13], c[14] }')
        else
            floor_cols="| replay failed | |"
        fi
    fi
    rows+=("$(awk -v h="$hw" -v s="$sm" -v name="$name" -v half="$half" -v late="$late" -v delay="$delay" -v fl="$floor_cols" 'BEGIN {
        split(h, a, ","); split(s, b, ",");
        printf "| %s | %s | %d | %.2f | %+.1f%% | %.2f | %+.1f%% | %.2f | %+.1f%% | %.4f | %.3f | %d (%.1f%%), mean %.0f us %s",
            name, half, a[3], a[5], 100 * b[11], a[6], 100 * b[12], a[7], 100 * b[13], b[14], b[15],
            late, 100 * late / a[3], 1e6 * delay, fl }')")
done

{
    echo "| workload | half | requests | p50 hw ms | p50 err | p90 hw ms | p90 err | p99 hw ms | p99 err | KS | mean abs err ms | late dispatches (>1 ms), mean delay | hw vs hw p50 / p90 / p99 | hw vs hw KS |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    printf '%s\n' "${rows[@]}"
} >"$out/summary.md"
echo "== summary ($out/summary.md)"
cat "$out/summary.md"
compared=()
for d in "$out"/*/; do
    [[ -f "$d/replay/requests.csv" && -f "$d/sim/requests.csv" ]] && compared+=("${d%/}")
done
if [[ ${#compared[@]} -gt 0 ]]; then
    python3 "$(dirname "$0")/cold_warm_split.py" "${compared[@]}" >"$out/cold_warm.md" ||
        echo "validate.sh: cold_warm_split.py failed; summary.md stands" >&2
fi
exit $status
