#!/usr/bin/env python3
"""Tables of the papers' published numbers beside the simulated ones.

usage: scripts/papers_tables.py RESULTS_DIR   (the --out of scripts/papers.sh)

Prints markdown: per paper, published | simulated on the bundled preset |
ratio | simulated on the testbed profile | ratio | measured. Published
numbers are copied from the papers' repositories (file named under each
table); ratios are simulated / published. Standard library only.
"""
import csv
import json
import os
import statistics
import sys
from collections import defaultdict

import papers_fig6

# dlzou/computron, experiments/results.ipynb, cell "times = []" output:
# (tp, pp) -> (offload s, load s, model s, response s), means over 20 requests.
COMPUTRON_SWAP = {
    (1, 1): (1.2376, 1.35045, 0.04, 1.40813228),
    (2, 1): (0.63195, 0.7324, 0.04745, 0.80104741),
    (4, 1): (0.44695, 0.68865, 0.0495, 0.76103365),
    (1, 2): (0.6212, 0.85815, 0.0486, 0.92355763),
    (1, 4): (0.3795, 0.64455, 0.06065, 0.72190746),
    (2, 2): (0.31835, 0.4231, 0.0574, 0.501713),
}
# Same notebook, section 2 (cells printing np.mean(resp_times)): rates ->
# mean latency, s, at CV 0.25, 1, 4; (tp 2, pp 2), 30 s.
COMPUTRON_RANDOM = {
    "1_1_1": (1.2615934456095976, 0.6057218389308199, 0.5175510443173922),
    "10_1_1": (1.1721814147188516, 0.8861485387458176, 0.5504959956241717),
    "10_10_1": (1.0142914420855191, 0.7163893842859886, 0.37400690697279),
    "1_1_1_1_1_1": (1.8466321607915366, 1.2824062592741372, 0.17361130634275804),
    "10_10_1_1_1_1": (2.0172289232922416, 1.4125795250375157, 0.22889208503769523),
    "10_10_10_10_1_1": (1.534933141915195, 1.469779867483369, 0.3120475583308645),
}
CVS = ("0.25", "1", "4")
# netx-repo/PipeSwitch, log-1019.txt: Fig. 5 and Fig. 7 dictionaries, ms.
PS_MODELS = (("resnet-152", "resnet152"), ("inception-v3", "inception_v3"),
             ("bert-base", "bert_base"))
PS_FIG5 = {
    "ready": {"resnet152": 37.06399069892036, "inception_v3": 40.53577052222358,
              "bert_base": 39.33258851369222},
    "pipeswitch": {"resnet152": 43.453288078308105, "inception_v3": 40.59109687805176,
                   "bert_base": 53.84514331817627},
    "stop_and_start": {"resnet152": 5678.1941175460815, "inception_v3": 6276.422929763794,
                       "bert_base": 7243.096494674683},
}
PS_FIG7 = {
    "pipeswitch": {"resnet152": 41.063785552978516, "inception_v3": 39.508891105651855,
                   "bert_base": 53.6515474319458},
    "per_layer": {"resnet152": 76.35154724121094, "inception_v3": 53.65896224975586,
                  "bert_base": 70.32392024993896},
    "one_group": {"resnet152": 60.05537509918213, "inception_v3": 50.380802154541016,
                  "bert_base": 83.16259384155273},
}
HW = ("preset", "testbed")
NOT_MEASURED = "—"


def mean_latency(run, model=None):
    with open(os.path.join(run, "requests.csv")) as f:
        xs = [float(r["latency_s"]) for r in csv.DictReader(f)
              if model is None or r["model"] == model]
    return statistics.fmean(xs)


# Copies of one model starting within this many microseconds of the load's
# first copy are one load (Computron issues every stage and rank at once;
# `sim` at the same instant, `replay` a few microseconds apart).
LOAD_WINDOW_US = 50_000


def mean_swap_in(run, cat="copy"):
    """Mean time from a load's first copy start to its last copy end, over
    the loads of a `timeline.json` (written by `sim` or `replay`); with
    `cat="offload"`, the same of the offloads (copies back to host)."""
    with open(os.path.join(run, "timeline.json")) as f:
        events = json.load(f)["traceEvents"]
    copies = sorted((e["ts"], e["ts"] + e["dur"], e["name"].split(" ")[1])
                    for e in events if e.get("cat") == cat)
    open_load = {}  # model -> [first start, last end]
    loads = []
    for start, end, model in copies:
        cur = open_load.get(model)
        if cur is not None and start - cur[0] <= LOAD_WINDOW_US:
            cur[1] = max(cur[1], end)
        else:
            if cur is not None:
                loads.append(cur[1] - cur[0])
            open_load[model] = [start, end]
    loads += [end - start for start, end in open_load.values()]
    return statistics.fmean(loads) * 1e-6


def mean_offload(run):
    """Mean time of a model's offload (every stage and rank), first byte to
    last, from `timeline.json`; the runs under `offload/`."""
    return mean_swap_in(run, "offload")


def offloaded(run):
    """The same folder's run with `--offload on` (`offload/NAME`)."""
    return os.path.join(os.path.dirname(run), "offload", os.path.basename(run))


def measured(run, fn, pub):
    """`value (ratio)` of a measured run when there is one, else a dash."""
    if not os.path.isdir(run):
        return NOT_MEASURED
    try:
        v = fn(run)
    except FileNotFoundError:  # a replay made before its offload runs
        return NOT_MEASURED
    return f"{v:.3f} ({v / pub:.2f})"


def sweep_means(folder):
    """cv -> mean over seeds of each run's mean latency, s."""
    by_cv = defaultdict(list)
    with open(os.path.join(folder, "sweep.csv")) as f:
        for r in csv.DictReader(f):
            by_cv[r["cv"]].append(float(r["mean_s"]))
    return {cv: statistics.fmean(v) for cv, v in by_cv.items()}


def ratio(sim, pub):
    return f"{sim / pub:.2f}"


def row(cells):
    return "| " + " | ".join(cells) + " |"


def header(first, unit):
    return [
        row([*first, f"published {unit}", f"sim preset {unit}", "ratio",
             f"sim testbed {unit}", "ratio", "measured"]),
        row(["---"] * len(first) + ["--:"] * 6),
    ]


def computron(out):
    base = os.path.join(out, "computron")
    lines = ["## Computron (4x A100 40GB, PCIe 4.0 x16 each)", "",
             "preset: `a100-pcie4`; testbed: `profiles/computron-perlmutter.yaml`. "
             "Published: dlzou/computron, `experiments/results.ipynb`.", ""]
    for title, col, fn in (
        ("Swap-in time (Computron's `Load Time`), s", 1, mean_swap_in),
        ("Response time of the alternating requests (`Response Time`), s", 3, mean_latency),
        ("Offload time (Computron's `Offload Time`; runs with `--offload on`), s", 0,
         lambda run: mean_offload(offloaded(run))),
        ("Response time with offload on (`Response Time`; runs with `--offload on`), s", 3,
         lambda run: mean_latency(offloaded(run))),
    ):
        lines += [f"### {title}", ""]
        lines += header(["(tp, pp)"], "")
        for (tp, pp), pub in COMPUTRON_SWAP.items():
            name = f"swap_tp{tp}_pp{pp}"
            sims = [fn(os.path.join(base, hw, name)) for hw in HW]
            meas = measured(os.path.join(base, "measured", name), fn, pub[col])
            lines.append(row([f"({tp}, {pp})", f"{pub[col]:.3f}",
                              f"{sims[0]:.3f}", ratio(sims[0], pub[col]),
                              f"{sims[1]:.3f}", ratio(sims[1], pub[col]), meas]))
        lines.append("")
    lines += ["### Random workloads: mean latency, s (mean over seeds)", ""]
    lines += header(["rates (requests/s)", "CV"], "")
    for rates, pubs in COMPUTRON_RANDOM.items():
        n = len(rates.split("_"))
        name = f"random_{n}m_{rates}"
        sims = [sweep_means(os.path.join(base, hw, name)) for hw in HW]
        for cv, pub in zip(CVS, pubs):
            s = [x[cv] for x in sims]
            lines.append(row([f"({rates.replace('_', ', ')})", cv, f"{pub:.3f}",
                              f"{s[0]:.3f}", ratio(s[0], pub),
                              f"{s[1]:.3f}", ratio(s[1], pub), NOT_MEASURED]))
    lines.append("")
    return lines


def pipeswitch(out):
    base = os.path.join(out, "pipeswitch")
    lines = ["## PipeSwitch (1x V100 16GB, PCIe 3.0 x16; fp32, batch 8)", "",
             "preset: `v100-pcie3`; testbed: `profiles/pipeswitch-p3.yaml`. "
             "Published: netx-repo/PipeSwitch, `log-1019.txt` (Fig. 5, Fig. 6, Fig. 7).", ""]
    for title, table, runs in (
        ("Fig. 5: total latency, ms", PS_FIG5,
         {"ready": "ready", "pipeswitch": "pipeswitch", "stop_and_start": "stop_and_start"}),
        ("Fig. 7: pipelining and grouping, ms", PS_FIG7,
         {"pipeswitch": "pipeswitch", "per_layer": "per_layer", "one_group": "one_group"}),
    ):
        lines += [f"### {title}", ""]
        lines += header(["model", "system"], "")
        for ours, theirs in PS_MODELS:
            for system, run in runs.items():
                pub = table[system][theirs]
                sims = [mean_latency(os.path.join(base, hw, run), ours) * 1e3 for hw in HW]
                lines.append(row([ours, system, f"{pub:.1f}",
                                  f"{sims[0]:.1f}", ratio(sims[0], pub),
                                  f"{sims[1]:.1f}", ratio(sims[1], pub), NOT_MEASURED]))
        lines.append("")
    lines += ["### Fig. 5 as ratios to the ready model", ""]
    lines += header(["model", "ratio"], "")
    for ours, theirs in PS_MODELS:
        sims = {hw: {r: mean_latency(os.path.join(base, hw, r), ours)
                     for r in ("ready", "pipeswitch", "stop_and_start")} for hw in HW}
        for num in ("pipeswitch", "stop_and_start"):
            pub = PS_FIG5[num][theirs] / PS_FIG5["ready"][theirs]
            s = [sims[hw][num] / sims[hw]["ready"] for hw in HW]
            lines.append(row([ours, f"{num} / ready", f"{pub:.2f}",
                              f"{s[0]:.2f}", ratio(s[0], pub),
                              f"{s[1]:.2f}", ratio(s[1], pub), NOT_MEASURED]))
    lines.append("")
    lines += ["### Inference beside a training job (not a published number)", "",
              row(["profile", "ResNet-152 mean latency ms", "its ready latency ms",
                   "training iterations", "training share of the GPU"]),
              row(["---"] + ["--:"] * 4)]
    for hw in HW:
        run = os.path.join(base, hw, "preempt_training")
        with open(os.path.join(run, "summary.json")) as f:
            bg = json.load(f)["background"][0]
        ready = mean_latency(os.path.join(base, hw, "ready"), "resnet-152")
        lines.append(row([hw, f"{mean_latency(run) * 1e3:.1f}", f"{ready * 1e3:.1f}",
                          str(bg["iterations"]), f"{bg['share']:.3f}"]))
    lines.append("")
    return lines + papers_fig6.tables(out, HW)


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    out = argv[1]
    try:
        lines = ["# The papers' experiments: published beside simulated", "",
                 "Ratios are simulated / published. `measured`: `replay` of the same "
                 "schedule, value (ratio), where `scripts/papers.sh --replay` ran; "
                 "a dash where it has not (results/papers/README.md).", ""]
        lines += computron(out) + pipeswitch(out)
    except (OSError, KeyError, ValueError) as e:
        print(f"error: {out}: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
