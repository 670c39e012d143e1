#!/usr/bin/env bash
# The simulated rows of results/multipath/README.md: each workload with
# direct loading (one link, PipeSwitch), multi-path loading with the
# one-link grouping (`--multipath-grouping one_link`) and multi-path loading
# with helper-aware grouping (the default), on the same schedule; keeps each
# run's summary.json (and requests.csv for the per-model table) under sim/.
# usage: results/multipath/sim.sh [SIM_BINARY]
set -euo pipefail
sim=${1:-target/release/sim}
out=results/multipath/sim
rm -rf "$out"
for w in experiments/multipath/cold.yaml experiments/multipath/cold_batch8.yaml experiments/multipath_bursty.yaml; do
    n=$(basename "$w" .yaml)
    for l in multipath multipath_one_link direct; do
        tmp=$(mktemp -d)
        case $l in
            multipath_one_link) args=(--loading multipath --multipath-grouping one_link) ;;
            *) args=(--loading "$l") ;;
        esac
        "$sim" -w "$w" "${args[@]}" --no-timeline -o "$tmp/run" >/dev/null 2>&1
        mkdir -p "$out/${n}_$l"
        cp "$tmp/run/summary.json" "$tmp/run/requests.csv" "$out/${n}_$l/"
        rm -rf "$tmp"
    done
done
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
ls = ["direct", "multipath_one_link", "multipath"]
rows = ["| workload | loading | mean ms | p50 ms | p99 ms | loads | gain in mean over direct |",
        "|---|---|--:|--:|--:|--:|--:|"]
for w in ["cold", "cold_batch8", "multipath_bursty"]:
    s = {l: json.load(open(f"{out}/{w}_{l}/summary.json")) for l in ls}
    for l in ls:
        x = s[l]
        g = s["direct"]["mean_s"] / x["mean_s"]
        rows.append(f"| {w} | {l} | {x['mean_s']*1e3:.2f} | {x['p50_s']*1e3:.2f} | {x['p99_s']*1e3:.2f} | {x['loads']} | {'%.3fx' % g if l != 'direct' else ''} |")
rows += ["", "cold_batch8, mean latency of a cold batch of eight per architecture, and the",
         "copy groups each plan has at batch 8 (one link / helper-aware, from summary.json):", "",
         "| architecture | direct ms | multipath, one-link groups ms | multipath, helper-aware groups ms | gain of helper-aware grouping | groups (one link / helpers) |",
         "|---|--:|--:|--:|--:|--:|"]
lat = {}
for l in ls:
    for r in csv.DictReader(open(f"{out}/cold_batch8_{l}/requests.csv")):
        lat.setdefault((r["model"].rsplit("-", 1)[0], l), []).append(float(r["latency_s"]))
groups = {m["model"].rsplit("-", 1)[0]: (m.get("one_link_groups"), m.get("multipath_groups"))
          for m in json.load(open(f"{out}/cold_batch8_multipath/summary.json"))["models"]}
for a in ["bert-base", "gpt2", "opt-1.3b"]:
    d, o, m = (sum(lat[(a, l)]) / len(lat[(a, l)]) for l in ls)
    rows.append(f"| {a} | {d*1e3:.3f} | {o*1e3:.3f} | {m*1e3:.3f} | {o/m:.3f}x | {groups[a][0]} / {groups[a][1]} |")
open(f"{out}/table.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
# multipath_bursty on six seeds, one-link against helper-aware grouping
# (the one-seed rows above are within this spread).
{
    echo "| seed | one-link groups: mean ms | p99 ms | loads | helper-aware groups: mean ms | p99 ms | loads | gain in mean |"
    echo "|--:|--:|--:|--:|--:|--:|--:|--:|"
    for seed in 1 2 3 4 5 6; do
        tmp=$(mktemp -d)
        for g in one_link helpers; do
            "$sim" -w experiments/multipath_bursty.yaml --seed "$seed" --loading multipath \
                --multipath-grouping "$g" --no-timeline -o "$tmp/$g" >/dev/null 2>&1
        done
        python3 - "$tmp" "$seed" <<'PY'
import json, sys
a, b = (json.load(open(f"{sys.argv[1]}/{g}/summary.json")) for g in ["one_link", "helpers"])
print(f"| {sys.argv[2]} | {a['mean_s']*1e3:.2f} | {a['p99_s']*1e3:.1f} | {a['loads']} | "
      f"{b['mean_s']*1e3:.2f} | {b['p99_s']*1e3:.1f} | {b['loads']} | {a['mean_s']/b['mean_s']:.4f}x |")
PY
        rm -rf "$tmp"
    done
} > "$out/bursty_seeds.md"
cat "$out/bursty_seeds.md"
# Busy helpers: loads that find some helpers loading for themselves take
# the plan for the helpers lent (`helpers`, the default) or, in the
# `every_helper` ablation, the plan for all k; one seed of each workload
# (runs kept under sim/busy/), then six seeds of the bursty ones.
busy=$out/busy
mkdir -p "$busy"
for w in experiments/multipath_bursty.yaml experiments/multipath/bursty4.yaml experiments/multipath/cold_pairs.yaml; do
    n=$(basename "$w" .yaml)
    for g in direct one_link helpers every_helper; do
        case $g in
            direct) args=(--loading direct) ;;
            *) args=(--multipath-grouping "$g") ;;
        esac
        tmp=$(mktemp -d)
        "$sim" -w "$w" "${args[@]}" --no-timeline -o "$tmp/run" >/dev/null 2>&1
        mkdir -p "$busy/${n}_$g"
        cp "$tmp/run/summary.json" "$tmp/run/requests.csv" "$busy/${n}_$g/"
        rm -rf "$tmp"
    done
done
python3 - "$busy" <<'PY' > "$out/busy_helpers.md"
import csv, json, sys
busy = sys.argv[1]
gs = ["direct", "one_link", "helpers", "every_helper"]
print("| workload | loading / grouping | mean ms | p50 ms | p99 ms | loads |")
print("|---|---|--:|--:|--:|--:|")
for w in ["multipath_bursty", "bursty4", "cold_pairs"]:
    for g in gs:
        x = json.load(open(f"{busy}/{w}_{g}/summary.json"))
        print(f"| {w} | {g} | {x['mean_s']*1e3:.3f} | {x['p50_s']*1e3:.3f} | {x['p99_s']*1e3:.3f} | {x['loads']} |")
print()
print("cold_pairs, mean latency per architecture of the first copy of a pair")
print("(its load borrows the idle GPU's link) and the second (issued at the same")
print("instant: its helper is loading for itself, so it goes over one link):")
print()
print("| architecture | pair | " + " | ".join(f"{g} ms" for g in gs) + " |")
print("|---|---|" + "--:|" * len(gs))
lat = {}
for g in gs:
    for r in csv.DictReader(open(f"{busy}/cold_pairs_{g}/requests.csv")):
        a, i = r["model"].rsplit("-", 1)
        lat.setdefault((a, int(i) % 2, g), []).append(float(r["latency_s"]))
for a in ["bert-base", "gpt2", "opt-1.3b"]:
    for k, name in [(0, "first (helped)"), (1, "second (helper busy)")]:
        cells = " | ".join(f"{sum(lat[(a, k, g)]) / len(lat[(a, k, g)]) * 1e3:.4f}" for g in gs)
        print(f"| {a} | {name} | {cells} |")
PY
cat "$out/busy_helpers.md"
{
    echo "| workload | seed | helpers: mean ms | p99 ms | every_helper: mean ms | p99 ms | mean, every_helper / helpers |"
    echo "|---|--:|--:|--:|--:|--:|--:|"
    for w in experiments/multipath_bursty.yaml experiments/multipath/bursty4.yaml; do
        for seed in 1 2 3 4 5 6; do
            tmp=$(mktemp -d)
            for g in helpers every_helper; do
                "$sim" -w "$w" --seed "$seed" --multipath-grouping "$g" --no-timeline -o "$tmp/$g" >/dev/null 2>&1
            done
            python3 - "$tmp" "$seed" "$(basename "$w" .yaml)" <<'PY'
import json, sys
a, b = (json.load(open(f"{sys.argv[1]}/{g}/summary.json")) for g in ["helpers", "every_helper"])
print(f"| {sys.argv[3]} | {sys.argv[2]} | {a['mean_s']*1e3:.2f} | {a['p99_s']*1e3:.1f} | "
      f"{b['mean_s']*1e3:.2f} | {b['p99_s']*1e3:.1f} | {b['mean_s']/a['mean_s']:.4f} |")
PY
            rm -rf "$tmp"
        done
    done
} > "$out/busy_seeds.md"
cat "$out/busy_seeds.md"
