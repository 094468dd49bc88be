#!/usr/bin/env python3
"""mechanism.py -- transition eigenvalues of trained models next to their accuracy (issue 11, "Mechanism").

    python3 experiments/mechanism.py DIR [DIR ...] [--metric seq_acc|scaled_acc] [--length T] [--per-run] [--out FILE.md]

For every finished run under DIR/*/ (a sweep's run directories) it reads run.h5's probe trajectories
and summary.json's accuracy, and per run computes (analysis/eigstats.py), over all probes, positions t,
layers and heads:
  neg   the fraction of steps (t, layer, head) whose smallest eigenvalue is below -0.5;
  q05   the 5th percentile of the per-step smallest eigenvalue (how far below zero it goes, typically);
  min   the smallest eigenvalue seen;
  at token 0 / at other tokens: in layer 0, the median per-step smallest eigenvalue at input token 0 (parity:
        the bit 0; S5: the identity) and at every other token (parity: the bit 1; S5: the transpositions).
Rows are grid points (architecture, range and the other swept keys, as summarize.py); each cell is the
median over the group's seeds, with the accuracy (median / best) at --length (default: the longest test
length) beside it. Needs numpy and h5py. Exit 1 when no run had trajectories.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
try:
    from eigstats import run_stats  # noqa: E402  (the statistics, shared with analysis/fig_mechanism.py)
except ImportError as e:  # pragma: no cover
    print(f"mechanism.py needs numpy and h5py ({e}); try /usr/bin/python3 or `make deps`", file=sys.stderr)
    sys.exit(1)


def group_of(name, s):
    m = re.match(r"^(.*)-seed(\d+)$", name)
    point = m.group(1) if m else name
    rest = [kv for kv in point.split(",") if not kv.startswith(("arch=", "eig_range="))]
    return f"{s.get('arch', '?')} {s.get('eig_range', '?')}" + (" " + ",".join(rest) if rest else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--metric", default="seq_acc", choices=["seq_acc", "scaled_acc", "token_acc"])
    ap.add_argument("--length", type=int, default=0)
    ap.add_argument("--per-run", action="store_true", help="one row per run (seed) instead of per grid point")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    groups = {}
    for d in a.dirs:
        for sp in sorted(glob.glob(os.path.join(d, "*", "summary.json"))):
            rd = os.path.dirname(sp)
            with open(sp) as f:
                s = json.load(f)
            if s.get("status") not in ("completed", "early_stopped"):
                continue
            st = run_stats(rd)
            if st is None:
                continue
            ev = s.get("eval", [])
            T = a.length or max(e["length"] for e in ev)
            acc = [e[a.metric] for e in ev if e["length"] == T and e.get(a.metric) is not None]
            st["acc"] = acc[0] if acc else None
            st["T"] = T
            g = group_of(os.path.basename(rd), s)
            if a.per_run:
                g += f" seed {s.get('seed', '?')}"
            groups.setdefault(g, []).append(st)
    if not groups:
        print("mechanism.py: no finished run with trajectories under " + ", ".join(a.dirs), file=sys.stderr)
        return 1
    toks = [0, 1]
    med = lambda v: statistics.median(v) if v else float("nan")
    lines = [a.title, ""] if a.title else []
    lines += [f"accuracy = {a.metric} at the longest test length (median / best over seeds); eigenvalue columns: "
              "median over seeds of each run's statistic over its probe sequences (every step, layer and head)", ""]
    head = ["grid point", "seeds", "T", "accuracy", "steps with eig < -0.5", "5th pct of min eig", "min eig"] + \
           ["layer 0: median min eig at token 0", "at the other tokens"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in sorted(groups):
        v = groups[g]
        accs = [x["acc"] for x in v if x["acc"] is not None]
        row = [g, str(len(v)), str(v[0]["T"]),
               f"{med(accs):.3f} / {max(accs):.3f}" if accs else "-",
               f"{med([x['neg'] for x in v]):.3f}", f"{med([x['q05'] for x in v]):.3f}",
               f"{med([x['min'] for x in v]):.3f}"]
        for t in toks:
            tv = [x["tok"][t] for x in v if t in x["tok"]]
            row.append(f"{med(tv):.3f}" if tv else "-")
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.out + ".tmp", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
