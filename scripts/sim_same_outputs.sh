#!/usr/bin/env bash
# Checks that two `sim` binaries write byte-identical outputs (every file
# of the output folder, timeline and figures included: `diff -r`) on every
# workload under experiments/ (each capped at MAX_REQUESTS requests, default
# 20000) and on the scale bench's workload (scripts/sim_scale.sh) at 1e6
# requests over 1,000 and 100,000 models. Used before and after a speed
# change: the change must not alter any output.
#
#   bash scripts/sim_same_outputs.sh OLD_SIM NEW_SIM
#
# Exit status 0 when every output matches, 1 otherwise (the differing
# workloads are named on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
max=${MAX_REQUESTS:-20000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sim_same.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
bad=0
# run NAME WORKLOAD [ARGS...]: both binaries on one workload, outputs diffed
run() {
    local name=$1 w=$2
    shift 2
    "$old" -w "$w" -o "$tmp/old/$name" --max-requests "$max" "$@" > /dev/null 2> "$tmp/old.err" || { cat "$tmp/old.err" >&2; bad=1; return; }
    "$new" -w "$w" -o "$tmp/new/$name" --max-requests "$max" "$@" > /dev/null 2> "$tmp/new.err" || { cat "$tmp/new.err" >&2; bad=1; return; }
    if diff -r "$tmp/old/$name" "$tmp/new/$name" > /dev/null; then
        echo "same: $name" >&2
    else
        echo "DIFFERENT: $name ($w $*)" >&2
        bad=1
    fi
    rm -rf "$tmp/old/$name" "$tmp/new/$name"
}
n=0
while IFS= read -r w; do
    n=$((n + 1))
    run "e$n" "$w"
done < <(find experiments -name '*.yaml' | sort)
# The scale bench's workload (as scripts/sim_scale.sh writes it) at 1e6 requests.
scale() { # scale MODELS GPUS EVICTION
    cat > "$tmp/scale_$1_$3.yaml" <<YAML
name: scale
seed: 1
duration_s: $(awk -v g="$2" 'BEGIN { printf "%.6f", 1000000 / (1000 * g) }')
cluster: { hardware: h200-pcie5, gpus: $2, gpu_memory_gib: 6 }
models:
  - { name: m, copies: $1, layers: 4, layer_mb: 10, layer_ms: 0.05, max_batch: 8, slo_ms: 100 }
arrivals: { process: poisson, rate: $((1000 * $2)), skew: { zipf: 0.5 } }
policy: { system: computron, eviction: $3 }
YAML
    max=2000000 run "scale_$1_$3" "$tmp/scale_$1_$3.yaml" --no-timeline
}
scale 1000 8 lru
scale 1000 8 belady
scale 100000 1024 lru
# Past the exact-quantile cap: percentiles from the sketches.
max=2000000 run scale_sketched "$tmp/scale_1000_lru.yaml" --no-timeline --exact-quantiles 100000
exit $bad
