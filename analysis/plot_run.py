#!/usr/bin/env python3
"""plot_run.py -- figures for one rwkvlab run, read from its run.h5 only (schema: analysis/README.md).

    python3 analysis/plot_run.py RUN_DIR [--out DIR] [--probe P]

RUN_DIR is a results/<experiment>/<run-id>/ directory (or the run.h5 itself). PNGs go to DIR
(default RUN_DIR/plots):
    learning_curves.png        loss, acc, lr, grad_norm, tokens/s vs step            (/train)
    acc_vs_length.png          token and sequence accuracy vs length, last eval step  (/eval)
    probe<P>_state_norm.png    Frobenius norm of each head's state vs t, per layer
    probe<P>_eigenvalues.png   transition-matrix eigenvalues in the complex plane, coloured by t,
                               with the unit circle, per layer
    probe<P>_state_last.png    each head's N x N state at the last token (rows: value index i,
                               columns: key index j), layers x heads
Parts of the file that are absent (no eval yet, no trajectories) are skipped with a note.
The file is opened read-only without HDF5 file locking, so a run in progress can be plotted.
"""
import argparse
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def open_run(path):
    if os.path.isdir(path):
        path = os.path.join(path, "run.h5")
    if not os.path.exists(path):
        sys.exit(f"plot_run: no run.h5 at '{path}'")
    try:
        return h5py.File(path, "r", locking=False), path
    except TypeError:  # h5py older than 3.5 has no locking argument
        return h5py.File(path, "r"), path
    except OSError as e:
        sys.exit(f"plot_run: cannot open '{path}' as HDF5: {e}")


def run_title(f):
    a = f.attrs
    parts = [str(a.get("arch", "?"))]
    for key in ("seed", "param_count", "state_size"):
        if key in a:
            parts.append(f"{key}={int(a[key])}")
    if "code_version" in a:
        parts.append(str(a["code_version"]))
    return "  ".join(parts)


def save(fig, out, name):
    path = os.path.join(out, name)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")


def plot_learning_curves(f, out, title):
    if "train" not in f or f["train/step"].shape[0] == 0:
        print("note: /train is empty; no learning curves")
        return
    g = f["train"]
    n = min(g[k].shape[0] for k in g)  # equal unless a write was interrupted
    step = g["step"][:n]
    panels = [("loss", "loss", True), ("acc", "accuracy", False), ("lr", "learning rate", False),
              ("grad_norm", "gradient norm", True), ("tokens_per_s", "tokens / s", False)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), sharex=True)
    for ax, (key, label, logy) in zip(axes, panels):
        y = g[key][:n]
        ax.plot(step, y, lw=1)
        if logy and np.all(y[np.isfinite(y)] > 0):
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    axes[0].set_title(title, fontsize=9)
    save(fig, out, "learning_curves.png")


def plot_acc_vs_length(f, out, title):
    if "eval" not in f or f["eval/step"].shape[0] == 0:
        print("note: /eval is empty; no accuracy-vs-length plot")
        return
    g = f["eval"]
    n = min(g[k].shape[0] for k in g)
    step, length = g["step"][:n], g["length"][:n]
    tok, seq = g["token_acc"][:n], g["seq_acc"][:n]
    steps = np.unique(step)
    last = steps[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, acc, label in ((axes[0], tok, "token accuracy"), (axes[1], seq, "sequence accuracy")):
        for s in steps[:-1]:  # earlier evaluations, faint, for context
            m = step == s
            o = np.argsort(length[m])
            ax.plot(length[m][o], acc[m][o], color="0.75", lw=0.8)
        m = step == last
        o = np.argsort(length[m])
        ax.plot(length[m][o], acc[m][o], "o-", color="C0", label=f"step {last}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_title(label)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[1].legend(title="grey: earlier evals", fontsize=8, title_fontsize=8)
    fig.suptitle(title, fontsize=9)
    save(fig, out, "acc_vs_length.png")


def layers_of(pg):
    names = [k for k in pg if k.startswith("layer") and k[5:].isdigit()]
    return sorted(names, key=lambda k: int(k[5:]))


def plot_state_dynamics(f, out, probe, title):
    key = f"trajectories/probe{probe}"
    if key not in f:
        print(f"note: /{key} absent; no state-dynamics plots")
        return
    pg = f[key]
    layers = layers_of(pg)
    if not layers:
        print(f"note: /{key} has no layer groups")
        return
    L = len(layers)
    T, H, N, _ = pg[layers[0]]["state"].shape

    # state norm per head vs t
    fig, axes = plt.subplots(L, 1, figsize=(8, 2.6 * L), sharex=True, squeeze=False)
    for ax, ln in zip(axes[:, 0], layers):
        norm = pg[ln]["state_norm"][:]  # (T,H)
        for h in range(H):
            ax.plot(np.arange(T), norm[:, h], lw=1, label=f"head {h}")
        ax.set_ylabel(f"{ln}\n||S||_F")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("t (token)")
    axes[0, 0].legend(fontsize=7, ncol=min(H, 8))
    axes[0, 0].set_title(f"probe {probe}: state norm per head   {title}", fontsize=9)
    save(fig, out, f"probe{probe}_state_norm.png")

    # eigenvalues of the transition matrix, complex plane, coloured by t
    cols = min(L, 4)
    rows = (L + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols + 1, 4 * rows), squeeze=False,
                             constrained_layout=True)
    theta = np.linspace(0, 2 * np.pi, 400)
    sc = None
    for idx, ax in enumerate(axes.flat):
        if idx >= L:
            ax.axis("off")
            continue
        ln = layers[idx]
        re = pg[ln]["eig_real"][:]  # (T,H,N)
        im = pg[ln]["eig_imag"][:]
        tt = np.broadcast_to(np.arange(T)[:, None, None], re.shape)
        ax.plot(np.cos(theta), np.sin(theta), color="k", lw=0.8, ls="--")
        sc = ax.scatter(re.ravel(), im.ravel(), c=tt.ravel(), cmap="viridis", s=6, alpha=0.7,
                        vmin=0, vmax=max(T - 1, 1), linewidths=0)
        lim = max(1.05, float(np.nanmax(np.abs(np.concatenate([re.ravel(), im.ravel()])))) * 1.05)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_title(f"{ln}  (max |lambda| {np.nanmax(np.hypot(re, im)):.3f})", fontsize=9)
        ax.set_xlabel("Re")
        ax.set_ylabel("Im")
    if sc is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), label="t (token)", shrink=0.8)
    fig.suptitle(f"probe {probe}: eigenvalues of M_t = diag(w) - kk^T (a*kk), all heads   {title}",
                 fontsize=9)
    save(fig, out, f"probe{probe}_eigenvalues.png")

    # per-head state at the last token
    fig, axes = plt.subplots(L, H, figsize=(2.4 * H + 1, 2.4 * L + 0.6), squeeze=False,
                             constrained_layout=True)
    states = [pg[ln]["state"][T - 1] for ln in layers]  # each (H,N,N)
    vmax = max(float(np.nanmax(np.abs(s))) for s in states) or 1.0
    im_ = None
    for li, (ln, s) in enumerate(zip(layers, states)):
        for h in range(H):
            ax = axes[li, h]
            im_ = ax.imshow(s[h], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if li == 0:
                ax.set_title(f"head {h}", fontsize=9)
            if h == 0:
                ax.set_ylabel(f"{ln}\nvalue i")
            if li == L - 1:
                ax.set_xlabel("key j")
    fig.colorbar(im_, ax=axes.ravel().tolist(), shrink=0.8, label="S[i, j]")
    fig.suptitle(f"probe {probe}: state at the last token (t = {T - 1})   {title}", fontsize=9)
    save(fig, out, f"probe{probe}_state_last.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="run directory containing run.h5 (or the run.h5 file)")
    ap.add_argument("--out", help="output directory (default RUN_DIR/plots)")
    ap.add_argument("--probe", type=int, default=0, help="trajectory probe to plot (default 0)")
    args = ap.parse_args()
    f, path = open_run(args.run_dir)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(path)), "plots")
    os.makedirs(out, exist_ok=True)
    title = run_title(f)
    with f:
        plot_learning_curves(f, out, title)
        plot_acc_vs_length(f, out, title)
        plot_state_dynamics(f, out, args.probe, title)


if __name__ == "__main__":
    main()
