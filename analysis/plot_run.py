#!/usr/bin/env python3
"""plot_run.py -- every figure of one rwkvlab run, read from its run.h5 only (schema: analysis/README.md).

    python3 analysis/plot_run.py RUN_DIR [--out DIR] [--probe P] [--emit-json]

RUN_DIR is a results/<experiment>/<run-id>/ directory (or the run.h5 itself). PNGs go to DIR (default
RUN_DIR/figures):
    learning_curves.png                       fig_learning.py
    acc_vs_length.png                         fig_length.py
    probe<P>_eig_hist.png, probe<P>_eig_time.png   fig_eigen.py
    probe<P>_state.png, probe<P>_state_norm.png    fig_state.py
Parts of the file that are absent (no eval yet, no trajectories) are skipped with a note. The file is
opened without HDF5 file locking, so a run in progress can be plotted.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fig_eigen  # noqa: E402
import fig_learning  # noqa: E402
import fig_length  # noqa: E402
import fig_state  # noqa: E402
import rwkvplot as rp  # noqa: E402


def plot_all(run, out=None, probe=None, emit_json=False):
    """All figures of one run; returns the paths written."""
    out = out or rp.default_out(run)
    paths = []
    with rp.open_run(run) as f:
        info = rp.RunInfo(f, f.filename)
        paths.append(fig_learning.plot(f, info, out, emit_json))
        paths.append(fig_length.plot(f, info, out, emit_json))
        probes = rp.probes_of(f)
        if not probes:
            print("note: no /trajectories (written when a run ends or is interrupted); no eigenvalue or state figures")
        for p in probes if probe is None else [probe]:
            paths.append(fig_eigen.plot_hist(f, info, out, p, emit_json=emit_json))
            paths.append(fig_eigen.plot_time(f, info, out, p, emit_json=emit_json))
            paths.append(fig_state.plot_state(f, info, out, p, emit_json=emit_json))
            paths.append(fig_state.plot_norm(f, info, out, p, emit_json=emit_json))
    return [p for p in paths if p]


def main(argv=None):
    ap = rp.common_args(argparse.ArgumentParser(description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("run_dir", help="run directory containing run.h5 (or the run.h5 file)")
    ap.add_argument("--probe", type=int, default=None, help="only this trajectory probe (default: every probe)")
    a = ap.parse_args(argv)
    plot_all(a.run_dir, a.out, a.probe, a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
