#!/usr/bin/env bash
# PipeSwitch's preemption case measured: a training job (102 ms iterations,
# real GEMMs) preempted at an iteration boundary by ResNet-152 requests,
# simulated and replayed on the same schedule and hardware profile; prints
# the job's iterations, rate and GPU share from both summaries and the
# requests' mean latency. Replay runs fp16 weights only, so this is the
# fp16 variant (experiments/papers/pipeswitch_replay/preempt_training_fp16.yaml).
#
# usage: scripts/papers_preempt_replay.sh [--bin DIR] [--out DIR]
#                                         [--hardware PROFILE] [--device cuda|cpu]
#   --bin       folder holding `sim` and `replay` (default: cargo build --release)
#   --out       output folder (default results/papers/pipeswitch/preempt_replay)
#   --hardware  profile both clocks use (default h200-pcie5)
#   --device    replay's device (default cuda; cpu is very slow for ResNet-152)
set -euo pipefail

bin=""
out=results/papers/pipeswitch/preempt_replay
hardware=h200-pcie5
device=cuda
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --hardware) hardware="$2"; shift 2 ;;
        --device) device="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "papers_preempt_replay.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
if [[ -z "$bin" ]]; then
    cargo build --release -q -p switchyard-sim -p switchyard-backend
    bin=target/release
fi
w=experiments/papers/pipeswitch_replay/preempt_training_fp16.yaml
mkdir -p "$out"
"$bin/sim" -w "$w" --hardware "$hardware" -o "$out/sim" >"$out/sim.log" 2>&1
"$bin/replay" -w "$w" --hardware "$hardware" --schedule "$out/sim/schedule.csv" \
    --device "$device" -o "$out/replay" >"$out/replay.log" 2>&1
rm -f "$out"/*/latency_cdf.svg "$out"/*/latency_cdf.png
{
    echo "machine: $(nproc) vCPU, $(uname -m), replay on $device; $(nvidia-smi -L 2>/dev/null | head -1 || true)"
    echo "command: scripts/papers_preempt_replay.sh --out $out --hardware $hardware --device $device"
} >"$out/machine.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("clock | iterations | iterations/s | share | mean latency ms")
for clock in ("sim", "replay"):
    s = json.load(open(f"{out}/{clock}/summary.json"))
    b = s["background"][0]
    print(f"{clock} | {b['iterations']} | {b['iterations_per_s']:.3f} | {b['share']:.4f} | {s['mean_s'] * 1e3:.2f}")
PY
