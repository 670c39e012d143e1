#!/usr/bin/env python3
"""How much replay's warm passes wander within one run and between runs.

Reads replay output folders (`requests.csv`, and `timeline.json` where it
has `host_ms`, the host time spent issuing each pass) and prints Markdown:

1. per workload folder, the median warm batch-1 pass (finish - start of a
   batch, so GPU time from its first layer to the host seeing it done) per
   architecture in each quarter of the run, among passes that followed an
   idle gap of more than 8 ms (one class, so the idle penalty is the same),
   and the spread: largest quarter median over smallest, less 1;
2. for folders holding `replay/` and `replay2/` (the same schedule replayed
   twice, `scripts/validate.sh --floor`), the two runs' medians per
   architecture and gap class side by side;
3. with `--profile`, the calibrated figures of the same passes (issued live
   and queued behind a copy, from the profile's comment lines).

Usage: scripts/warm_wander.py [--profile P] RUN_DIR... where RUN_DIR is a
folder with `replay/requests.csv` (and optionally `replay2/`) or a replay
output folder itself. Python 3 standard library only.
"""

import csv
import json
import os
import re
import statistics
import sys

IDLE_S = 8e-3  # a pass after more than this idle: the "idle" class
B2B_S = 5e-4  # a pass starting within this of the previous end: "b2b"


KNOWN = ["bert-base", "bert-large", "gpt2", "opt-125m", "opt-1.3b", "opt-2.7b", "opt-6.7b",
         "opt-13b", "resnet-152", "inception-v3"]


def arch_of(model):
    """The bundled architecture a model name starts with (bert-large-1 ->
    bert-large), else the name itself."""
    hits = [a for a in KNOWN if model == a or model.startswith(a + "-")]
    return max(hits, key=len) if hits else model


def passes(folder):
    """Warm batch-1 passes of a replay folder: (start_s, secs, arch, gap_s, host_s)."""
    rows = list(csv.DictReader(open(os.path.join(folder, "requests.csv"))))
    batches = {}
    for r in rows:
        batches.setdefault((r["start_s"], r["finish_s"]), r)
    host = host_times(folder)
    out, prev_end = [], 0.0
    for r in sorted(batches.values(), key=lambda r: float(r["start_s"])):
        s, f = float(r["start_s"]), float(r["finish_s"])
        if r["cold"] == "0" and r["batch_size"] == "1":
            out.append((s, f - s, arch_of(r["model"]), s - prev_end, host.get(round(s, 4))))
        prev_end = max(prev_end, f)
    return out


def host_times(folder):
    """Host issue seconds of each compute span, keyed by start (s, 4 places)."""
    path = os.path.join(folder, "timeline.json")
    if not os.path.exists(path):
        return {}
    spans = json.load(open(path))["traceEvents"]
    return {
        round(e["ts"] / 1e6, 4): e["args"]["host_ms"] / 1e3
        for e in spans
        if e.get("cat") == "compute" and "host_ms" in e.get("args", {})
    }


def ms(x):
    return f"{x * 1e3:.3f}"


def quarters(name, ps, lines):
    end = max((s for s, *_ in ps), default=0.0) or 1.0
    by = {}
    for s, secs, arch, gap, host in ps:
        if gap > IDLE_S:
            by.setdefault(arch, [[] for _ in range(4)])[min(3, int(4 * s / end))].append((secs, host))
    for arch, qs in sorted(by.items()):
        meds = [statistics.median(x for x, _ in q) if len(q) >= 5 else None for q in qs]
        got = [m for m in meds if m is not None]
        if len(got) < 2:
            continue
        spread = max(got) / min(got) - 1
        hosts = [q for q in qs if len(q) >= 5 and all(h is not None for _, h in q)]
        host_col = (
            " / ".join(ms(statistics.median(h for _, h in q)) for q in hosts) if len(hosts) == len(got) else "-"
        )
        cells = " | ".join(ms(m) if m is not None else "-" for m in meds)
        lines.append(f"| {name} | {arch} | {sum(len(q) for q in qs)} | {cells} | {spread * 100:.1f}% | {host_col} |")


def classes(ps):
    out = {}
    for _, secs, arch, gap, _ in ps:
        c = "b2b" if gap < B2B_S else ("idle" if gap > IDLE_S else "mid")
        out.setdefault((arch, c), []).append(secs)
    return out


def profile_figures(path):
    """{arch: (paced, queued, alone)} at batch 1 from a calibrated profile's comments."""
    pat = re.compile(
        r"^# (\S+) batch 1 paced: ([\d.]+) ms, queued behind a copy ([\d.]+) ms, .*alone: ([\d.]+) ms\)"
    )
    figs = {}
    for line in open(path):
        m = pat.match(line)
        if m:
            figs[m.group(1)] = tuple(float(m.group(i)) / 1e3 for i in (2, 3, 4))
    return figs


def main(argv):
    profile = None
    if len(argv) >= 2 and argv[0] == "--profile":
        profile, argv = argv[1], argv[2:]
    if not argv:
        sys.exit(__doc__)
    runs = []
    for d in argv:
        if os.path.exists(os.path.join(d, "replay", "requests.csv")):
            pair = [os.path.join(d, "replay")]
            if os.path.exists(os.path.join(d, "replay2", "requests.csv")):
                pair.append(os.path.join(d, "replay2"))
            runs.append((os.path.basename(os.path.normpath(d)), pair))
        elif os.path.exists(os.path.join(d, "requests.csv")):
            runs.append((os.path.basename(os.path.normpath(d)), [d]))
        else:
            sys.exit(f"error: {d}: no requests.csv (nor replay/requests.csv)")
    lines = [
        "Median warm batch-1 pass (ms) after more than 8 ms idle, by quarter of the run;",
        "spread = largest quarter over smallest, less 1; host ms = host time issuing the pass",
        "(replay's `timeline.json` `host_ms`, where recorded).",
        "",
        "| run | arch | passes | q1 | q2 | q3 | q4 | spread | host ms by quarter |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for name, folders in runs:
        for i, f in enumerate(folders):
            quarters(name + ("" if i == 0 else " (again)"), passes(f), lines)
    pairs = [(n, f) for n, f in runs if len(f) == 2]
    if pairs:
        lines += [
            "",
            "The same schedule replayed twice: median warm batch-1 pass (ms) per gap class",
            "(b2b: under 0.5 ms after the previous pass; idle: over 8 ms), first run, second, ratio.",
            "",
            "| run | arch | class | first | second | second / first |",
            "|---|---|---|--:|--:|--:|",
        ]
        for name, (a, b) in pairs:
            ca, cb = classes(passes(a)), classes(passes(b))
            for key in sorted(ca):
                if key in cb and len(ca[key]) >= 8 and len(cb[key]) >= 8:
                    x, y = statistics.median(ca[key]), statistics.median(cb[key])
                    lines.append(f"| {name} | {key[0]} | {key[1]} | {ms(x)} | {ms(y)} | {y / x:.3f} |")
    if profile:
        figs = profile_figures(profile)
        lines += [
            "",
            f"Calibrated batch-1 passes in `{profile}` (ms): issued live (paced, what `sim` uses),",
            "queued behind a copy (the GPU's own time: the host issued every layer ahead),",
            "back to back alone; live over queued is how far the host, not the GPU, sets the pass.",
            "",
            "| arch | live (paced) | queued (GPU) | alone | live / queued |",
            "|---|--:|--:|--:|--:|",
        ]
        for arch, (paced, queued, alone) in sorted(figs.items()):
            lines.append(f"| {arch} | {ms(paced)} | {ms(queued)} | {ms(alone)} | {paced / queued:.2f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
