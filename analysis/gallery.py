#!/usr/bin/env python3
"""gallery.py -- the figures a newcomer should see first, from the runs of `make demo` (and the README's
seed sweep when it has been run).

    python3 analysis/gallery.py [--results DIR] [--out DIR] [--emit-json]

Looks in DIR (default results/) for the newest finished run of demo_s5_swaps and demo_s3 and for the
sweep results/s5_swaps_eig_sweep/sweep, and writes to --out (default results/gallery/):
    1_s5_acc_vs_length.png      S5 under swaps, one RWKV-7 layer with the extended range: accuracy vs
                                length, generalising beyond the shaded training length
    2_s5_eigenvalues.png        the same model's transition eigenvalues along a probe, tokens marked:
                                the transposition tokens sit near -1 (reflections), the identity near 1
    3_s3_learning_curves.png    S3 (rotations needed), two layers: loss, evaluation accuracy, wall time
    4_s5_swaps_models.png       S5 under swaps for every model (DeltaNet, RWKV-7 in both ranges, RWKV-6)
                                and 1, 2, 4 layers across seeds, if experiments/s5_swaps.sh has been run;
    or 4_sweep_eig_range.png    otherwise standard vs extended range across seeds, if the sweep
                                `rwkvlab sweep configs/s5_swaps_eig_sweep.ini --jobs 2` has been run
A figure whose run is missing is skipped with a note naming the command that makes the run.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fig_eigen  # noqa: E402
import fig_learning  # noqa: E402
import fig_length  # noqa: E402
import fig_suite  # noqa: E402
import fig_sweep  # noqa: E402
import rwkvplot as rp  # noqa: E402


def newest_run(results, experiment):
    """The newest run directory of `experiment` with a finished summary.json and a run.h5, or None."""
    base = os.path.join(results, experiment)
    if not os.path.isdir(base):
        return None
    best = None
    for name in os.listdir(base):
        d = os.path.join(base, name)
        try:
            with open(os.path.join(d, "summary.json")) as fp:
                s = json.load(fp)
        except (OSError, ValueError):
            continue
        if s.get("status") in ("completed", "early_stopped") and os.path.exists(os.path.join(d, "run.h5")):
            t = os.path.getmtime(os.path.join(d, "summary.json"))
            if best is None or t > best[0]:
                best = (t, d)
    return best[1] if best else None


def _rename(out, name, new):
    for ext in (".png", ".json"):
        src = os.path.join(out, name + ext)
        if os.path.exists(src):
            os.replace(src, os.path.join(out, new + ext))
    print(f"  (as {os.path.join(out, new + '.png')})")
    return os.path.join(out, new + ".png")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results", help="where the runs are (default results/)")
    ap.add_argument("--out", help="output directory (default RESULTS/gallery)")
    ap.add_argument("--emit-json", action="store_true", help="also write NAME.json beside each PNG")
    a = ap.parse_args(argv)
    out = a.out or os.path.join(a.results, "gallery")
    made = []
    s5 = newest_run(a.results, "demo_s5_swaps")
    if s5:
        with rp.open_run(s5) as f:
            info = rp.RunInfo(f, f.filename)
            fig_length.plot(f, info, out, a.emit_json)
            made.append(_rename(out, "acc_vs_length", "1_s5_acc_vs_length"))
            if rp.probes_of(f):
                fig_eigen.plot_time(f, info, out, rp.probes_of(f)[0], tmax=40, emit_json=a.emit_json)
                made.append(_rename(out, f"probe{rp.probes_of(f)[0]}_eig_time", "2_s5_eigenvalues"))
    else:
        print(f"note: no finished demo_s5_swaps run under {a.results}/: run `make demo` (figures 1 and 2)")
    s3 = newest_run(a.results, "demo_s3")
    if s3:
        with rp.open_run(s3) as f:
            fig_learning.plot(f, rp.RunInfo(f, f.filename), out, a.emit_json)
            made.append(_rename(out, "learning_curves", "3_s3_learning_curves"))
    else:
        print(f"note: no finished demo_s3 run under {a.results}/: run `make demo` (figure 3)")
    sweep = os.path.join(a.results, "s5_swaps_eig_sweep", "sweep")
    suite = [os.path.join(a.results, "s5_swaps", d) for d in ("deltanet", "rwkv7", "rwkv6")]
    if any(os.path.isdir(d) for d in suite):
        fig_suite.plot([d for d in suite if os.path.isdir(d)], out, "4_s5_swaps_models", "seq_acc",
                       "S5 under swaps, every model (experiments/s5_swaps.sh)", a.emit_json)
        made.append(os.path.join(out, "4_s5_swaps_models.png"))
    elif os.path.exists(os.path.join(sweep, "sweep.json")):
        fig_sweep.plot(sweep, out, a.emit_json)
        made.append(_rename(out, "sweep_acc_vs_length", "4_sweep_eig_range"))
    else:
        print("note: no experiments/s5_swaps.sh results (about 20 minutes on 2 cores) and no s5_swaps_eig_sweep "
              "sweep (`build/rwkvlab sweep configs/s5_swaps_eig_sweep.ini --jobs 2`, about 5 minutes): either makes "
              "figure 4")
    print(f"gallery: {len(made)} figure(s) in {out}/" if made else "gallery: nothing to show yet")
    return 0


if __name__ == "__main__":
    rp.run_cli(main)
