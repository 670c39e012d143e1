#!/usr/bin/env bash
# Re-simulates the two stop-and-start validation workloads with a measured
# profile whose pageable beta is replaced by each rate given, printing
# simulated p50/p90/p99 (ms) beside nothing else: the hardware's figures are
# in the summary.md of the run that made the profile.
#
# usage: scripts/resim_pageable.sh PROFILE.yaml GBPS [GBPS ...]
# e.g.   scripts/resim_pageable.sh results/validation/h200_pageable/profile.yaml 5.67 6.91 8.99
set -euo pipefail
profile=$1; shift
bin=${BIN:-target/release}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "pageable_gbps,workload,p50_ms,p90_ms,p99_ms"
for gbps in "$@"; do
    sed "/^  pageable:/,/beta/ s/beta_gbps: .*/beta_gbps: $gbps/" "$profile" > "$tmp/p.yaml"
    for w in experiments/validation/tune/stop_and_start.yaml experiments/validation/holdout/stop_and_start_gamma.yaml; do
        name=$(basename "$w" .yaml)
        "$bin/sim" -w "$w" --hardware "$tmp/p.yaml" --out "$tmp/$name" --no-timeline >/dev/null 2>&1
        python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(','.join([sys.argv[2], sys.argv[3]] + ['%.2f' % (s[k]*1e3) for k in ('p50_s','p90_s','p99_s')]))" "$tmp/$name/summary.json" "$gbps" "$name"
    done
done
