#!/usr/bin/env python3
"""fig_suite.py -- an experiment suite's figure: accuracy vs length for every model, across seeds.

    python3 analysis/fig_suite.py DIR [DIR ...] [--metric seq_acc|token_acc] [--title TEXT]
            [--name NAME] [--out DIR] [--emit-json]

Reads every DIR/*/summary.json and config.ini (the run directories that `rwkvlab sweep` writes, as
experiments/summarize.py does), keeps the finished runs (completed or early stopped), and draws one panel
per setting other than the model (the swept keys of the directory name without the architecture and the
eigenvalue range, e.g. `layers=2`; one panel when there is none) and, in each, one series per model
(architecture and eigenvalue range): the median over seeds as a line (the median of an even count is the
mean of the two middle values), every seed as a point, the spread as a bar, coinciding series marked.
Ticks at the tested lengths, the training length or range shaded; values outside [0, 1] are refused.
Writes OUT/NAME.png (default DIR's parent/figures/suite_<metric>.png).
"""
import glob
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvplot as rp  # noqa: E402

METRICS = {"seq_acc": "sequence accuracy (fraction)", "token_acc": "token accuracy (fraction)"}


def load(dirs, metric):
    """{panel: {model_key: series}}, the tasks, the training ranges and the experiment names."""
    panels, tasks, train, exps = {}, set(), set(), set()
    paths = [p for d in dirs for p in sorted(glob.glob(os.path.join(d, "*", "summary.json")))]
    if not paths:  # a DIR without runs (a figures/ folder, a table) is passed over when another has runs
        raise rp.PlotError(f"{', '.join(dirs)}: no run directory with a summary.json: run the suite "
                           f"(experiments/) first")
    for path in paths:
        run_dir = os.path.dirname(path)
        s = rp.finished_summary(path)
        if s is None:
            continue
        m = re.match(r"^(.*)-seed(\d+)$", os.path.basename(run_dir))
        point = m.group(1) if m else os.path.basename(run_dir)
        panel = ",".join(kv for kv in point.split(",") if not kv.startswith(("arch=", "eig_range=")))
        vals = {int(e["length"]): e[metric] for e in s.get("eval", []) if e.get(metric) is not None}
        rp.check_unit_interval(list(vals.values()), metric, path)
        task, model = rp.run_labels(run_dir, s)
        model = rp.short_model(model)
        tasks.add(task)
        exps.add(s.get("experiment", "?"))
        if s.get("train_len"):
            train.add(str(s["train_len"]))
        key = rp.model_sort_key(s.get("arch"), s.get("eig_range"))
        ser = panels.setdefault(panel, {}).setdefault(key, {"point": f"{s.get('arch')}:{s.get('eig_range')}",
                                                            "label": model, "seeds": {}})
        ser["seeds"][s.get("seed", len(ser["seeds"]))] = vals
    if not panels:
        raise rp.PlotError(", ".join(dirs) + ": no finished run yet (status completed or early_stopped)")
    for series in panels.values():
        for ser in series.values():
            xs = sorted({L for v in ser["seeds"].values() for L in v})
            ser["x"] = xs
            ser["median"] = [statistics.median([v[L] for v in ser["seeds"].values() if L in v]) for L in xs]
            ser["n"] = len(ser["seeds"])
    return panels, tasks, train, exps


def _panel_sort(p):
    nums = [int(x) for x in re.findall(r"\d+", p)]
    return (nums, p)


def plot(dirs, out, name, metric="seq_acc", title="", emit_json=False):
    panels, tasks, train, exps = load(dirs, metric)
    names = sorted(panels, key=_panel_sort)
    k = len(names)
    nser = max(len(v) for v in panels.values())
    fig, axes = rp.plt.subplots(1, k, figsize=(min(max(5.2 * k, 6.4), 13.5), 3.6 + 0.26 * ((nser + 2 + min(k, 3) - 1) // min(k, 3))), sharey=True, squeeze=False)
    rng = rp.parse_len_range(next(iter(train))) if len(train) == 1 else None
    meta = {"panels": []}
    for ax, p in zip(axes[0], names):
        shown = [panels[p][key] for key in sorted(panels[p])]
        lengths = sorted({x for s in shown for x in s["x"]})
        rp.length_axis(ax, lengths, "test sequence length (tokens)")
        if rng:
            rp.shade_training(ax, rng, f"training length {rng[0]}" if rng[0] == rng[1] else
                              f"training lengths {rng[0]}-{rng[1]}")
        drawn = rp.draw_seed_series(ax, shown, lengths)
        ax.set_ylim(-0.04, 1.04)
        ax.set_title(", ".join(("task " + kv[5:]) if kv.startswith("name=") else kv.replace("=", " = ")
                               for kv in p.split(",")) if p else "", fontsize="medium")
        meta["panels"].append({"panel": p, "series": drawn})
    axes[0][0].set_ylabel(METRICS[metric])
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(rp.matplotlib.lines.Line2D([], [], color="0.3", marker="o", ls="", ms=3))
    labels.append("one seed (bar: min to max)")
    ncol = min(k, 3)
    head = title or ", ".join(sorted(exps))
    fig.suptitle(f"{head}: {METRICS[metric].split(' (')[0]} vs length, median over seeds\n"
                 f"task {', '.join(sorted(tasks))}; {sum(s['n'] for v in panels.values() for s in v.values())} "
                 f"finished runs", fontsize="medium")
    rp.legend_below(fig, handles, labels, ncol, max_frac=0.5)
    return rp.save(fig, out, name, emit_json, meta)


def main(argv=None):
    ap = rp.suite_parser(__doc__, "directories of run directories (each DIR/<run>/summary.json)", "",
                         "the figure's first title line (default: the experiment names)")
    ap.add_argument("--metric", default="seq_acc", choices=sorted(METRICS))
    a = ap.parse_args(argv)
    plot(a.dirs, rp.suite_out(a), a.name or f"suite_{a.metric}", a.metric, a.title, a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
