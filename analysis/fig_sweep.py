#!/usr/bin/env python3
"""fig_sweep.py -- sequence accuracy vs length across the grid points and seeds of an `rwkvlab sweep`.

    python3 analysis/fig_sweep.py SWEEP_DIR [--out DIR] [--emit-json]

Reads SWEEP_DIR/sweep.json (median and best per grid point and length; written by `rwkvlab sweep`) and
each finished run's summary.json (the per-seed values). Writes sweep_acc_vs_length.png: one colour,
marker and line style per grid point; the median across seeds as a line, every seed as a small point
and the spread (min to max) as a vertical bar; the series are dodged sideways so that none hides
another, and a series identical to an earlier one says so in the legend. Ticks at the tested lengths;
the training length (or range) shaded. Values outside [0, 1] are refused with an error.
"""
import argparse
import json
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvplot as rp  # noqa: E402


def _run_dir(sweep_dir, d):
    for cand in (d, os.path.join(sweep_dir, os.path.basename(os.path.normpath(d)))):
        if cand and os.path.isdir(cand):
            return cand
    return None


def _summary(sweep_dir, run):
    d = _run_dir(sweep_dir, run.get("dir", ""))
    if not d or not os.path.exists(os.path.join(d, "summary.json")):
        return None
    with open(os.path.join(d, "summary.json")) as fp:
        return json.load(fp)


def load(sweep_dir):
    path = os.path.join(sweep_dir, "sweep.json")
    if not os.path.exists(path):
        raise rp.PlotError(f"{path} not found: run `rwkvlab sweep CONFIG --out {sweep_dir}` (or `--report`) first")
    try:
        with open(path) as fp:
            sw = json.load(fp)
    except ValueError as e:
        raise rp.PlotError(f"{path} is not valid JSON ({e}): rewrite it with `rwkvlab sweep CONFIG --report`")
    series, train, tasks, models = [], set(), set(), set()
    for p in sw.get("points", []):
        rows = [r for r in p.get("lengths", []) if r.get("seq_acc_median") is not None]
        where = f"{path}: point '{p.get('point')}'"
        for key in ("seq_acc_median", "seq_acc_best"):
            rp.check_unit_interval([r[key] for r in rows], key, where)
        seeds = {}  # seed -> {length: seq_acc}
        for run in p.get("runs", []):
            if run.get("status") not in ("completed", "early_stopped"):
                continue
            s = _summary(sweep_dir, run)
            if not s:
                continue
            vals = {int(e["length"]): e["seq_acc"] for e in s.get("eval", []) if e.get("seq_acc") is not None}
            rp.check_unit_interval(list(vals.values()), "seq_acc", f"{where}, seed {run.get('seed')} summary.json")
            seeds[run.get("seed")] = vals
            t, m = rp.run_labels(_run_dir(sweep_dir, run.get("dir", "")), s)
            tasks.add(t)
            models.add(m)
            if s.get("train_len"):
                train.add(str(s["train_len"]))
        series.append({"point": p.get("point", "?"), "n": int(p.get("seeds", len(seeds))),
                       "x": [int(r["length"]) for r in rows], "median": [float(r["seq_acc_median"]) for r in rows],
                       "best": [float(r["seq_acc_best"]) for r in rows], "seeds": seeds})
    return sw, series, train, tasks, models


def plot(sweep_dir, out, emit_json=False):
    sw, series, train, tasks, models = load(sweep_dir)
    shown = [s for s in series if s["x"]]
    for s in series:
        if not s["x"]:
            print(f"note: {s['point']}: no finished run; not plotted")
    if not shown:
        raise rp.PlotError(f"{sweep_dir}/sweep.json: no grid point has a finished run yet")
    lengths = sorted({x for s in shown for x in s["x"]})
    k = len(shown)
    fig, ax = rp.plt.subplots(figsize=(6.4, 3.6 + 0.17 * ((k + 3) // 2)))
    rp.length_axis(ax, lengths, "test sequence length (tokens)")
    rng = rp.parse_len_range(next(iter(train))) if len(train) == 1 else None
    if rng:
        rp.shade_training(ax, rng, f"training length {rng[0]}" if rng[0] == rng[1] else
                          f"training lengths {rng[0]}-{rng[1]}")
    meta = {"series": rp.draw_seed_series(ax, shown, lengths)}
    ax.set_ylim(-0.04, 1.04)
    ax.set_ylabel("sequence accuracy (fraction)")
    rp.seed_legend(ax)
    what = "; ".join(x for x in (f"task {', '.join(sorted(tasks))}" if tasks else "",
                                 "; ".join(sorted(models)) if len(models) == 1 else
                                 ", ".join(sorted({m.split(',')[0] for m in models}))) if x)
    ax.set_title(f"Sequence accuracy vs length across seeds (line: median)\nsweep {sw.get('experiment', '?')}: "
                 f"{what}; {len(shown)} grid points, {sum(len(s['seeds']) for s in shown)} finished runs",
                 fontsize="medium")
    fig.tight_layout()
    return rp.save(fig, out, "sweep_acc_vs_length", emit_json, meta)


def main(argv=None):
    ap = rp.common_args(argparse.ArgumentParser(description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter), "SWEEP_DIR")
    ap.add_argument("sweep_dir", help="the sweep's output directory, holding sweep.json")
    a = ap.parse_args(argv)
    plot(a.sweep_dir, a.out or os.path.join(a.sweep_dir, "figures"), a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
