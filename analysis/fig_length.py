#!/usr/bin/env python3
"""fig_length.py -- accuracy versus sequence length of one run (from its run.h5 /eval).

    python3 analysis/fig_length.py RUN_DIR [--out DIR] [--emit-json]

Writes acc_vs_length.png: token accuracy (left) and sequence accuracy (right) at every tested length,
ticks at the tested lengths, the training length (or range) shaded; the last evaluation in colour with
markers, earlier evaluations as thin grey lines. Accuracies outside [0, 1] are refused.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvplot as rp  # noqa: E402


def plot(f, info, out, emit_json=False):
    ev = rp.read_group(f, "eval")
    if ev is None:
        print("note: /eval is empty (no evaluation yet); no acc_vs_length figure")
        return None
    step, length = ev["step"], ev["length"]
    rp.check_unit_interval(ev["token_acc"], "/eval/token_acc", info.path)
    rp.check_unit_interval(ev["seq_acc"], "/eval/seq_acc", info.path)
    steps = np.unique(step)
    last = steps[-1]
    lengths = np.unique(length)
    fig, axes = rp.plt.subplots(1, 2, figsize=(7.0, 3.2), sharey=True, constrained_layout=True)
    for ax, key, label in ((axes[0], "token_acc", "token accuracy"), (axes[1], "seq_acc", "sequence accuracy")):
        rp.length_axis(ax, lengths)
        rp.shade_training(ax, info.train_range, info.train_label())
        for s in steps[:-1]:
            m = step == s
            o = np.argsort(length[m])
            ax.plot(length[m][o], ev[key][m][o], color="0.75", lw=0.7, label="_earlier")
        m = step == last
        o = np.argsort(length[m])
        ax.plot(length[m][o], ev[key][m][o], "-o", color=rp.COLORS[0], ms=4, label=f"step {int(last)}")
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel(f"{label} (fraction)")
        ax.set_title(label)
    handles, labels = axes[1].get_legend_handles_labels()
    if len(steps) > 1:
        handles.append(rp.matplotlib.lines.Line2D([], [], color="0.75", lw=0.7))
        labels.append(f"earlier evaluations ({len(steps) - 1})")
    axes[1].legend(handles, labels, loc="best")
    fig.suptitle(info.title("Accuracy vs length"))
    meta = {"last_step": int(last), "lengths": [int(x) for x in lengths], "train_range": info.train_range}
    return rp.save(fig, out, "acc_vs_length", emit_json, meta)


def main(argv=None):
    ap = rp.common_args(argparse.ArgumentParser(description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("run_dir", help="run directory holding run.h5 (or the run.h5 itself)")
    a = ap.parse_args(argv)
    with rp.open_run(a.run_dir) as f:
        plot(f, rp.RunInfo(f, f.filename), a.out or rp.default_out(a.run_dir), a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
