#!/usr/bin/env python3
"""fig_state.py -- the recurrent matrix state along a probe sequence (run.h5 /trajectories).

    python3 analysis/fig_state.py RUN_DIR [--probe P] [--t T] [--out DIR] [--emit-json]

    probe<P>_state.png        each head's state matrix S after token t (default: the last token), one
                              panel per layer (rows) and head (columns); rows of S are the value index i,
                              columns the key index j; each head has its own symmetric colour scale and
                              colour bar (heads differ in scale by orders of magnitude)
    probe<P>_state_norm.png   ||S||_F of each head vs position, one panel per layer
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvplot as rp  # noqa: E402


def _probe(f, probe):
    key = f"trajectories/probe{probe}"
    if key not in f:
        raise rp.PlotError(f"{f.filename}: no /{key} (probes present: {rp.probes_of(f) or 'none'})")
    pg = f[key]
    layers = rp.layers_of(pg)
    if not layers:
        raise rp.PlotError(f"{f.filename}: /{key} has no layer groups")
    return pg, layers


def plot_state(f, info, out, probe=0, t=None, emit_json=False):
    pg, layers = _probe(f, probe)
    L = len(layers)
    T, H, Nv, N = pg[layers[0]]["state"].shape
    t = T - 1 if t is None else (t if t >= 0 else T + t)
    if not 0 <= t < T:
        raise rp.PlotError(f"--t {t}: the probe has positions 0..{T - 1}")
    tok = int(pg["tokens"][t])
    side = 1.55 if max(N, Nv) <= 32 else 2.2
    fig, axes = rp.plt.subplots(L, H, figsize=(side * H + 0.8, side * L + 0.9), squeeze=False,
                                constrained_layout=True)
    scales = []
    for li, ln in enumerate(layers):
        S = pg[ln]["state"][t]  # (H,Nv,N)
        for h in range(H):
            ax = axes[li, h]
            v = float(np.nanmax(np.abs(S[h]))) or 1.0
            scales.append({"layer": li, "head": h, "vmax": v})
            im = ax.imshow(S[h], cmap="RdBu_r", vmin=-v, vmax=v)
            cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02, aspect=15)
            cb.ax.tick_params(labelsize=6)
            ax.set_xticks([0, N - 1])
            ax.set_yticks([0, Nv - 1])
            ax.grid(False)
            if li == 0:
                ax.set_title(f"head {h}")
            if h == 0:
                ax.set_ylabel(f"layer {li}\nvalue index i")
            if li == L - 1:
                ax.set_xlabel("key index j")
    fig.suptitle(info.title(f"State S[i, j] after token {t} (input {tok}) of probe {probe}; colour scale per head"))
    return rp.save(fig, out, f"probe{probe}_state", emit_json, {"t": t, "scales": scales})


def plot_norm(f, info, out, probe=0, emit_json=False):
    pg, layers = _probe(f, probe)
    L = len(layers)
    fig, axes = rp.plt.subplots(L, 1, figsize=(6.5, 1.8 * L + 0.8), sharex=True, squeeze=False,
                                constrained_layout=True)
    for ax, ln in zip(axes[:, 0], layers):
        norm = pg[ln]["state_norm"][:]  # (T,H)
        T, H = norm.shape
        for h in range(H):
            ax.plot(np.arange(T), norm[:, h], lw=0.9, color=rp.COLORS[h % len(rp.COLORS)], label=f"head {h}")
        ax.set_ylabel(f"layer {ln[5:]}\n||S||_F")
    axes[0, 0].legend(ncol=min(H, 8), loc="upper left", fontsize=6.5)
    axes[-1, 0].set_xlabel("position t in the probe sequence (tokens)")
    fig.suptitle(info.title(f"Frobenius norm of each head's state along probe {probe}"))
    return rp.save(fig, out, f"probe{probe}_state_norm", emit_json)


def main(argv=None):
    ap = rp.common_args(argparse.ArgumentParser(description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("run_dir", help="run directory holding run.h5 (or the run.h5 itself)")
    ap.add_argument("--probe", type=int, default=0, help="probe sequence (default 0)")
    ap.add_argument("--t", type=int, default=None, help="position whose state is shown (default: the last)")
    a = ap.parse_args(argv)
    out = a.out or rp.default_out(a.run_dir)
    with rp.open_run(a.run_dir) as f:
        info = rp.RunInfo(f, f.filename)
        plot_state(f, info, out, a.probe, a.t, a.emit_json)
        plot_norm(f, info, out, a.probe, a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
