#!/usr/bin/env python3
"""plot_sweep.py -- the figures of an `rwkvlab sweep` (kept for its old name; the figure is fig_sweep.py).

    python3 analysis/plot_sweep.py SWEEP_DIR [--out DIR] [--emit-json]

Writes SWEEP_DIR/figures/sweep_acc_vs_length.png (see fig_sweep.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fig_sweep  # noqa: E402
import rwkvplot as rp  # noqa: E402

if __name__ == "__main__":
    rp.run_cli(fig_sweep.main)
