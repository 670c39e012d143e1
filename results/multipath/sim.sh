#!/usr/bin/env bash
# The simulated rows of results/multipath/README.md: each workload with
# multi-path and direct loading on the same schedule; keeps each run's
# summary.json (and requests.csv for the per-model table) under sim/.
# usage: results/multipath/sim.sh [SIM_BINARY]
set -euo pipefail
sim=${1:-target/release/sim}
out=results/multipath/sim
rm -rf "$out"
for w in experiments/multipath/cold.yaml experiments/multipath/cold_batch8.yaml experiments/multipath_bursty.yaml; do
    n=$(basename "$w" .yaml)
    for l in multipath direct; do
        tmp=$(mktemp -d)
        "$sim" -w "$w" --loading "$l" --no-timeline -o "$tmp/run" >/dev/null 2>&1
        mkdir -p "$out/${n}_$l"
        cp "$tmp/run/summary.json" "$tmp/run/requests.csv" "$out/${n}_$l/"
        rm -rf "$tmp"
    done
done
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = ["| workload | loading | mean ms | p50 ms | p99 ms | loads | gain in mean (direct / multipath) |",
        "|---|---|--:|--:|--:|--:|--:|"]
for w in ["cold", "cold_batch8", "multipath_bursty"]:
    s = {l: json.load(open(f"{out}/{w}_{l}/summary.json")) for l in ["direct", "multipath"]}
    g = s["direct"]["mean_s"] / s["multipath"]["mean_s"]
    for l in ["direct", "multipath"]:
        x = s[l]
        rows.append(f"| {w} | {l} | {x['mean_s']*1e3:.1f} | {x['p50_s']*1e3:.1f} | {x['p99_s']*1e3:.1f} | {x['loads']} | {'%.2fx' % g if l == 'multipath' else ''} |")
rows += ["", "cold_batch8, mean latency of a cold batch of eight per architecture:", "",
         "| architecture | one link (direct) ms | multipath ms | gain |", "|---|--:|--:|--:|"]
lat = {}
for l in ["direct", "multipath"]:
    for r in csv.DictReader(open(f"{out}/cold_batch8_{l}/requests.csv")):
        lat.setdefault((r["model"].rsplit("-", 1)[0], l), []).append(float(r["latency_s"]))
for a in ["bert-base", "gpt2", "opt-1.3b"]:
    d = sum(lat[(a, "direct")]) / len(lat[(a, "direct")])
    m = sum(lat[(a, "multipath")]) / len(lat[(a, "multipath")])
    rows.append(f"| {a} | {d*1e3:.2f} | {m*1e3:.2f} | {d/m:.2f}x |")
open(f"{out}/table.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
