#!/usr/bin/env python3
"""Copy rates in a timeline.json (written by `sim` or `replay`).

usage: scripts/timeline_copy_rate.py TIMELINE.json [--pid N]

Prints the number of copy spans, the median and range of single copies'
rates, and the aggregate rate while any copy was in flight (bytes of all
copies over the union of their intervals), in GB/s. Standard library only.
"""
import json
import statistics
import sys


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    pid = int(argv[argv.index("--pid") + 1]) if "--pid" in argv else None
    try:
        with open(argv[1]) as f:
            events = json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {argv[1]}: {e}", file=sys.stderr)
        return 2
    copies = [e for e in events if e.get("cat") == "copy" and e.get("dur", 0) > 0
              and (pid is None or e.get("pid") == pid)]
    if not copies:
        print("no copy spans")
        return 1
    rates = [e["args"]["bytes"] / e["dur"] / 1e3 for e in copies]  # bytes/us -> GB/s
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in copies)
    union, (start, end) = 0.0, spans[0]
    for s, e in spans[1:]:
        if s > end:
            union += end - start
            start, end = s, e
        else:
            end = max(end, e)
    union += end - start
    total = sum(e["args"]["bytes"] for e in copies)
    print(f"copies: {len(copies)}")
    print(f"single copy GB/s: median {statistics.median(rates):.2f}, "
          f"min {min(rates):.2f}, max {max(rates):.2f}")
    print(f"aggregate while copying: {total / union / 1e3:.2f} GB/s "
          f"(copies in flight on average: {sum(e['dur'] for e in copies) / union:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
