"""eigstats.py -- transition-eigenvalue statistics of a trained run (the "mechanism" numbers), shared by
experiments/mechanism.py (tables) and analysis/fig_mechanism.py (figure).

run_stats(RUN_DIR) reads RUN_DIR/run.h5's probe trajectories (/trajectories/probe<p>/tokens and
layer<l>/eig_real [T,H,N]: the real eigenvalues of each step's transition; they are real for every
architecture here, analysis/README.md) and returns, over all probes, positions t, layers and heads:
  mins  every step's smallest eigenvalue (one per (probe, t, layer, head)), a float array;
  neg   the fraction of those below -0.5;
  q05   their 5th percentile (how far below zero they go, typically);
  min   the smallest eigenvalue seen;
  tok   {0: ..., 1: ...}: in layer 0, the median smallest eigenvalue at input token 0 (parity: the bit 0;
        S5: the identity) and at every other token (parity: the bit 1; S5: the transpositions).
None when the run has no run.h5 or no trajectories. Needs numpy and h5py.
"""
import os

import h5py
import numpy as np

NEG = -0.5  # "below zero in a way that matters": the threshold the tables and figures count


def run_stats(run_dir):
    path = os.path.join(run_dir, "run.h5")
    if not os.path.exists(path):
        return None
    mins, by_tok = [], {}
    with h5py.File(path, "r", locking=False) as f:
        if "trajectories" not in f:
            return None
        for pname in sorted(f["trajectories"]):
            p = f["trajectories"][pname]
            toks = p["tokens"][:]
            for lname in sorted(k for k in p if k.startswith("layer")):
                ev = p[lname]["eig_real"][:]  # [T,H,N]
                m = ev.min(axis=2)  # [T,H]: each step's smallest eigenvalue per head
                mins.append(m.reshape(-1))
                if lname == "layer0":
                    for t, tok in enumerate(toks):
                        by_tok.setdefault(0 if int(tok) == 0 else 1, []).extend(m[t].tolist())
    if not mins:
        return None
    allm = np.concatenate(mins)
    return {
        "mins": allm,
        "neg": float((allm < NEG).mean()),
        "q05": float(np.percentile(allm, 5)),
        "min": float(allm.min()),
        "tok": {k: float(np.median(v)) for k, v in by_tok.items()},
    }
