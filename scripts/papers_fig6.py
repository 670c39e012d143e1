"""PipeSwitch's Fig. 6 tables for scripts/papers_tables.py: throughput of a
closed-loop client against the scheduling cycle, published beside
simulated (and measured, where `scripts/papers.sh --replay` ran).

A run's throughput is counted as netx-repo/PipeSwitch's
client/throughput.py counts it: in each client turn (turn k of cycle C
runs from (2k+1)C to (2k+2)C, the workload's `cycle_s` rule) the replies
that came back within the turn; rounds 10-19 of 20, their mean count
divided by C. Latencies (mean, min, max) are over every request sent in
those turns. Standard library only.
"""
import csv
import json
import os
import statistics
import sys

CYCLES = (1, 2, 5, 10, 30)
ROUNDS = range(10, 20)
# netx-repo/PipeSwitch, log-1019.txt, Fig. 6 dictionary: per cycle,
# [throughput inferences/s, mean, min, max latency ms] (ResNet-152, batch 8).
PS_FIG6 = {
    "ready": {1: [26.1, 38.28189473499283, 37.74905204772949, 39.689064025878906],
              2: [27.05, 37.07010864991137, 36.14306449890137, 38.82408142089844],
              5: [25.939999999999998, 38.45897415737602, 37.71662712097168, 40.604352951049805],
              10: [26.99, 36.89031805891423, 35.5982780456543, 38.64550590515137],
              30: [26.36, 37.70939249792181, 34.86943244934082, 40.769338607788086]},
    "pipeswitch": {1: [26.75, 37.840731790132615, 36.46254539489746, 49.21555519104004],
                   2: [27.125, 36.776533873949184, 35.54129600524902, 47.27005958557129],
                   5: [26.4, 37.776902769551135, 35.86697578430176, 51.035165786743164],
                   10: [26.55, 37.48260379511084, 36.21268272399902, 51.644086837768555],
                   30: [26.233333333333334, 37.85841483173104, 36.667823791503906,
                        55.48214912414551]},
    "stop_and_start": {1: [0.0, 5521.063446998596, 5495.598316192627, 5572.285890579224],
                       2: [0.0, 5540.8729910850525, 5505.0318241119385, 5570.749759674072],
                       5: [0.0, 5632.104158401489, 5610.085010528564, 5653.781175613403],
                       10: [11.35, 87.96688113443652, 34.96861457824707, 5720.613956451416],
                       30: [20.833333333333332, 47.77904901504517, 36.18001937866211,
                            5707.695007324219]},
}
# Our runs: system -> (run folder prefix under pipeswitch/<hw>/fig6/).
RUNS = (("ready", "ready"), ("pipeswitch", "pipeswitch"), ("stop_and_start", "stop_and_start"))
MODEL = "resnet-152"
NOT_MEASURED = "—"


STATS = "fig6_stats.json"


def stats(run, cycle):
    """(throughput /s, mean, min, max latency ms) of a run's client turns:
    from its requests.csv, else from the fig6_stats.json written from it
    (`papers_fig6.py stats`, which scripts/papers.sh keeps instead of the
    simulated runs' CSVs)."""
    if not os.path.exists(os.path.join(run, "requests.csv")):
        with open(os.path.join(run, STATS)) as f:
            d = json.load(f)
        if d["cycle_s"] != cycle:
            raise ValueError(f"{run}: {STATS} is for a cycle of {d['cycle_s']} s, not {cycle}")
        return d["throughput"], d["mean_ms"], d["min_ms"], d["max_ms"]
    turns = {k: [] for k in ROUNDS}
    with open(os.path.join(run, "requests.csv")) as f:
        for r in csv.DictReader(f):
            if r["model"] != MODEL:
                continue
            a = float(r["arrival_s"])
            k = int(a // (2 * cycle))
            start = (2 * k + 1) * cycle
            if k in turns and start <= a < start + cycle:
                turns[k].append((float(r["finish_s"]) < start + cycle, float(r["latency_s"])))
    counts = [sum(ok for ok, _ in t) for t in turns.values()]
    lat = [x * 1e3 for t in turns.values() for _, x in t]
    if not lat:
        raise ValueError(f"{run}: no {MODEL} request in rounds 10-19")
    return statistics.fmean(counts) / cycle, statistics.fmean(lat), min(lat), max(lat)


def ratio(sim, pub):
    return f"{sim / pub:.2f}" if pub else "n/a"


def row(cells):
    return "| " + " | ".join(cells) + " |"


def folder(base, hw, system, cycle):
    return os.path.join(base, hw, "fig6", f"{system}_c{cycle}")


def measured(base, system, cycle, i, pub):
    run = folder(base, "measured", system, cycle)
    if not os.path.isdir(run):
        return NOT_MEASURED
    v = stats(run, cycle)[i]
    return f"{v:.1f} ({ratio(v, pub)})"


def tables(out, hws):
    base = os.path.join(out, "pipeswitch")
    lines = ["### Fig. 6: closed-loop throughput against the scheduling cycle, inferences/s", "",
             "ResNet-152, batch 8; replies back within each client turn of one cycle, "
             "rounds 10-19 (`scripts/papers_fig6.py`). Published: `log-1019.txt`, "
             "Fig. 6 dictionary.", "",
             row(["cycle s", "system", "published", "sim preset", "ratio",
                  "sim testbed", "ratio", "measured"]),
             row(["---", "---"] + ["--:"] * 6)]
    got = {}
    for cycle in CYCLES:
        for system, name in RUNS:
            pub = PS_FIG6[system][cycle]
            s = [stats(folder(base, hw, name, cycle), cycle) for hw in hws]
            got[(system, cycle)] = s
            lines.append(row([str(cycle), system, f"{pub[0]:.2f}",
                              f"{s[0][0]:.2f}", ratio(s[0][0], pub[0]),
                              f"{s[1][0]:.2f}", ratio(s[1][0], pub[0]),
                              measured(base, name, cycle, 0, pub[0])]))
    lines += ["", "### Fig. 6 as a share of the never-switching GPU (ready), %", "",
              row(["cycle s", "system", "published", "sim preset", "sim testbed"]),
              row(["---", "---"] + ["--:"] * 3)]
    for cycle in CYCLES:
        for system in ("pipeswitch", "stop_and_start"):
            pub = 100 * PS_FIG6[system][cycle][0] / PS_FIG6["ready"][cycle][0]
            s = [100 * got[(system, cycle)][h][0] / got[("ready", cycle)][h][0]
                 for h in range(len(hws))]
            lines.append(row([str(cycle), system, f"{pub:.1f}", f"{s[0]:.1f}", f"{s[1]:.1f}"]))
    lines += ["", "### Fig. 6 latency (testbed profile), ms: mean / min / max", "",
              row(["cycle s", "system", "published", "sim testbed", "ratio of max"]),
              row(["---", "---", "--:", "--:", "--:"])]
    for cycle in CYCLES:
        for system, _ in RUNS:
            pub = PS_FIG6[system][cycle]
            s = got[(system, cycle)][1]
            lines.append(row([str(cycle), system,
                              f"{pub[1]:.1f} / {pub[2]:.1f} / {pub[3]:.1f}",
                              f"{s[1]:.1f} / {s[2]:.1f} / {s[3]:.1f}", ratio(s[3], pub[3])]))
    lines.append("")
    return lines + diagnostic(base)


def diagnostic(base):
    """Stop-and-start with its switch as long as PipeSwitch's process
    start-up (profiles/pipeswitch-p3-restart.yaml): not a fit, a measure
    of how much of the miss that start-up is."""
    d = os.path.join(base, "diagnostic_restart")
    if not os.path.isdir(d):
        return []
    lines = ["### Diagnostic: stop-and-start with PipeSwitch's process start-up "
             "(`profiles/pipeswitch-p3-restart.yaml`; not a fit)", "",
             row(["cycle s", "published inferences/s", "sim", "ratio",
                  "published latency ms mean / min / max", "sim"]),
             row(["---"] + ["--:"] * 5)]
    for cycle in CYCLES:
        pub = PS_FIG6["stop_and_start"][cycle]
        s = stats(os.path.join(d, "fig6", f"stop_and_start_c{cycle}"), cycle)
        lines.append(row([str(cycle), f"{pub[0]:.2f}", f"{s[0]:.2f}", ratio(s[0], pub[0]),
                          f"{pub[1]:.0f} / {pub[2]:.0f} / {pub[3]:.0f}",
                          f"{s[1]:.0f} / {s[2]:.0f} / {s[3]:.0f}"]))
    lines.append("")
    return lines


def main(argv):
    """`papers_fig6.py stats RUN CYCLE`: writes RUN/fig6_stats.json."""
    if len(argv) != 4 or argv[1] != "stats":
        print("usage: scripts/papers_fig6.py stats RUN_DIR CYCLE_S", file=sys.stderr)
        return 2
    run, cycle = argv[2], int(argv[3])
    t, mean, lo, hi = stats(run, cycle)
    d = {"cycle_s": cycle, "rounds": [ROUNDS.start, ROUNDS.stop - 1], "throughput": t,
         "mean_ms": mean, "min_ms": lo, "max_ms": hi}
    with open(os.path.join(run, STATS), "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
