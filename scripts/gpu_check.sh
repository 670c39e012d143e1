#!/usr/bin/env bash
# What a borrowed GPU must run, in stages of under ten minutes each (one
# `device` command per stage; device time is scarce). The device tool
# brings back at most 8 files from at most two folders down, so each
# stage's tables go flat into OUT and its whole run folder (per-request
# CSVs, summaries, timelines; no SVGs) into one OUT/STAGE-runs.tar.xz;
# commit what matters to results/.
#
# usage: scripts/gpu_check.sh --bin DIR --out OUT [--profile P] STAGE
#   --bin      folder with sim, replay and plot (built here, carried there),
#              and optionally tests/ holding backend test binaries
#              (`cargo test --release -p switchyard-backend --no-run`:
#              forward-*, parallel-*, direct_host_cpu-*, copied by name)
#   --out      output folder (created)
#   --profile  a calibrated profile for the validation stages (else each
#              stage calibrates the architectures of its workloads)
# stages (machine in brackets):
#   check     [nvidia-h200] machine facts, `replay selftest --device cuda`
#             (fp16, fp32, bf16, graphs, direct host), backend GPU tests
#   tune      [nvidia-h200] calibrate every one-GPU architecture into
#             OUT/profile.yaml, validate the tune half (--floor off)
#   holdout   [nvidia-h200] validate the one-GPU holdout half with --floor
#             (give --profile: the tune stage's)
#   pin       [nvidia-h200] resident_trace and onoff_per_model replayed
#             twice with --pin-cpus off and twice with auto, then
#             scripts/warm_wander.py and scripts/host_stalls.py over them
#   idle      [nvidia-h200] tune workloads onoff_lfu and stop_and_start
#             validated with --idle sleep (calibrating unless --profile),
#             then replayed again under the same profile with --idle spin,
#             and with --idle sleep --pin-cpus 2 (one CPU): does a host
#             thread that never sleeps, or that wakes on the CPU it slept
#             on, issue warm passes as fast as calibration timed them?
#   two       [nvidia-h200-x2] backend parallel tests, `replay calibrate
#             --tp 2`, validate computron_tp2, resident_pp2, two_gpus
set -euo pipefail
bin=""; out=""; profile=""; stage=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        -*) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) stage="$1"; shift ;;
    esac
done
[[ -n "$bin" && -n "$out" && -n "$stage" ]] || { echo "gpu_check.sh: --bin, --out and a stage are required (see --help)" >&2; exit 2; }
for b in sim replay plot; do
    [[ -x "$bin/$b" ]] || { echo "gpu_check.sh: $bin/$b is missing" >&2; exit 2; }
done
mkdir -p "$out"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
prof=(); [[ -n "$profile" ]] && prof=(--profile "$profile")
one_tune=(experiments/validation/tune/{round_robin,bursty,poisson,onoff_lfu,stop_and_start}.yaml)
one_holdout=(experiments/validation/holdout/{gamma_lfu_mixed,onoff_per_model,stop_and_start_gamma,streaming,resident_trace,round_robin_belady}.yaml)

# Copies a validation run's per-workload tables flat into OUT (validate.sh
# writes OUT/run/<workload>/...; only a few levels come back).
flatten() {
    local run=$1 tag=$2
    cp "$run/summary.md" "$out/$tag-summary.md" 2>/dev/null || true
    cp "$run/calibrate.txt" "$out/$tag-calibrate.txt" 2>/dev/null || true
    cp "$run/profile.yaml" "$out/$tag-profile.yaml" 2>/dev/null || true
}

case "$stage" in
    check)
        { nvidia-smi --query-gpu=name,memory.total,driver_version,pcie.link.gen.max,pcie.link.width.max --format=csv || true
          nvidia-smi topo -m || true
          lscpu | head -20 || true; nproc; } > "$out/machine.txt" 2>&1
        "$bin/replay" selftest --device cuda > "$out/selftest.txt" 2>&1 || echo "selftest failed: see selftest.txt"
        if [[ -d "$bin/tests" ]]; then
            for t in "$bin"/tests/*; do
                echo "== $(basename "$t")"
                "$t" --test-threads 1 2>&1 | tail -n 25 || echo "FAILED: $(basename "$t")"
            done > "$out/tests.txt"
        fi
        ;;
    tune)
        scripts/validate.sh --bin "$bin" --out "$out/tune" "${prof[@]}" "${one_tune[@]}" > "$out/tune-log.txt" 2>&1 || true
        flatten "$out/tune" tune
        ;;
    holdout)
        scripts/validate.sh --bin "$bin" --out "$out/holdout" --floor "${prof[@]}" "${one_holdout[@]}" > "$out/holdout-log.txt" 2>&1 || true
        flatten "$out/holdout" holdout
        ;;
    pin)
        two=(experiments/validation/holdout/{resident_trace,onoff_per_model}.yaml)
        for pin in off auto; do
            scripts/validate.sh --bin "$bin" --out "$out/pin-$pin" --floor --pin-cpus "$pin" "${prof[@]}" "${two[@]}" > "$out/pin-$pin-log.txt" 2>&1 || true
            flatten "$out/pin-$pin" "pin-$pin"
        done
        python3 scripts/warm_wander.py "$out"/pin-off/{resident_trace,onoff_per_model} "$out"/pin-auto/{resident_trace,onoff_per_model} > "$out/pin-wander.md" 2>&1 || true
        python3 scripts/host_stalls.py "$out"/pin-*/*/replay "$out"/pin-*/*/replay2 > "$out/pin-stalls.txt" 2>&1 || true
        ;;
    idle)
        two=(experiments/validation/tune/{onoff_lfu,stop_and_start}.yaml)
        scripts/validate.sh --bin "$bin" --out "$out/idle-sleep" --idle sleep "${prof[@]}" "${two[@]}" > "$out/idle-sleep-log.txt" 2>&1 || true
        flatten "$out/idle-sleep" idle-sleep
        p="${profile:-$out/idle-sleep/profile.yaml}"
        scripts/validate.sh --bin "$bin" --out "$out/idle-spin" --idle spin --profile "$p" "${two[@]}" > "$out/idle-spin-log.txt" 2>&1 || true
        flatten "$out/idle-spin" idle-spin
        # One CPU: a thread that sleeps wakes where it slept.
        scripts/validate.sh --bin "$bin" --out "$out/idle-one" --idle sleep --pin-cpus 2 --profile "$p" "${two[@]}" > "$out/idle-one-log.txt" 2>&1 || true
        flatten "$out/idle-one" idle-one
        python3 scripts/warm_wander.py --profile "$p" "$out"/idle-{sleep,spin,one}/{onoff_lfu,stop_and_start} > "$out/idle-wander.md" 2>&1 || true
        ;;
    two)
        if [[ -d "$bin/tests" ]]; then
            for t in "$bin"/tests/parallel-*; do
                [[ -x "$t" ]] && "$t" --test-threads 1 2>&1 | tail -n 25
            done > "$out/two-tests.txt" || true
        fi
        scripts/validate.sh --bin "$bin" --out "$out/two" --floor "${prof[@]}" \
            experiments/validation/holdout/{computron_tp2,resident_pp2}.yaml experiments/validation/tune/two_gpus.yaml \
            > "$out/two-log.txt" 2>&1 || true
        flatten "$out/two" two
        ;;
    *) echo "gpu_check.sh: unknown stage $stage (check, tune, holdout, pin, idle, two)" >&2; exit 2 ;;
esac
# The stage's nested run folders, packed into one file that comes back.
runs=()
for d in "$out"/tune "$out"/holdout "$out"/pin-off "$out"/pin-auto "$out"/idle-sleep "$out"/idle-spin "$out"/idle-one "$out"/two; do
    [[ -d "$d" ]] && runs+=("$(basename "$d")")
done
if [[ ${#runs[@]} -gt 0 ]]; then
    tar cJf "$out/$stage-runs.tar.xz" -C "$out" --exclude='*.svg' "${runs[@]}" || echo "gpu_check.sh: packing ${runs[*]} failed" >&2
fi
ls "$out"
