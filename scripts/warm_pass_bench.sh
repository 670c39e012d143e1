#!/usr/bin/env bash
# Warm forward passes: replay's executor beside PyTorch (eager and
# CUDA-graphed), same GPU, same run, same shapes (128 tokens per request).
#
# Replay's times come from `replay passes`: each warm pass issued as the
# executor issues it, layer by layer (a layer per step, an event poll
# between) and through a graph (the embedding's launches, then one graph
# launch); median GPU time of a pass from an event before its first launch
# to one after its output copy, and median host time to issue it. PyTorch's
# come from scripts/torch_reference.py. `replay selftest` checks every pass
# way against the f32 reference first. With --workload, a short replay of
# that workload's schedule (its first --requests requests) shows the host
# path of a real run (summary.json's host_path: layer steps vs graph steps).
#
# usage: scripts/warm_pass_bench.sh [--bin DIR] [--out DIR] [--arch LIST] [--batches LIST]
#                                   [--reps N] [--workload FILE] [--requests N]
# writes DIR/table.md, passes.csv, torch.csv, selftest.txt, machine.txt,
# bench.log and (with --workload) summary.json
set -euo pipefail
bin=target/release
out=results/warm_pass
arch=bert-base,gpt2,opt-1.3b,opt-2.7b
batches=1,8
reps=50
workload=""
requests=400
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --arch) arch="$2"; shift 2 ;;
        --batches) batches="$2"; shift 2 ;;
        --reps) reps="$2"; shift 2 ;;
        --workload) workload="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "warm_pass_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -x "$bin/replay" ]] || { echo "warm_pass_bench.sh: $bin/replay is missing" >&2; exit 2; }
mkdir -p "$out"
here="$(dirname "$0")"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/machine.txt" || true
python3 -c 'import torch; print("torch", torch.__version__)' >> "$out/machine.txt"
"$bin/replay" selftest --device cuda > "$out/selftest.txt" 2>&1
"$bin/replay" passes --device cuda --arch "$arch" --batches "$batches" --reps "$reps" \
    > "$out/passes.csv" 2>> "$out/bench.log"
python3 "$here/torch_reference.py" --arch "$arch" --batches "$batches" --reps "$reps" > "$out/torch.csv"
if [[ -n "$workload" ]]; then
    tmp=$(mktemp -d)
    "$bin/sim" --workload "$workload" --out "$tmp/sim" --schedule-only >> "$out/bench.log" 2>&1
    head -n $((requests + 1)) "$tmp/sim/schedule.csv" > "$tmp/schedule.csv"
    "$bin/replay" --workload "$workload" --schedule "$tmp/schedule.csv" --out "$tmp/replay" \
        >> "$out/bench.log" 2>&1
    cp "$tmp/replay/summary.json" "$out/summary.json"
fi
python3 - "$out/passes.csv" "$out/torch.csv" > "$out/table.md" <<'PY'
import csv, sys
ours = {(r["arch"], r["batch"]): r for r in csv.DictReader(open(sys.argv[1]))}
print("| arch | batch | replay layer by layer ms | replay graphs ms | PyTorch eager ms "
      "| PyTorch CUDA graph ms | graphs / PyTorch graph | issue us, layers | issue us, graph |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
for t in csv.DictReader(open(sys.argv[2])):
    o = ours[(t["arch"], t["batch"])]
    ratio = float(o["graph_ms"]) / float(t["graph_ms"])
    print(f"| {t['arch']} | {t['batch']} | {o['layers_ms']} | {o['graph_ms']} | {t['eager_ms']} "
          f"| {t['graph_ms']} | {ratio:.2f}x | {o['layers_issue_us']} | {o['graph_issue_us']} |")
PY
cat "$out/table.md"
