#!/usr/bin/env python3
"""make_figures.py -- `make plots`: every figure of every run and sweep under a directory.

    python3 analysis/make_figures.py [DIR ...] [--emit-json]

For each run.h5 under DIR (default results/) the run's figures go to RUN_DIR/figures/ (plot_run.py);
for each sweep.json, the sweep's figure to SWEEP_DIR/figures/ (fig_sweep.py). A file that cannot be
plotted is reported and skipped; the exit status is 1 if any was, 0 otherwise.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fig_sweep  # noqa: E402
import plot_run  # noqa: E402
import rwkvplot as rp  # noqa: E402


def find(root):
    runs, sweeps = [], []
    for d, subdirs, files in os.walk(root):
        subdirs[:] = sorted(s for s in subdirs if s != "figures" and not s.startswith("."))
        if "run.h5" in files:
            runs.append(d)
        if "sweep.json" in files:
            sweeps.append(d)
    return runs, sweeps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", default=["results"], help="directories to search (default results/)")
    ap.add_argument("--emit-json", action="store_true", help="also write NAME.json beside each PNG")
    a = ap.parse_args(argv)
    failed, made = [], 0
    for root in a.dirs:
        if not os.path.isdir(root):
            raise rp.PlotError(f"'{root}' is not a directory (give results/ or a run or sweep directory)")
        runs, sweeps = find(root)
        if not runs and not sweeps:
            print(f"make_figures: nothing under {root}/ (no run.h5, no sweep.json): run `make demo` first")
        for d in runs:
            try:
                made += len(plot_run.plot_all(d, emit_json=a.emit_json))
            except (rp.PlotError, OSError, KeyError) as e:
                failed.append(d)
                print(f"make_figures: {d}: {e}", file=sys.stderr)
        for d in sweeps:
            try:
                made += 1 if fig_sweep.plot(d, os.path.join(d, "figures"), a.emit_json) else 0
            except (rp.PlotError, OSError, KeyError) as e:
                failed.append(d)
                print(f"make_figures: {d}: {e}", file=sys.stderr)
    print(f"make_figures: {made} figures; {len(failed)} director{'y' if len(failed) == 1 else 'ies'} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    rp.run_cli(main)
