#!/usr/bin/env python3
"""fig_learning.py -- learning curves of one run (run.h5 /train and /eval).

    python3 analysis/fig_learning.py RUN_DIR [--out DIR] [--emit-json]

Writes learning_curves.png, panels sharing the step axis (wall-clock seconds on a top axis when the
file records /train/wall_s):
    loss            training cross-entropy, nats per scored token (log scale when it spans a factor 10)
    accuracy        the training batch's token accuracy, and the evaluation's sequence accuracy at each
                    tested length (markers at the evaluation steps)
    gradient norm   before clipping (log scale when it spans a factor 10), with the learning rate on a right-hand axis
    training length only when it varies from step to step (task.train_len a range)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvplot as rp  # noqa: E402


def _fmt_s(s):
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.2f} h"


def wide_positive(y):
    """Log scale only for positive data spanning at least a factor 10."""
    y = y[np.isfinite(y)]
    return len(y) > 0 and (y > 0).all() and y.max() / y.min() >= 10


def plot(f, info, out, emit_json=False):
    tr = rp.read_group(f, "train")
    if tr is None:
        print("note: /train is empty; no learning curves")
        return None
    step = tr["step"]
    ev = rp.read_group(f, "eval")
    length = tr.get("length")
    varies = length is not None and (length > 0).any() and len(np.unique(length[length > 0])) > 1
    n = 4 if varies else 3
    fig, axes = rp.plt.subplots(n, 1, figsize=(6.5, 1.9 * n + 0.6), sharex=True)
    ax = axes[0]
    loss = tr["loss"]
    ax.plot(step, loss, color=rp.COLORS[0], lw=1, label="training loss")
    if wide_positive(loss):
        ax.set_yscale("log")
    ax.set_ylabel("loss (nats / token)")

    ax = axes[1]
    ax.plot(step, tr["acc"], color="0.55", lw=0.8, label="training batch, token acc.")
    if ev is not None:
        rp.check_unit_interval(ev["seq_acc"], "/eval/seq_acc", info.path)
        for i, L in enumerate(np.unique(ev["length"])):
            m = ev["length"] == L
            ax.plot(ev["step"][m], ev["seq_acc"][m], marker=rp.MARKERS[i % len(rp.MARKERS)], ms=3.5, lw=1,
                    color=rp.COLORS[i % len(rp.COLORS)], label=f"eval seq. acc., length {int(L)}")
    else:
        ax.text(0.5, 0.5, "no evaluation yet", transform=ax.transAxes, ha="center", color="0.4")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("accuracy (fraction)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)

    ax = axes[2]
    gn = tr["grad_norm"]
    ax.plot(step, gn, color=rp.COLORS[2], lw=0.9, label="gradient norm")
    if wide_positive(gn):
        ax.set_yscale("log")
    ax.set_ylabel("gradient L2 norm")
    lr_ax = ax.twinx()
    lr_ax.plot(step, tr["lr"], color=rp.COLORS[4], lw=0.9, ls="--", label="learning rate")
    lr_ax.set_ylabel("learning rate", color=rp.COLORS[4])
    lr_ax.grid(False)
    lr_ax.spines["right"].set_visible(True)
    ax.legend([ax.get_lines()[0], lr_ax.get_lines()[0]], ["gradient norm (left)", "learning rate (right)"],
              loc="upper right")
    if varies:
        ax = axes[3]
        ax.plot(step, length, ".", ms=2, color=rp.COLORS[5], label="training length")
        ax.set_ylabel("batch length (tokens)")
    axes[-1].set_xlabel("optimiser step")

    wall = tr.get("wall_s")
    meta = {"steps": int(step[-1]), "wall_s": None}
    if wall is not None and np.isfinite(wall).all() and len(wall) > 1 and (np.diff(wall) > 0).all():
        meta["wall_s"] = float(wall[-1])
        top = axes[0].secondary_xaxis("top", functions=(lambda s: np.interp(s, step, wall),
                                                        lambda w: np.interp(w, wall, step)))
        top.xaxis.set_major_locator(rp.matplotlib.ticker.MaxNLocator(6))
        top.set_xlabel("wall-clock time (s)")
        when = f"{int(step[-1])} steps in {_fmt_s(wall[-1])} wall time"
    else:
        why = "this file predates /train/wall_s" if wall is None else "wall time incomplete"
        axes[0].text(0.99, 0.95, f"wall time not recorded ({why})", transform=axes[0].transAxes, ha="right",
                     va="top", fontsize=7, color="0.4")
        when = f"{int(step[-1])} steps"
    fig.suptitle(info.title(f"Learning curves ({when})"), y=1.0)
    fig.tight_layout()
    return rp.save(fig, out, "learning_curves", emit_json, meta)


def main(argv=None):
    ap = rp.common_args(argparse.ArgumentParser(description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("run_dir", help="run directory holding run.h5 (or the run.h5 itself)")
    a = ap.parse_args(argv)
    with rp.open_run(a.run_dir) as f:
        plot(f, rp.RunInfo(f, f.filename), a.out or rp.default_out(a.run_dir), a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
