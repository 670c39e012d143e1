#!/usr/bin/env bash
# Regenerates the schedules bundled in traces/ from the workloads in experiments/.
#   bash scripts/generate_traces.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p switchyard-sim
tmp=$(mktemp -d)
for w in bursty worst_case poisson; do
  ./target/release/sim --workload "experiments/$w.yaml" --out "$tmp/$w" --schedule-only
  cp "$tmp/$w/schedule.csv" "traces/${w}_schedule.csv"
done
# A plain `arrival_s,model` trace (the trace-replay input format), cut from
# the first 60 s of the poisson schedule.
awk -F, 'NR == 1 { print "arrival_s,model"; next } $2 < 60 { print $2 "," $3 }' \
  traces/poisson_schedule.csv > traces/poisson_60s_trace.csv
rm -rf "$tmp"
