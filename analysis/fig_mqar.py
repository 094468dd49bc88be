#!/usr/bin/env python3
"""fig_mqar.py -- MQAR accuracy versus recurrent state size, one series per learning-rate multiplier
(experiments/mqar.sh: the RWKV-7 paper's grid, lr = lr_mult / (sqrt(d) T)).

    python3 analysis/fig_mqar.py DIR [DIR ...] [--metric token_acc|seq_acc] [--published S:A,...]
            [--title TEXT] [--name NAME] [--out DIR] [--emit-json]

Reads every DIR/*/summary.json and config.ini (the run directories of `rwkvlab sweep`, e.g.
results/mqar/d64 and results/mqar/d128) and keeps the finished runs (completed or early stopped). x is
the run's recurrent state size (summary.json `state_size`, L*H*N*N: the matrix states, as the paper
counts it), on a log2 axis with a tick at every size that ran; y the accuracy at the training length T.
One series per lr_mult = lr * sqrt(d_model) * T (rounded to 2 significant digits): the median over seeds
as a line, every seed as a point, the spread as a bar; a dashed line joins the best lr at each size (the
paper reports the best lr). --published draws reference accuracies as open stars (default: the RWKV-7
paper's 0.94 at state 8192 and 0.99 at 16384, with its own init variant). Runs that are not finished are
left out and counted in the title; accuracies outside [0, 1] are refused.
Writes OUT/NAME.png (default the first DIR's parent/figures/mqar.png).
"""
import glob
import math
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvplot as rp  # noqa: E402

PUBLISHED = "8192:0.94,16384:0.99"  # RWKV-7 paper, MQAR with its init variant (configs/mqar_rwkv7.ini)
METRICS = {"token_acc": "token accuracy at T (fraction of queries)", "seq_acc": "sequence accuracy at T (fraction)"}


def _num(cfg, sec, key, path):
    try:
        return float(cfg[sec][key])
    except (KeyError, ValueError):
        raise rp.PlotError(f"{path}: no numeric [{sec}] {key}: not a run directory of rwkvlab sweep "
                           f"(run experiments/mqar.sh again)")


def _sig2(x):
    return float(f"{x:.2g}")


def load(dirs, metric):
    """({lr_mult: {state: {seed: acc}}}, the labels, unfinished count, per-run rows)."""
    paths = [p for d in dirs for p in sorted(glob.glob(os.path.join(d, "*", "summary.json")))]
    if not paths:
        raise rp.PlotError(f"{', '.join(dirs)}: no run directory with a summary.json: run experiments/mqar.sh first")
    series, models, tasks, pending, rows = {}, set(), set(), 0, []
    for path in paths:
        run_dir = os.path.dirname(path)
        s = rp.finished_summary(path)
        if s is None:
            pending += 1
            continue
        try:
            with open(os.path.join(run_dir, "config.ini")) as fp:
                cfg = rp.parse_config(fp.read())
        except OSError:
            raise rp.PlotError(f"{run_dir}: no config.ini (every run directory of rwkvlab sweep has one)")
        d, lr = _num(cfg, "model", "d_model", run_dir), _num(cfg, "train", "lr", run_dir)
        T = int(_num(cfg, "task", "train_len", run_dir))
        state = s.get("state_size")
        if not isinstance(state, (int, float)) or state <= 0:
            raise rp.PlotError(f"{path}: no state_size: written by an older rwkvlab; run the sweep again")
        vals = {int(e["length"]): e.get(metric) for e in s.get("eval", [])}
        if vals.get(T) is None:
            raise rp.PlotError(f"{path}: no {metric} at the training length {T}: not an MQAR run of mqar.sh")
        rp.check_unit_interval([vals[T]], metric, path)
        mult = _sig2(lr * math.sqrt(d) * T)
        m = re.match(r"^.*-seed(\d+)$", os.path.basename(run_dir))
        seed = int(m.group(1)) if m else s.get("seed", 0)
        series.setdefault(mult, {}).setdefault(int(state), {})[seed] = vals[T]
        task, model = rp.run_labels(run_dir, s)
        tasks.add(f"task {task}, (T, K) = ({T}, {cfg.get('task', {}).get('num_kv', '?')})")
        models.add(model + (f", init {cfg['model']['init']}" if cfg.get("model", {}).get("init") else ""))
        rows.append({"run": run_dir, "state": int(state), "lr_mult": mult, "seed": seed, "acc": vals[T],
                     "status": s.get("status"), "steps_done": s.get("steps_done")})
    if not series:
        raise rp.PlotError(f"{', '.join(dirs)}: no finished run yet (status completed or early_stopped)")
    return series, sorted(tasks), sorted(models), pending, rows


def plot(dirs, out, name, metric="token_acc", published=PUBLISHED, title="", emit_json=False):
    series, tasks, models, pending, rows = load(dirs, metric)
    states = sorted({st for per in series.values() for st in per})
    fig, ax = rp.plt.subplots(figsize=(6.2, 4.4))
    ax.set_xscale("log", base=2)  # even when the sizes span less than the factor 4 that length_axis wants
    rp.length_axis(ax, states, "recurrent state size L*H*N*N (numbers)")
    shown = []
    for mult in sorted(series):
        per = series[mult]
        xs = sorted(per)
        shown.append({"point": f"lr_mult={mult:g}", "label": f"lr_mult {mult:g}", "x": xs,
                      "n": max(len(per[x]) for x in xs),
                      "median": [statistics.median(per[x].values()) for x in xs],
                      "seeds": {sd: {x: per[x][sd] for x in xs if sd in per[x]}
                                for sd in sorted({sd for x in xs for sd in per[x]})}})
    drawn = rp.draw_seed_series(ax, shown, states)
    best = [max(s["median"][s["x"].index(st)] for s in shown if st in s["x"]) for st in states]
    ax.plot(states, best, ls="--", color="0.35", lw=1.0, label="best lr at each size (median over seeds)", zorder=2)
    pub = []
    for item in filter(None, (published or "").split(",")):
        try:
            st, acc = item.split(":")
            pub.append((int(st), float(acc)))
        except ValueError:
            raise rp.PlotError(f"--published {published!r}: write STATE:ACC pairs, e.g. {PUBLISHED}")
    if pub:
        rp.check_unit_interval([a for _, a in pub], "--published accuracy", "--published")
        ax.scatter([p[0] for p in pub], [p[1] for p in pub], marker="*", s=110, facecolors="white",
                   edgecolors="black", linewidths=1.0, zorder=5, label="RWKV-7 paper (its init variant)")
    ax.set_ylim(-0.03, 1.05)
    ax.set_ylabel(METRICS.get(metric, metric))
    head = title or "MQAR accuracy versus recurrent state size"
    fig.suptitle(f"{head}: {'; '.join(tasks)}\n{'; '.join(models)}"
                 + (f"\n({pending} run{'s' if pending > 1 else ''} not finished, left out)" if pending else ""),
                 fontsize="medium")
    rp.seed_legend(ax, ncol=2)
    meta = {"series": drawn, "best": {"x": states, "y": best}, "published": pub, "runs": rows, "pending": pending}
    return rp.save(fig, out, name, emit_json, meta)


def main(argv=None):
    ap = rp.suite_parser(__doc__, "experiments/mqar.sh's per-d_model sweep directories", "mqar")
    ap.add_argument("--metric", default="token_acc", choices=sorted(METRICS))
    ap.add_argument("--published", default=PUBLISHED, help=f"STATE:ACC,... reference points ('' for none; "
                                                           f"default {PUBLISHED})")
    a = ap.parse_args(argv)
    plot(a.dirs, rp.suite_out(a), a.name, a.metric, a.published, a.title, a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
