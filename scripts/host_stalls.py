#!/usr/bin/env python3
"""Host stalls of replayed warm passes, as a profile's `jitter` lines.

A warm pass (its weights resident) that runs more than THRESHOLD ms over
the median of its class (architecture, batch size) in one replay is counted
as a host stall of that excess. Prints the stall rate per second of warm
pass time and the stall sizes' quantiles at 0, 0.1, ..., 1, as the two
`jitter` fields a hardware profile takes (`host_stall_rate_per_s`,
`host_stall_ms`), and on stderr how many passes and stalls each folder had.

Usage: scripts/host_stalls.py [--threshold-ms T] REPLAY_DIR...
(each holding `requests.csv`; T defaults to 1.0). Standard library only.
"""

import csv
import os
import statistics
import sys
from collections import defaultdict


def stalls(folder, threshold_s):
    """(seconds of warm pass time, [stall excess s]) of one replay folder."""
    rows = list(csv.DictReader(open(os.path.join(folder, "requests.csv"))))
    batches = {}
    for r in rows:
        batches.setdefault((r["start_s"], r["finish_s"]), r)
    classes = defaultdict(list)
    for r in batches.values():
        if r["cold"] == "0":
            model = r["model"]
            arch = model.rsplit("-", 1)[0] if model.rsplit("-", 1)[-1].isdigit() else model
            classes[(arch, r["batch_size"])].append(float(r["finish_s"]) - float(r["start_s"]))
    total, excess = 0.0, []
    for passes in classes.values():
        if len(passes) < 20:  # too few for a median to mean much
            continue
        median = statistics.median(passes)
        total += sum(passes)
        excess += [p - median for p in passes if p - median > threshold_s]
    return total, excess


def main(argv):
    threshold_ms = 1.0
    if len(argv) >= 2 and argv[0] == "--threshold-ms":
        threshold_ms, argv = float(argv[1]), argv[2:]
    if not argv:
        sys.exit(__doc__)
    total, excess = 0.0, []
    for d in argv:
        if not os.path.exists(os.path.join(d, "requests.csv")):
            sys.exit(f"error: {d}: no requests.csv")
        t, e = stalls(d, threshold_ms * 1e-3)
        print(f"{d}: {t:.2f} s of warm passes, {len(e)} stalls over {threshold_ms} ms", file=sys.stderr)
        total, excess = total + t, excess + e
    if len(excess) < 2 or total <= 0:
        sys.exit("error: fewer than two stalls: nothing to fit")
    excess.sort()
    n = len(excess)
    q = [round(excess[round(i / 10 * (n - 1))] * 1e3, 3) for i in range(11)]
    print(f"  host_stall_rate_per_s: {n / total:.3f}")
    print(f"  host_stall_ms: [{', '.join(str(x) for x in q)}]")


if __name__ == "__main__":
    main(sys.argv[1:])
