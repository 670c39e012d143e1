#!/usr/bin/env bash
# Warm forward passes: replay's executor beside PyTorch (eager and
# CUDA-graphed), same GPU, same run, same shapes (128 tokens per request).
#
# Replay's times are the whole-pass medians `replay calibrate` measures as
# replay issues a pass (a layer per pump, the host polling between layers);
# PyTorch's come from scripts/torch_reference.py.
#
# usage: scripts/warm_pass_bench.sh [--bin DIR] [--out DIR] [--arch LIST] [--batches LIST]
# writes DIR/table.md, DIR/calibrate.txt, DIR/torch.csv, DIR/machine.txt
set -euo pipefail
bin=target/release
out=results/warm_pass
arch=bert-base,gpt2,opt-1.3b,opt-2.7b
batches=1,8
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --arch) arch="$2"; shift 2 ;;
        --batches) batches="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "warm_pass_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -x "$bin/replay" ]] || { echo "warm_pass_bench.sh: $bin/replay is missing" >&2; exit 2; }
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/machine.txt" || true
python3 -c 'import torch; print("torch", torch.__version__)' >> "$out/machine.txt"
"$bin/replay" calibrate --device cuda --arch "$arch" --batches "$batches" \
    --out "$out/profile.yaml" > "$out/calibrate.txt" 2>&1
python3 "$(dirname "$0")/torch_reference.py" --arch "$arch" --batches "$batches" > "$out/torch.csv"
{
    echo "| arch | batch | replay ms | PyTorch eager ms | PyTorch CUDA graph ms | replay / graph |"
    echo "|---|--:|--:|--:|--:|--:|"
    tail -n +2 "$out/torch.csv" | while IFS=, read -r a b eager graph; do
        ours=$(grep -E "^$a batch $b: " "$out/calibrate.txt" | sed 's/.*: \([0-9.]*\) ms.*/\1/')
        ratio=$(python3 -c "print(f'{$ours / $graph:.2f}x')")
        echo "| $a | $b | $ours | $eager | $graph | $ratio |"
    done
} > "$out/table.md"
cat "$out/table.md"
