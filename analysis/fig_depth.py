#!/usr/bin/env python3
"""fig_depth.py -- depth versus length: the minimum number of layers reaching > 90% held-out sequence
accuracy, per group, length and model (Merrill et al. protocol; experiments/depth_length.sh).

    python3 analysis/fig_depth.py DIR [DIR ...] [--max-layers 4] [--title TEXT] [--name NAME] [--out DIR]
            [--emit-json]

Reads the run directories of experiments/depth_length.sh (analysis/depthstats.py) and draws one panel per
group (S5, A5, Z60, ...): x the sequence length n, y the minimum depth (1 .. --max-layers), one marker and
colour per model (architecture and eigenvalue range), dodged sideways so that none hides another. A cell
where no depth up to --max-layers reached the threshold is drawn as an open marker on the row "> L" with
the best depth's accuracy written beside it; a cell whose search has not finished is left out and counted
in the panel title. Writes OUT/NAME.png (default the first DIR's parent/figures/depth_length.png).
"""
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import depthstats  # noqa: E402
import rwkvplot as rp  # noqa: E402

GROUP_ORDER = ["s5", "a5", "a4xz5", "z60", "z5", "s3", "a4"]


def plot(dirs, out, name, max_layers=4, title="", emit_json=False):
    r = {}
    for d in dirs:
        r.update(depthstats.runs(d))
    if not r:
        raise rp.PlotError(f"{', '.join(dirs)}: no finished run of experiments/depth_length.sh (DIR/<name=G,"
                           f"train_len=N,layers=L,eig_range=R>-seed<S>/summary.json): run the suite first")
    models = sorted({(k[0], k[1]) for k in r}, key=lambda m: rp.model_sort_key(*m))
    groups = sorted({k[2] for k in r}, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g))
    lengths = sorted({k[3] for k in r})
    k = len(models)
    fig, axes = rp.plt.subplots(1, len(groups), figsize=(min(4.3 * len(groups) + 1, 13.5), 3.9 + 0.2 * k),
                                sharey=True, squeeze=False)
    meta = {"panels": []}
    for ax, g in zip(axes[0], groups):
        xi = {n: i for i, n in enumerate(lengths)}
        pending, cells = 0, []
        for j, (arch, rng) in enumerate(models):
            c, mk = rp.COLORS[j % len(rp.COLORS)], rp.MARKERS[j % len(rp.MARKERS)]
            lab = f"{rp.ARCH_NAMES.get(arch, arch)} {rng}"
            off = (j - (k - 1) / 2) * 0.6 / max(k, 1)
            for n in lengths:
                L, acc, state = depthstats.min_depth(r, arch, rng, g, n, max_layers)
                if state == "searching":
                    pending += 1 if any(key[:4] == (arch, rng, g, n) for key in r) else 0
                    continue
                y = L if state == "reached" else max_layers + 1
                ax.scatter([xi[n] + off], [y], s=42, marker=mk, color=c if state == "reached" else "white",
                           edgecolors=c, linewidths=1.3, zorder=3, label=f"_{lab}")
                if state == "none":
                    ax.annotate(f"{acc:.2f}", (xi[n] + off, y), xytext=(0, -11), textcoords="offset points",
                                ha="center", fontsize="xx-small", color=c)
                cells.append({"model": lab, "n": n, "depth": L, "state": state, "acc": acc})
        ax.set_xticks(range(len(lengths)))
        ax.set_xticklabels([str(n) for n in lengths])
        ax.set_xlim(-0.6, len(lengths) - 0.4)
        ax.set_xlabel("sequence length n (tokens)")
        ax.set_title(g.upper() + (f" ({pending} search{'es' if pending > 1 else ''} unfinished)" if pending else ""), fontsize="medium")
        meta["panels"].append({"group": g, "cells": cells})
    ax0 = axes[0][0]
    ax0.set_yticks(list(range(1, max_layers + 2)))
    ax0.set_yticklabels([str(L) for L in range(1, max_layers + 1)] + [f"> {max_layers}"])
    ax0.set_ylim(0.5, max_layers + 1.6)
    ax0.set_ylabel(f"minimum layers for > {depthstats.THRESHOLD:.0%} held-out seq. acc.")
    for ax in axes[0]:
        ax.axhspan(max_layers + 0.5, max_layers + 1.6, color="0.93", lw=0, zorder=0)
    shown = {c["model"] for p in meta["panels"] for c in p["cells"]}
    handles, labels = [], []
    for j, (arch, rng) in enumerate(models):  # filled proxies: the legend names the model, not the state
        lab = f"{rp.ARCH_NAMES.get(arch, arch)} {rng}"
        if lab in shown:
            handles.append(rp.matplotlib.lines.Line2D([], [], ls="", marker=rp.MARKERS[j % len(rp.MARKERS)],
                                                      color=rp.COLORS[j % len(rp.COLORS)], ms=6))
            labels.append(lab)
    fig.suptitle(f"{title or 'Depth versus length'}: the smallest depth reaching > {depthstats.THRESHOLD:.0%} "
                 f"held-out sequence accuracy\nfilled: reached; open on the '> {max_layers}' row: no depth up "
                 f"to {max_layers} did (the best depth's accuracy below it)", fontsize="medium")
    rp.legend_below(fig, handles, labels, min(4, len(labels)))
    return rp.save(fig, out, name, emit_json, meta)


def main(argv=None):
    ap = rp.suite_parser(__doc__, "experiments/depth_length.sh's per-architecture run directories", "depth_length")
    ap.add_argument("--max-layers", type=int, default=4)
    a = ap.parse_args(argv)
    plot(a.dirs, rp.suite_out(a), a.name, a.max_layers, a.title, a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
