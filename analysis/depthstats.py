"""depthstats.py -- the minimum depth reaching > 90% held-out sequence accuracy (Merrill et al. protocol),
shared by experiments/depth_table.py (table, and the suite's search) and analysis/fig_depth.py (figure).

runs(DIR) reads the run directories experiments/depth_length.sh's sweeps write
(DIR/<name=G,train_len=N,layers=L,eig_range=R>-seed<S>/summary.json) and returns
{(arch, eig_range, group, n, layers): [held-out sequence accuracy at length n, one per finished seed]}.
min_depth(r, arch, rng, group, n, max_layers) returns (depth, accuracy, state): state "reached" (depth =
the smallest depth whose median over seeds is > THRESHOLD, accuracy = that median), "none" (every depth up
to max_layers ran and none reached it; depth = max_layers, accuracy = the best depth's median) or
"searching" (the search has not got that far; depth and accuracy None).
"""
import glob
import json
import os
import re
import statistics

THRESHOLD = 0.9


def runs(d):
    out = {}
    for sp in glob.glob(os.path.join(d, "*", "summary.json")):
        name = os.path.basename(os.path.dirname(sp))
        kv = dict(x.split("=", 1) for x in re.sub(r"-seed\d+$", "", name).split(",") if "=" in x)
        with open(sp) as f:
            s = json.load(f)
        if s.get("status") not in ("completed", "early_stopped"):
            continue
        n = int(kv.get("train_len", 0))
        acc = [e["seq_acc"] for e in s.get("eval", []) if e["length"] == n]
        if not acc:
            continue
        key = (s.get("arch"), s.get("eig_range"), kv.get("name"), n, int(kv.get("layers", 0)))
        out.setdefault(key, []).append(acc[0])
    return out


def min_depth(r, arch, rng, group, n, max_layers):
    best = None
    for L in range(1, max_layers + 1):
        v = r.get((arch, rng, group, n, L))
        if not v:
            return None, None, "searching"
        m = statistics.median(v)
        if m > THRESHOLD:
            return L, m, "reached"
        best = m if best is None or m > best else best
    return max_layers, best, "none"
