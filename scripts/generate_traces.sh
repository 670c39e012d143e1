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
# The trace of experiments/validation/holdout/resident_trace.yaml: bursty
# Gamma arrivals (rate 38/s, CV 2.5, Zipf 0.7 over its five models) for 30 s,
# written by a workload that differs from the one replaying it only in its
# arrivals, so the validation replays a trace it did not generate.
sed -e 's/^name: .*/name: validation-trace-source/' -e 's/^seed: .*/seed: 9205/' \
    -e '/^arrivals:/,$d' experiments/validation/holdout/resident_trace.yaml > "$tmp/source.yaml"
printf 'arrivals:\n  process: gamma\n  rate: 38\n  cv: 2.5\n  skew: { zipf: 0.7 }\npolicy:\n  system: resident\n' >> "$tmp/source.yaml"
./target/release/sim --workload "$tmp/source.yaml" --out "$tmp/source" --schedule-only
awk -F, 'NR == 1 { print "arrival_s,model"; next } { print $2 "," $3 }' \
  "$tmp/source/schedule.csv" > traces/validation_trace.csv
rm -rf "$tmp"
