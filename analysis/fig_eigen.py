#!/usr/bin/env python3
"""fig_eigen.py -- the transition matrices' eigenvalues along a probe sequence (run.h5 /trajectories).

    python3 analysis/fig_eigen.py RUN_DIR [--probe P] [--tmax N] [--threshold X] [--out DIR] [--emit-json]

The transitions of these architectures have real eigenvalues (analysis/README.md), so they are shown as
real numbers, not in the complex plane (a non-zero imaginary part is reported in the title as a warning):
    probe<P>_eig_hist.png   histogram of every eigenvalue of every step, one panel per layer and head,
                            with the count (and share) below the threshold (default -0.5) in each panel
    probe<P>_eig_time.png   eigenvalue vs position t for the first N tokens (default 96): each head's
                            smallest eigenvalue as a line, the others as dots; below it the input token at
                            each position; per layer, how many steps have an eigenvalue below the threshold
                            and, per input token, at how many of its positions
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkvplot as rp  # noqa: E402


def load(f, probe):
    key = f"trajectories/probe{probe}"
    if key not in f:
        have = rp.probes_of(f)
        raise rp.PlotError(f"{f.filename}: no /{key} (probes present: {have or 'none'}; a run writes them when it "
                           "ends or is interrupted, `[log] trajectories` > 0)")
    pg = f[key]
    layers = rp.layers_of(pg)
    if not layers:
        raise rp.PlotError(f"{f.filename}: /{key} has no layer groups")
    eig = [pg[ln]["eig_real"][:] for ln in layers]  # each (T,H,N)
    imag = max(float(np.nanmax(np.abs(pg[ln]["eig_imag"][:]))) for ln in layers)
    tokens = pg["tokens"][:]
    step = int(pg.attrs["step"]) if "step" in pg.attrs else None
    status = rp._str(pg.attrs.get("run_status"), "")
    return eig, imag, tokens, step, status


def _when(step, status):
    if step is None or step < 0:
        return ""
    return f", model at step {step}" + (" (run interrupted)" if status == "interrupted" else "")


def plot_hist(f, info, out, probe=0, thr=-0.5, emit_json=False):
    eig, imag, tokens, step, status = load(f, probe)
    L, (T, H, N) = len(eig), eig[0].shape
    lo = min(-1.05, min(float(np.nanmin(e)) for e in eig) - 0.02)
    hi = max(1.05, max(float(np.nanmax(e)) for e in eig) + 0.02)
    bins = np.linspace(lo, hi, 64)
    fig, axes = rp.plt.subplots(L, H, figsize=(max(2.0 * H, 3.5) + 0.4, 1.75 * L + 0.9), squeeze=False,
                                sharex=True, constrained_layout=True)
    counts = []
    for l in range(L):
        for h in range(H):
            ax = axes[l, h]
            v = eig[l][:, h, :].ravel()
            ax.hist(v, bins=bins, color=rp.COLORS[0], alpha=0.85)
            ax.set_yscale("log")
            ax.axvline(thr, color=rp.COLORS[1], lw=0.9, ls="--")
            ax.axvline(0, color="0.5", lw=0.6)
            k = int((v < thr).sum())
            counts.append({"layer": l, "head": h, "below": k, "total": int(v.size), "min": float(np.nanmin(v))})
            ax.text(0.03, 0.95, f"{k}/{v.size} < {thr:g}\n({100.0 * k / v.size:.1f}%), min {np.nanmin(v):.3f}",
                    transform=ax.transAxes, va="top", fontsize=6.5)
            if l == 0:
                ax.set_title(f"head {h}")
            if h == 0:
                ax.set_ylabel(f"layer {l}\ncount (log)")
            if l == L - 1:
                ax.set_xlabel("eigenvalue (real)")
    total = sum(c["below"] for c in counts)
    warn = f"; WARNING: complex eigenvalues, max |Im| = {imag:.2g}" if imag > 1e-6 else ""
    fig.suptitle(info.title(f"Transition eigenvalues, probe {probe} ({T} tokens x {N} per head{_when(step, status)}): "
                            f"{total} of {L * T * H * N} below {thr:g}{warn}"))
    meta = {"probe": probe, "threshold": thr, "counts": counts, "max_abs_imag": imag}
    return rp.save(fig, out, f"probe{probe}_eig_hist", emit_json, meta)


def plot_time(f, info, out, probe=0, tmax=96, thr=-0.5, emit_json=False):
    eig, imag, tokens, step, status = load(f, probe)
    L, (T, H, N) = len(eig), eig[0].shape
    W = min(T, tmax) if tmax and tmax > 0 else T
    t = np.arange(W)
    vocab = np.unique(tokens)
    fig = rp.plt.figure(figsize=(7.0, 2.1 * L + 0.9), constrained_layout=True)
    gs = fig.add_gridspec(2 * L, 1, height_ratios=[6, 1] * L)
    meta = {"probe": probe, "threshold": thr, "window": W, "layers": []}
    for l in range(L):
        ax = fig.add_subplot(gs[2 * l])
        e = eig[l]  # (T,H,N), sorted descending: the last is the smallest
        for h in range(H):
            c = rp.COLORS[h % len(rp.COLORS)]
            if N > 1:
                ax.plot(np.repeat(t, N - 1), e[:W, h, :-1].ravel(), ".", ms=1.2, color=c, alpha=0.25,
                        label="_others")
            # heads that coincide stay visible: earlier heads drawn wider underneath, each its own marker and style
            ax.plot(t, e[:W, h, -1], ls=rp.LINESTYLES[h % 4], lw=0.8 + 1.2 * (H - 1 - h) / max(H - 1, 1), color=c,
                    marker=rp.MARKERS[h % len(rp.MARKERS)], ms=2.5 + 1.5 * (H - 1 - h) / max(H - 1, 1),
                    mfc="none" if h % 2 else c, label=f"head {h}: smallest", zorder=2 + h)
        ax.axhline(thr, color=rp.COLORS[1], lw=0.8, ls="--", label=f"{thr:g}")
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_ylim(min(-1.05, float(np.nanmin(e[:W])) - 0.05), max(1.05, float(np.nanmax(e[:W])) + 0.05))
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylabel(f"layer {l}\neigenvalue")
        below = (e.min(axis=2) < thr).any(axis=1)  # (T,) a step with some head below thr
        per_tok = {int(v): (int(below[tokens == v].sum()), int((tokens == v).sum())) for v in vocab}
        txt = f"steps with an eigenvalue < {thr:g}: {int(below.sum())} of {T}"
        if len(vocab) <= 16:
            txt += "\nby input token (below / positions): " + ", ".join(
                f"{v}: {b}/{n}" for v, (b, n) in per_tok.items())
        ax.text(0.005, 1.02, txt, transform=ax.transAxes, fontsize=6.5, va="bottom")
        ax.tick_params(labelbottom=False)
        if l == 0:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6.5, frameon=False)
        meta["layers"].append({"layer": l, "steps_below": int(below.sum()), "T": T,
                               "by_token": {str(k): list(v) for k, v in per_tok.items()}})
        # the input tokens, one coloured cell per position (ids printed when they fit)
        tax = fig.add_subplot(gs[2 * l + 1], sharex=ax)
        idx = np.searchsorted(vocab, tokens[:W]) % 20  # colour by the token's rank among the probe's tokens
        tax.imshow(idx[None, :], aspect="auto", cmap="tab20", vmin=-0.5, vmax=19.5,
                   extent=(-0.5, W - 0.5, 0, 1))
        if W <= 64:
            for i in range(W):
                tax.text(i, 0.5, str(int(tokens[i])), ha="center", va="center", fontsize=min(6.0, 200.0 / W))
        tax.set_yticks([])
        tax.grid(False)
        tax.set_ylabel("token", rotation=0, ha="right", va="center", fontsize=7)
        if l == L - 1:
            tax.set_xlabel("position t in the probe sequence (tokens)")
        else:
            tax.tick_params(labelbottom=False)
    warn = f"; WARNING: complex eigenvalues, max |Im| = {imag:.2g}" if imag > 1e-6 else ""
    shown = f"first {W} of {T} tokens" if W < T else f"{T} tokens"
    fig.suptitle(info.title(f"Transition eigenvalues along probe {probe} ({shown}{_when(step, status)}){warn}"))
    return rp.save(fig, out, f"probe{probe}_eig_time", emit_json, meta)


def main(argv=None):
    ap = rp.common_args(argparse.ArgumentParser(description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("run_dir", help="run directory holding run.h5 (or the run.h5 itself)")
    ap.add_argument("--probe", type=int, default=0, help="probe sequence (default 0)")
    ap.add_argument("--tmax", type=int, default=96, help="tokens shown in the eigenvalue-vs-time figure (0: all)")
    ap.add_argument("--threshold", type=float, default=-0.5, help="eigenvalues below it are counted (default -0.5)")
    a = ap.parse_args(argv)
    out = a.out or rp.default_out(a.run_dir)
    with rp.open_run(a.run_dir) as f:
        info = rp.RunInfo(f, f.filename)
        plot_hist(f, info, out, a.probe, a.threshold, a.emit_json)
        plot_time(f, info, out, a.probe, a.tmax, a.threshold, a.emit_json)


if __name__ == "__main__":
    rp.run_cli(main)
