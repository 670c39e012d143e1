#!/usr/bin/env bash
# The real-trace study of results/traces/: every bundled real trace under every
# system (a100-pcie4, four GPUs, as its workload says), then sweeps of its rate
# scale: systems, PipeSwitch's layer grouping, and eviction policies.
#   bash scripts/trace_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p switchyard-sim
sim=./target/release/sim
rates=1,2,4,8,16
for t in code conv; do
  w=experiments/traces/azure_llm_$t.yaml
  out=results/traces/$t
  $sim -w $w -o $out/compare --compare-systems --log-x --no-timeline > /dev/null
  # Per-request files are large and the figures and tables hold what the README uses.
  rm -f $out/compare/*/requests.csv $out/compare/*/latency_cdf.* $out/compare/schedule.csv
  $sim sweep -w $w -o $out/systems --rate-scale $rates --system computron,pipeswitch,stop-and-start,streaming --seeds 3 --log-x
  $sim sweep -w $w -o $out/grouping --rate-scale $rates --system pipeswitch --grouping optimal,per_layer,one_group --seeds 3 --log-x
  $sim sweep -w $w -o $out/eviction --rate-scale $rates --system computron,pipeswitch --eviction lru,lfu,belady --seeds 3 --log-x
done
