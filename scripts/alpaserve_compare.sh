#!/usr/bin/env bash
# Speed of `sim` against AlpaServe's two simulators (github.com/alpa-projects/mms:
# `simulate_one_case`, its discrete-event loop, and `approximate_one_case`,
# its numba approximation) on one matched workload: 100 models resident on
# 8 GPUs (AlpaServe: 8 groups of one GPU, models dealt round robin; sim:
# `resident`, which places them the same way), each served at batch 1 in
# 0.2 ms (sim: 4 layers of 0.05 ms), per-model Gamma arrivals (CV 2) at
# RATE requests/s in all, SLO 100 ms. Each size is run REPEATS times per
# simulator and the median wall time kept; every run is pinned to one core
# (taskset -c 0, when there is taskset) with one numba/BLAS thread.
#
#   bash scripts/alpaserve_compare.sh MMS_CHECKOUT [OUT.md]   (default results/alpaserve_compare.md)
#
# MMS_CHECKOUT is a work tree of alpa-projects/mms; nothing of it is copied
# into this repository. Getting one without general network: the session's
# `fetch` tool (github:alpa-projects/mms) leaves a git mirror under
# /work/.mirror/alpa-projects+mms/repo; `git clone /work/.mirror/alpa-projects+mms/repo /tmp/mms`.
# Its Python deps (AlpaServe imports ray, fastapi, uvicorn and matplotlib
# at module level; its event loop needs Python <= 3.10, as 3.11's
# asyncio.wait refuses bare coroutines):
#   python3.10 -m venv /tmp/alpa-venv310
#   /tmp/alpa-venv310/bin/pip install numpy numba ray fastapi starlette uvicorn matplotlib scipy
#   PYTHON=/tmp/alpa-venv310/bin/python bash scripts/alpaserve_compare.sh /tmp/mms
#
# Environment: PYTHON (default python3), REPEATS (default 5), SIZES
# (requests, default "100000 1000000"), EVENT_LOOP_REPEATS (repeats of the
# event loop, default REPEATS: it is the slow one), EVENT_LOOP_MAX (the
# largest size the event loop runs, default: all; larger ones say "not
# run"), RATE (default 8000),
# SIM (a built sim binary; default: build target/release/sim).
set -euo pipefail
cd "$(dirname "$0")/.."
mms=${1:?usage: alpaserve_compare.sh MMS_CHECKOUT [OUT.md]}
out=${2:-results/alpaserve_compare.md}
py=${PYTHON:-python3}
repeats=${REPEATS:-5}
el_repeats=${EVENT_LOOP_REPEATS:-$repeats}
el_max=${EVENT_LOOP_MAX:-0}
sizes=${SIZES:-100000 1000000}
rate=${RATE:-8000}
models=100 gpus=8 cv=2 latency_s=0.0002 slo_s=0.1
[ -d "$mms/alpa_serve/simulator" ] || { echo "$mms: not an alpa-projects/mms checkout" >&2; exit 2; }
if [ -z "${SIM:-}" ]; then
    cargo build --release -p switchyard-sim --bin sim --quiet
    sim=target/release/sim
else
    sim=$SIM
fi
pin=()
command -v taskset > /dev/null && pin=(taskset -c 0)
export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/alpaserve_compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

rows=()
infos=()
for n in $sizes; do
    dur=$(awk -v n="$n" -v r="$rate" 'BEGIN { printf "%.6f", n / r }')
    cat > "$tmp/w.yaml" <<YAML
name: alpaserve_match
seed: 1
duration_s: $dur
cluster: { hardware: h200-pcie5, gpus: $gpus, gpu_memory_gib: 80 }
models:
  - { name: m, copies: $models, layers: 4, layer_mb: 10, layer_ms: 0.05, max_batch: 1, slo_ms: 100 }
arrivals: { process: gamma, rate: $rate, cv: $cv, per_model: true }
policy: { system: resident }
YAML
    : > "$tmp/sim"
    for _ in $(seq "$repeats"); do
        rm -rf "$tmp/run"
        t0=$(date +%s.%N)
        "${pin[@]}" "$sim" -w "$tmp/w.yaml" -o "$tmp/run" --no-timeline --max-requests $((n * 2)) > /dev/null 2>&1
        t1=$(date +%s.%N)
        echo "$t1 - $t0" | bc >> "$tmp/sim"
    done
    sim_req=$(grep -m1 '"requests"' "$tmp/run/summary.json" | tr -dc 0-9)
    json_value() { grep -m1 "\"$1\"" "$tmp/run/summary.json" | awk -F': ' '{ gsub(/[ ,]/, "", $2); print $2 }'; }
    sim_mean=$(json_value mean_s)
    sim_slo=$(json_value slo_attainment)
    sim_s=$(median < "$tmp/sim")
    event_loop_s=nan event_loop_info="not run (EVENT_LOOP_MAX=$el_max)"
    for mode in numba event_loop; do
        k=$repeats
        if [ "$mode" = event_loop ]; then
            k=$el_repeats
            [ "$el_max" -gt 0 ] && [ "$n" -gt "$el_max" ] && continue
        fi
        : > "$tmp/$mode"
        for _ in $(seq "$k"); do
            "${pin[@]}" "$py" scripts/alpaserve_compare.py "$mms" "$mode" "$models" "$gpus" "$rate" "$cv" "$dur" "$latency_s" "$slo_s" > "$tmp/line" 2> "$tmp/err" \
                || { tail -5 "$tmp/err" >&2; echo "AlpaServe's $mode failed (above)" >&2; exit 1; }
            cut -d' ' -f1 "$tmp/line" >> "$tmp/$mode"
        done
        read -r _ req good mean < "$tmp/line"
        printf -v "${mode}_s" '%s' "$(median < "$tmp/$mode")"
        printf -v "${mode}_info" '%s requests, goodput %s, mean latency %s s (%s runs)' "$req" "$good" "$mean" "$k"
    done
    line="$n,$sim_req,$sim_s,$numba_s,$event_loop_s"
    echo "$line" >&2
    rows+=("$line")
    infos+=("- $n requests: sim $sim_req requests, SLO attainment $sim_slo, mean latency $sim_mean s ($repeats runs); AlpaServe numba: $numba_info; AlpaServe event loop: $event_loop_info")
done

{
    echo "# sim against AlpaServe's simulators (\`scripts/alpaserve_compare.sh\`)"
    echo
    echo "Command: \`$(printf '%s ' ${PYTHON:+PYTHON=$PYTHON} ${REPEATS:+REPEATS=$REPEATS} ${EVENT_LOOP_REPEATS:+EVENT_LOOP_REPEATS=$EVENT_LOOP_REPEATS} ${EVENT_LOOP_MAX:+EVENT_LOOP_MAX=$EVENT_LOOP_MAX} ${SIZES:+SIZES=\"$SIZES\"} ${RATE:+RATE=$RATE} bash scripts/alpaserve_compare.sh "$mms" "$out" | sed 's/ $//')\`"
    echo "(sim: $(git describe --always --dirty); AlpaServe: alpa-projects/mms $(git -C "$mms" rev-parse --short HEAD); $("$py" --version 2>&1))."
    echo
    echo "Machine: $(nproc --all)-vCPU $(uname -s) $(uname -r), \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\","
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Every run on one core (${pin[*]:-not pinned: no taskset}), one numba thread."
    echo
    echo "Workload: $models models resident on $gpus GPUs, batch 1, 0.2 ms a request, per-model Gamma arrivals (CV $cv)"
    echo "at $rate requests/s in all, SLO 100 ms. Wall time, median of the runs: sim end to end (parse, generate,"
    echo "simulate, write schedule.csv, requests.csv, summary.json); AlpaServe's \`simulate_one_case\` (event loop) and"
    echo "\`approximate_one_case\` (numba; compiled by an untimed first call) each with its workload generation, as its own"
    echo "benchmarks time them."
    echo
    echo "| requests | sim s | AlpaServe numba s | AlpaServe event loop s | event loop / sim | numba / sim |"
    echo "|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}" | awk -F, '{
        el = ($5 == "nan") ? "not run" : sprintf("%.2f", $5)
        ratio = ($5 == "nan") ? "-" : sprintf("%.0fx", $5 / $3)
        printf "| %d | %.3f | %.3f | %s | %s | %.1fx |\n", $1, $3, $4, el, ratio, $4 / $3 }'
    echo
    echo "What each served (the same workload drawn by each one's own generator):"
    echo
    printf '%s\n' "${infos[@]}"
} > "$tmp/out.md"
mkdir -p "$(dirname "$out")"
mv "$tmp/out.md" "$out"
echo "wrote $out" >&2
