#!/usr/bin/env python3
"""Hardware against simulator per model, split by cold and warm requests.

For each validation workload folder (as `scripts/validate.sh` writes it:
DIR/replay/requests.csv and DIR/sim/requests.csv of one schedule), joins
the two runs' requests by id and prints, per model and per kind (cold:
the hardware request waited for a load; warm: it did not), the count and
the median latency of each run, and the simulator's error.

    python3 scripts/cold_warm_split.py results/validation/h100_2026-12-07/onoff_per_model ...
"""
import csv
import statistics
import sys
from collections import defaultdict


def load(path):
    with open(path, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def main(dirs):
    if not dirs:
        sys.exit(__doc__)
    for d in dirs:
        hw = load(f"{d}/replay/requests.csv")
        sim = load(f"{d}/sim/requests.csv")
        groups = defaultdict(lambda: ([], []))
        for rid, h in hw.items():
            s = sim.get(rid)
            if s is None:
                continue
            key = (h["model"], "cold" if h["cold"] == "1" else "warm")
            groups[key][0].append(float(h["latency_s"]) * 1e3)
            groups[key][1].append(float(s["latency_s"]) * 1e3)
        print(f"## {d}")
        print("| model | kind | requests | hw p50 ms | sim p50 ms | sim error |")
        print("|---|---|--:|--:|--:|--:|")
        for (model, kind), (h, s) in sorted(groups.items()):
            mh, ms = statistics.median(h), statistics.median(s)
            print(f"| {model} | {kind} | {len(h)} | {mh:.2f} | {ms:.2f} | {(ms / mh - 1) * 100:+.1f}% |")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
