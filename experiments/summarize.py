#!/usr/bin/env python3
"""summarize.py -- the table of an experiment suite: median and best over seeds, per grid point and length.

    python3 experiments/summarize.py DIR [DIR ...] [--metric scaled_acc|seq_acc|token_acc]
            [--lengths 39,255] [--mean A-B] [--title TEXT] [--out FILE.md] [--prefix-dir]

Reads every DIR/*/summary.json (the run directories a `rwkvlab sweep` writes: DIR/<key=value,...>-seed<S>/),
groups runs by grid point (architecture and eigenvalue range from summary.json, the other swept keys
from the directory name without its -seed<S> suffix), and prints one Markdown row per group:
for each requested test length "median / best (n)" of the metric over the group's finished runs
(status completed or early_stopped; a diverged or unfinished run is counted in the last column, never
in the median), and with --mean A-B the same for each run's mean of the metric over its test lengths in
[A, B]. The median of an even count is the mean of the two middle values. Standard library only.
Exit status 1 when no finished run was found.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys


def load_runs(dirs, prefix_dir=False):
    runs = []
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*", "summary.json"))):
            name = os.path.basename(os.path.dirname(path))
            m = re.match(r"^(.*)-seed(\d+)$", name)
            point = m.group(1) if m else name
            try:
                with open(path) as f:
                    s = json.load(f)
            except (OSError, ValueError) as e:
                print(f"summarize.py: skipping {path}: {e}", file=sys.stderr)
                continue
            rest = [kv for kv in point.split(",") if not kv.startswith(("arch=", "eig_range="))]
            group = f"{s.get('arch', '?')} {s.get('eig_range', '?')}" + (" " + ",".join(rest) if rest else "")
            if prefix_dir:
                group = os.path.basename(os.path.normpath(d)) + ": " + group
            runs.append((group, s))
    return runs


def fmt(vals):
    if not vals:
        return "-"
    return f"{statistics.median(vals):.3f} / {max(vals):.3f} ({len(vals)})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--metric", default="scaled_acc", choices=["scaled_acc", "seq_acc", "token_acc"])
    ap.add_argument("--lengths", default="", help="comma-separated test lengths (default: every one found)")
    ap.add_argument("--mean", default="", help="A-B: also each run's mean over its test lengths in [A, B]")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--prefix-dir", action="store_true", help="start each grid point's name with its DIR's name")
    a = ap.parse_args()
    runs = load_runs(a.dirs, a.prefix_dir)
    done = [(g, s) for g, s in runs if s.get("status") in ("completed", "early_stopped")]
    if not done:
        print("summarize.py: no finished run under " + ", ".join(a.dirs), file=sys.stderr)
        return 1
    if a.lengths:
        lengths = [int(x) for x in a.lengths.split(",")]
    else:
        lengths = sorted({e["length"] for _, s in done for e in s.get("eval", [])})
    lo = hi = None
    if a.mean:
        lo, hi = (int(x) for x in a.mean.split("-"))
    groups = sorted({g for g, _ in runs})
    head = ["grid point"] + [f"T={t}" for t in lengths] + ([f"mean {lo}-{hi}"] if a.mean else []) + ["not finished"]
    lines = []
    if a.title:
        lines += [a.title, ""]
    lines += [f"{a.metric}: median / best (seeds) over finished runs", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        mine = [s for gg, s in done if gg == g]
        other = [s.get("status", "?") for gg, s in runs if gg == g and s.get("status") not in ("completed", "early_stopped")]
        row = [g]
        for t in lengths:
            vals = [e[a.metric] for s in mine for e in s.get("eval", []) if e["length"] == t and e.get(a.metric) is not None]
            row.append(fmt(vals))
        if a.mean:
            means = []
            for s in mine:
                v = [e[a.metric] for e in s.get("eval", []) if lo <= e["length"] <= hi and e.get(a.metric) is not None]
                if v:
                    means.append(sum(v) / len(v))
            row.append(fmt(means))
        row.append(", ".join(other) if other else "0")
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
