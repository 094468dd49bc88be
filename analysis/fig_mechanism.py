#!/usr/bin/env python3
"""fig_mechanism.py -- negative transition eigenvalues next to accuracy, for every trained model of a suite.

    python3 analysis/fig_mechanism.py DIR [DIR ...] [--metric seq_acc|token_acc] [--length T]
            [--title TEXT] [--name NAME] [--out DIR] [--emit-json]

Reads every finished run under DIR/*/ (summary.json and run.h5's probe trajectories; analysis/eigstats.py)
and draws two panels: left, the distribution of each step's smallest transition eigenvalue on the probe
sequences (every position, layer and head; the probes are test sequences), one histogram per model
(architecture and eigenvalue range) pooled over its seeds, as a fraction of steps, with -0.5 marked; right,
one point per run: the fraction of its steps with an eigenvalue below -0.5 against its accuracy at length
T (default: the longest test length), one marker per model. Accuracies outside [0, 1] are refused.
Writes OUT/NAME.png (default the first DIR's parent/figures/mechanism.png).
"""
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eigstats  # noqa: E402
import rwkvplot as rp  # noqa: E402

BINS = np.linspace(-1.05, 1.05, 43)  # 0.05 wide; eigenvalues of these transitions lie in [-1, 1]


def load(dirs, metric, length):
    models, tasks, exps = {}, set(), set()
    for d in dirs:
        for sp in sorted(glob.glob(os.path.join(d, "*", "summary.json"))):
            rd = os.path.dirname(sp)
            s = rp.finished_summary(sp)
            if s is None:
                continue
            st = eigstats.run_stats(rd)
            if st is None:
                continue
            ev = [e for e in s.get("eval", []) if e.get(metric) is not None]
            if not ev:
                continue
            T = length or max(e["length"] for e in ev)
            acc = [e[metric] for e in ev if e["length"] == T]
            if not acc:
                raise rp.PlotError(f"{sp}: no {metric} at length {T}; its test lengths are "
                                   f"{sorted(e['length'] for e in ev)} (choose one with --length)")
            rp.check_unit_interval(acc, metric, sp)
            task, model = rp.run_labels(rd, s)
            model = rp.short_model(model)
            tasks.add(task)
            exps.add(s.get("experiment", "?"))
            key = rp.model_sort_key(s.get("arch"), s.get("eig_range"))
            m = models.setdefault(key, {"label": model, "runs": [], "T": set()})
            m["runs"].append({"seed": s.get("seed"), "dir": rd, "acc": float(acc[0]), "neg": st["neg"],
                              "mins": st["mins"]})
            m["T"].add(T)
    if not models:
        raise rp.PlotError(f"{', '.join(dirs)}: no finished run with probe trajectories (run.h5 "
                           f"/trajectories): run the suite (experiments/) first")
    return models, tasks, exps


def plot(dirs, out, name, metric="seq_acc", length=0, title="", emit_json=False):
    models, tasks, exps = load(dirs, metric, length)
    fig, (ah, asc) = rp.plt.subplots(1, 2, figsize=(11.5, 4.4 + 0.2 * len(models)),
                                     gridspec_kw={"width_ratios": [1.35, 1]})
    meta = {"models": []}
    centers = 0.5 * (BINS[1:] + BINS[:-1])
    for i, key in enumerate(sorted(models)):
        m = models[key]
        c, mk = rp.COLORS[i % len(rp.COLORS)], rp.MARKERS[i % len(rp.MARKERS)]
        allm = np.concatenate([r["mins"] for r in m["runs"]])
        counts, _ = np.histogram(np.clip(allm, BINS[0], BINS[-1]), BINS)
        frac = counts / max(len(allm), 1)
        label = f"{m['label']} ({len(m['runs'])} run{'s' if len(m['runs']) > 1 else ''})"
        ah.step(centers, frac, where="mid", color=c, lw=1.4, ls=rp.LINESTYLES[i % 4], label=label)
        xs, ys = [r["neg"] for r in m["runs"]], [r["acc"] for r in m["runs"]]
        asc.scatter(xs, ys, s=34, color=c, marker=mk, alpha=0.85, edgecolors="white", linewidths=0.6,
                    label=label, zorder=3)
        meta["models"].append({"label": m["label"], "hist": frac.tolist(), "neg": xs, "acc": ys,
                               "seeds": [r["seed"] for r in m["runs"]], "steps": int(len(allm))})
    pts = {}  # points drawn on top of each other are counted, so that none hides unnoticed
    for m in models.values():
        for r in m["runs"]:
            pts.setdefault((round(r["neg"], 2), round(r["acc"], 2)), []).append(r)
    for (x, y), rs in sorted(pts.items()):
        if len(rs) > 1:
            asc.annotate(f"{len(rs)} runs", (x, y), xytext=(6, 4), textcoords="offset points", fontsize="x-small",
                         color="0.25")
    ah.axvline(eigstats.NEG, color="0.4", ls="--", lw=0.9, label="-0.5")
    ah.set_xlabel("smallest eigenvalue of the step's transition")
    ah.set_ylabel("fraction of steps (probe positions x layers x heads)")
    ah.set_yscale("log")
    ah.set_xlim(-1.08, 1.08)
    ah.set_title("distribution over the probe sequences, seeds pooled", fontsize="medium")
    T = sorted({t for m in models.values() for t in m["T"]})
    asc.set_xlabel("fraction of steps with an eigenvalue < -0.5")
    asc.set_ylabel(f"{'sequence' if metric == 'seq_acc' else 'token'} accuracy at T = "
                   f"{', '.join(map(str, T))} (fraction)")
    asc.set_xlim(-0.04, 1.04)
    asc.set_ylim(-0.04, 1.04)
    asc.set_title("one point per run (seed)", fontsize="medium")
    handles, labels = ah.get_legend_handles_labels()
    head = title or ", ".join(sorted(exps))
    fig.suptitle(f"{head}: negative transition eigenvalues and accuracy\ntask {', '.join(sorted(tasks))}; "
                 f"{sum(len(m['runs']) for m in models.values())} trained runs", fontsize="medium")
    rp.legend_below(fig, handles, labels, 3)
    return rp.save(fig, out, name, emit_json, meta)


def main(argv=None):
    ap = rp.suite_parser(__doc__, "directories of run directories (each DIR/<run>/summary.json, run.h5)", "mechanism",
                         "the figure's first title line (default: the experiment names)")
    ap.add_argument("--metric", default="seq_acc", choices=["seq_acc", "token_acc"])
    ap.add_argument("--length", type=int, default=0, help="the test length of the accuracy (default: the longest)")
    a = ap.parse_args(argv)
    plot(a.dirs, rp.suite_out(a), a.name, a.metric, a.length, a.title, a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
