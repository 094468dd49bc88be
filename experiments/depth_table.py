#!/usr/bin/env python3
"""depth_table.py -- the minimum depth reaching > 90% held-out sequence accuracy (Merrill et al. protocol).

    depth_table.py DIR... --lengths 4,8 --groups s5,a5,z60 --max-layers 4 [--title T] [--out FILE.md]
    depth_table.py --check DIR --group G --n N --layers L --range R   (exit 0 when that depth reaches it)

Runs are the directories experiments/depth_length.sh's sweeps write (DIR/<name=G,train_len=N,layers=L,
eig_range=R>-seed<S>/summary.json). A depth reaches the threshold when the median over its finished seeds
of the sequence accuracy at length n (the held-out 20%) is > 0.9. A cell prints the smallest such depth,
">L" when every depth up to L was run and none reached it, or "?" when the search has not got that far.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
from depthstats import THRESHOLD, min_depth, runs  # noqa: E402  (shared with analysis/fig_depth.py)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--check", default="")
    ap.add_argument("--group", default="")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--range", default="")
    ap.add_argument("--lengths", default="4,8")
    ap.add_argument("--groups", default="s5,a5,z60")
    ap.add_argument("--max-layers", type=int, default=4)
    ap.add_argument("--title", default="")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    if a.check:
        r = runs(a.check)
        v = [acc for (ar, rg, g, n, L), accs in r.items() for acc in accs
             if rg == a.range and g == a.group and n == a.n and L == a.layers]
        return 0 if v and statistics.median(v) > THRESHOLD else 1
    r = {}
    for d in a.dirs:
        r.update(runs(d))
    models = sorted({(k[0], k[1]) for k in r})
    lengths = [int(x) for x in a.lengths.split(",")]
    groups = a.groups.split(",")
    head = ["model"] + [f"{g.upper()} n={n}" for g in groups for n in lengths]
    lines = ([a.title, ""] if a.title else []) + [
        "minimum layers with held-out sequence accuracy > 0.9 (median over seeds); in brackets: that depth's median accuracy, "
        "or the best depth's when none reached it", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arch, rg in models:
        row = [f"{arch} {rg}"]
        for g in groups:
            for n in lengths:
                L, m, state = min_depth(r, arch, rg, g, n, a.max_layers)
                row.append({"reached": f"{L} ({m:.2f})" if m is not None else "?",
                            "none": f">{L} ({m:.2f})" if m is not None else "?", "searching": "?"}[state])
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.out + ".tmp", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
