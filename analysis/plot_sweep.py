#!/usr/bin/env python3
"""plot_sweep.py -- sequence accuracy vs length for every grid point of an `rwkvlab sweep`.

Reads SWEEP_DIR/sweep.json (written by `rwkvlab sweep`; per grid point and test length the median and
the best sequence accuracy across seeds, with the number of seeds) and writes SWEEP_DIR/plots/
sweep_acc_vs_length.png: one colour per grid point, median solid, best dashed.

    python3 analysis/plot_sweep.py results/<experiment>/sweep [--out DIR]
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir")
    ap.add_argument("--out", help="output folder (default SWEEP_DIR/plots)")
    args = ap.parse_args()
    path = os.path.join(args.sweep_dir, "sweep.json")
    if not os.path.exists(path):
        sys.exit(f"plot_sweep: {path} not found: run `rwkvlab sweep CONFIG --out {args.sweep_dir}` first")
    with open(path) as f:
        sw = json.load(f)
    out = args.out or os.path.join(args.sweep_dir, "plots")
    os.makedirs(out, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, p in enumerate(sw["points"]):
        # a length no finished seed has is null (older sweep.json files left the key out)
        rows = [l for l in p["lengths"] if l.get("seq_acc_median") is not None]
        if not rows:
            print(f"plot_sweep: {p['point']}: no finished run, skipped")
            continue
        x = [l["length"] for l in rows]
        c = f"C{i % 10}"
        ax.plot(x, [l["seq_acc_median"] for l in rows], "-o", color=c, label=f"{p['point']} (n={p['seeds']})")
        ax.plot(x, [l["seq_acc_best"] for l in rows], "--", color=c, alpha=0.6)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("test length")
    ax.set_ylabel("sequence accuracy (median solid, best dashed)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{sw.get('experiment', '')}: accuracy vs length across seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = os.path.join(out, "sweep_acc_vs_length.png")
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
