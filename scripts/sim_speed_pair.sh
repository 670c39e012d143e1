#!/usr/bin/env bash
# Two `sim` binaries timed on the scale bench's workloads (scripts/sim_scale.sh),
# interleaved (old, new, old, new, ...) so that both see the same machine:
# the fair comparison on a shared machine whose speed drifts between runs.
# Reports the CPU seconds (user + system) of each binary, min and mean over
# ROUNDS rounds, and the ratio of the mins.
#
#   bash scripts/sim_speed_pair.sh OLD_SIM NEW_SIM [ROWS]
#
# ROWS (default "m10k t1e6 t1e7"): m10k = 1e6 requests over 10,000 models
# on 8 GPUs; t1e6, t1e7, t3e7, t1e8 = 1e6, 1e7, 3e7, 1e8 requests over
# 100,000 models on 1,024 GPUs (the issue's target row); w10k = 1e6 over
# 10,000 models on 1,024 GPUs and m100k = 1e6 over 100,000 on 8 (which
# of models and GPUs sets the cost; one binary: pass it as both). ROUNDS (env,
# default 3; 1 for t3e7 and t1e8); SIM_FLAGS (env) more flags for both
# binaries, e.g. "--exact-quantiles 100000"; NEW_FLAGS (env) more flags
# for the new binary only (one binary with and without a flag: pass it as
# both, e.g. NEW_FLAGS=--no-requests-csv); EVICTION (env, default lru)
# the workload's eviction policy; LAYER_MB (env, default 10) its layers'
# size (1: about 500 resident models per GPU instead of 50). Output: a markdown table, with
# each binary's largest peak resident memory over the rounds.
set -euo pipefail
old=${1:?usage: sim_speed_pair.sh OLD_SIM NEW_SIM [ROWS]}
new=${2:?usage: sim_speed_pair.sh OLD_SIM NEW_SIM [ROWS]}
rows=${3:-m10k t1e6 t1e7}
for b in "$old" "$new"; do
    [ -x "$b" ] || { echo "sim_speed_pair.sh: $b is not an executable" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "sim_speed_pair.sh: needs /usr/bin/time" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sim_pair.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# workload REQUESTS MODELS GPUS > file: the scale bench's workload.
workload() {
    local rate=$((1000 * $3))
    cat <<EOF
name: scale
seed: 1
duration_s: $(awk -v r="$1" -v q="$rate" 'BEGIN { printf "%.6f", r / q }')
cluster: { hardware: h200-pcie5, gpus: $3, gpu_memory_gib: 6 }
models:
  - { name: m, copies: $2, layers: 4, layer_mb: ${LAYER_MB:-10}, layer_ms: 0.05, max_batch: 8, slo_ms: 100 }
arrivals: { process: poisson, rate: $rate, skew: { zipf: 0.5 } }
policy: { system: computron, eviction: ${EVICTION:-lru} }
EOF
}

# cpu BIN WORKLOAD REQUESTS [FLAGS]: CPU seconds and peak RSS (MiB) of one run.
cpu() {
    rm -rf "$tmp/run"
    /usr/bin/time -f "%U %S %M" -o "$tmp/t" "$1" -w "$2" -o "$tmp/run" --no-timeline \
        --max-requests $(($3 * 2)) ${SIM_FLAGS:-} ${4:-} > /dev/null 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    awk '{ printf "%.2f %.0f\n", $1 + $2, $3 / 1024 }' "$tmp/t"
}

echo "| row | rounds | old CPU s min / mean | new CPU s min / mean | old / new (mins) | old / new peak RSS MiB |"
echo "|---|--:|--:|--:|--:|--:|"
for row in $rows; do
    case $row in
    m10k) req=1000000 models=10000 gpus=8 ;;
    w10k) req=1000000 models=10000 gpus=1024 ;;
    m100k) req=1000000 models=100000 gpus=8 ;;
    t1e6) req=1000000 models=100000 gpus=1024 ;;
    t1e7) req=10000000 models=100000 gpus=1024 ;;
    t3e7) req=30000000 models=100000 gpus=1024 ;;
    t1e8) req=100000000 models=100000 gpus=1024 ;;
    *) echo "sim_speed_pair.sh: unknown row $row" >&2; exit 2 ;;
    esac
    rounds=${ROUNDS:-3}
    case $row in t3e7 | t1e8) rounds=${ROUNDS:-1} ;; esac
    workload "$req" "$models" "$gpus" > "$tmp/w.yaml"
    : > "$tmp/old"; : > "$tmp/new"
    for _ in $(seq "$rounds"); do
        cpu "$old" "$tmp/w.yaml" "$req" >> "$tmp/old"
        cpu "$new" "$tmp/w.yaml" "$req" "${NEW_FLAGS:-}" >> "$tmp/new"
    done
    # stats FILE: min and mean CPU s, max peak RSS.
    stats() { sort -n "$1" | awk '{ s += $1; if (NR == 1) m = $1; if ($2 > r) r = $2 } END { printf "%.2f %.2f %d", m, s / NR, r }'; }
    read -r om oa orss <<< "$(stats "$tmp/old")"
    read -r nm na nrss <<< "$(stats "$tmp/new")"
    echo "| $row ($req requests, $models models, $gpus GPUs) | $rounds | $om / $oa | $nm / $na | $(awk -v a="$om" -v b="$nm" 'BEGIN { printf "%.2fx", a / b }') | $orss / $nrss |"
done
