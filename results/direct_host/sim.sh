#!/usr/bin/env bash
# The simulated rows of results/direct_host/README.md: each workload with
# direct host access on and off on the same schedule (same seed); keeps
# each run's summary.json and requests.csv under sim/, and the tables in
# sim/table.md.
# usage: results/direct_host/sim.sh [SIM_BINARY]
set -euo pipefail
sim=${1:-target/release/sim}
out=results/direct_host/sim
rm -rf "$out"
run() { # name workload extra-args...
    local n=$1 w=$2
    shift 2
    local tmp
    tmp=$(mktemp -d)
    "$sim" -w "$w" "$@" --no-timeline -o "$tmp/run" >/dev/null 2>&1
    mkdir -p "$out/$n"
    cp "$tmp/run/summary.json" "$tmp/run/requests.csv" "$out/$n/"
    rm -rf "$tmp"
}
for b in 1 8; do
    for d in on off; do
        run "cold_batch${b}_$d" experiments/direct_host/cold_batch$b.yaml --direct-host $d
    done
done
# Two GPUs: with multi-path loading, and a bursty mix (warm and cold passes).
for d in on off; do
    run "multipath_cold_batch8_$d" experiments/multipath/cold_batch8.yaml --direct-host $d
    run "multipath_bursty_$d" experiments/multipath_bursty.yaml --loading direct --direct-host $d
done
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
def per_arch(run):
    lat = {}
    for r in csv.DictReader(open(f"{out}/{run}/requests.csv")):
        lat.setdefault(r["model"].rsplit("-", 1)[0], []).append(float(r["latency_s"]))
    return {a: sum(v) / len(v) for a, v in lat.items()}
rows = ["Mean latency of a cold batch per architecture (PipeSwitch, h200-pcie5):", "",
        "| workload | architecture | copied ms | direct_host ms | gain | layers in host | MB in host |",
        "|---|---|--:|--:|--:|--:|--:|"]
for w in ["cold_batch1", "cold_batch8", "multipath_cold_batch8"]:
    off, on = per_arch(f"{w}_off"), per_arch(f"{w}_on")
    models = {m["model"].rsplit("-", 1)[0]: m for m in json.load(open(f"{out}/{w}_on/summary.json"))["models"]}
    for a in ["bert-base", "gpt2", "opt-1.3b"]:
        m = models[a]
        rows.append(f"| {w} | {a} | {off[a]*1e3:.2f} | {on[a]*1e3:.2f} | {off[a]/on[a]:.2f}x | "
                    f"{m.get('direct_host_layers', 0)} | {m.get('direct_host_bytes', 0)/1e6:.1f} |")
rows += ["", "| workload | direct_host | mean ms | p50 ms | p99 ms | bytes loaded GB |", "|---|---|--:|--:|--:|--:|"]
for w in ["cold_batch1", "cold_batch8", "multipath_cold_batch8", "multipath_bursty"]:
    for d in ["off", "on"]:
        s = json.load(open(f"{out}/{w}_{d}/summary.json"))
        rows.append(f"| {w} | {d} | {s['mean_s']*1e3:.2f} | {s['p50_s']*1e3:.2f} | {s['p99_s']*1e3:.2f} | {s['bytes_loaded']/1e9:.2f} |")
open(f"{out}/table.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
