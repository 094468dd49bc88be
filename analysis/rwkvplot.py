"""rwkvplot.py -- what every figure script shares: reading run.h5 / sweep.json, run metadata for titles,
the paper style, saving a PNG (and, with --emit-json, a JSON sidecar describing what was drawn).

Nothing here draws a figure; each figure kind is one script (fig_*.py) with a CLI. The run.h5 layout is
analysis/README.md. Errors the user can fix raise PlotError (message: what, where, how to fix); the
scripts print it and exit 1.
"""
import argparse
import configparser
import json
import math
import os
import sys
import time

import numpy as np

try:
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.collections
    import matplotlib.lines
    import matplotlib.patches
    import matplotlib.pyplot as plt  # noqa: F401  (re-exported for the scripts)
    import matplotlib.ticker
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"rwkvplot: {e}. The figure scripts need Python 3 with h5py, numpy and matplotlib: run `make deps` "
             "(Debian: apt-get install python3-h5py python3-numpy python3-matplotlib)")


class PlotError(Exception):
    """A problem with the input (missing file, bad values) that the user can fix."""


# ---- style ----------------------------------------------------------------------------------------

DPI = 150
# one colour and one marker per series, so that coinciding curves stay distinguishable in print
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":"]


def apply_style():
    matplotlib.rcParams.update({
        "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
        "legend.fontsize": 7.5, "figure.titlesize": 10, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "savefig.bbox": "tight", "image.interpolation": "nearest",
    })


apply_style()

ARCH_NAMES = {"rwkv7": "RWKV-7", "rwkv6": "RWKV-6", "deltanet": "DeltaNet", "gated_deltanet": "Gated DeltaNet"}
# the lower end of each architecture's transition eigenvalues per eig_range (analysis/README.md)
EIG_LOW = {("rwkv7", "standard"): "eigenvalues >= -0.455", ("rwkv7", "extended"): "eigenvalues >= -1",
           ("deltanet", "standard"): "eigenvalues in [0, 1]", ("deltanet", "extended"): "eigenvalues in [-1, 1]",
           ("gated_deltanet", "standard"): "eigenvalues in [0, 1]",
           ("gated_deltanet", "extended"): "eigenvalues in [-1, 1]", ("rwkv6", "standard"): "eigenvalues in (0, 1)",
           ("rwkv6", "extended"): "eigenvalues in (0, 1)"}


ARCH_ORDER = ["rwkv7", "deltanet", "gated_deltanet", "rwkv6"]  # the order models are drawn and listed in


def model_sort_key(arch, eig_range):
    """Models in a fixed order: by architecture (ARCH_ORDER), the standard range before the extended."""
    return (ARCH_ORDER.index(arch) if arch in ARCH_ORDER else 9, arch or "", eig_range != "standard", eig_range or "")


def short_model(label):
    """'RWKV-7, extended range (eigenvalues >= -1)' -> 'RWKV-7 extended (eig. >= -1)' (for legends)."""
    return label.replace(", ", " ", 1).replace(" range (eigenvalues ", " (eig. ")


def eig_label(arch, eig_range):
    low = EIG_LOW.get((arch, eig_range))
    return f"{eig_range} range ({low})" if low else f"eig_range {eig_range}"


# ---- reading ---------------------------------------------------------------------------------------

def h5_open(path):
    """h5py.File(path, "r") without HDF5 file locking, so a file that a run is writing can be read."""
    try:
        return h5py.File(path, "r", locking=False)
    except TypeError:  # h5py older than 3.5 has no locking argument
        os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
        return h5py.File(path, "r")


def open_run(path, retries=10, delay=0.2):
    """Open RUN_DIR/run.h5 (or the file itself) read-only. A run that is writing the file may be caught
    half-way through a flush (run.h5 is not SWMR): the open is retried `retries` times."""
    if os.path.isdir(path):
        path = os.path.join(path, "run.h5")
    if not os.path.exists(path):
        raise PlotError(f"no run.h5 at '{path}': give a run directory (results/<experiment>/<run>/) or its run.h5")
    last = None
    for i in range(max(1, retries)):
        try:
            return h5_open(path)
        except OSError as e:
            last = e
            if i + 1 < retries:
                time.sleep(delay)
    raise PlotError(f"cannot open '{path}' as HDF5: {last} (a torn file: `rwkvlab train --resume` rebuilds it)")


def read_group(f, name):
    """{dataset: array} of /train or /eval, cut to the shortest dataset (a reader may catch a record half
    written); None when the group is absent or empty."""
    if name not in f:
        return None
    g = f[name]
    keys = [k for k in g if isinstance(g[k], h5py.Dataset)]
    if not keys:
        return None
    n = min(g[k].shape[0] for k in keys)
    if n == 0:
        return None
    return {k: g[k][:n] for k in keys}


def parse_config(text):
    """The resolved INI text of the root attribute `config` as {section: {key: value}} (comments dropped)."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None, strict=False)
    try:
        cp.read_string(text or "")
    except configparser.Error:
        return {}
    return {s: dict(cp[s]) for s in cp.sections()}


def parse_len_range(s):
    """'32' -> (32, 32); '1-40' -> (1, 40); None if absent or unreadable."""
    if s is None:
        return None
    s = str(s).strip()
    try:
        if "-" in s:
            lo, hi = s.split("-", 1)
            return int(lo), int(hi)
        return int(s), int(s)
    except ValueError:
        return None


def _str(v, default=""):
    if v is None:
        return default
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


class RunInfo:
    """What a title needs about a run, from run.h5's root attributes and its config."""

    def __init__(self, f, path):
        a = f.attrs
        self.path = path
        self.schema = int(a["schema_version"]) if "schema_version" in a else 1
        self.arch = _str(a.get("arch"), "?")
        self.eig_range = _str(a.get("eig_range"), "?")
        self.seed = int(a["seed"]) if "seed" in a else None
        self.cfg = parse_config(_str(a.get("config")))
        ex, task, model = self.cfg.get("experiment", {}), self.cfg.get("task", {}), self.cfg.get("model", {})
        run_dir = os.path.dirname(os.path.abspath(path))
        self.experiment = ex.get("name") or os.path.basename(os.path.dirname(run_dir)) or "?"
        name, variant = task.get("name", ""), task.get("variant", "")
        self.task = (f"{name} ({variant})" if variant and variant != "default" else name) or _str(a.get("task"), "?")
        self.layers = model.get("layers")
        self.train_range = parse_len_range(task.get("train_len"))

    @property
    def arch_name(self):
        return ARCH_NAMES.get(self.arch, self.arch)

    def title(self, what):
        """'what -- experiment: task, RWKV-7 (2 layers), extended range (eigenvalues >= -1), seed 1'."""
        lay = f", {self.layers} layer{'s' if self.layers != '1' else ''}" if self.layers else ""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return (f"{what}\n{self.experiment}: task {self.task}; {self.arch_name}{lay}; "
                f"{eig_label(self.arch, self.eig_range)}{seed}")

    def train_label(self):
        if not self.train_range:
            return None
        lo, hi = self.train_range
        return f"training length {lo}" if lo == hi else f"training lengths {lo}-{hi}"


def finished_summary(path):
    """A run's summary.json as a dict when the run finished (completed or early stopped), else None; a file
    that is not JSON is refused with a message saying what to do."""
    try:
        with open(path) as fp:
            s = json.load(fp)
    except ValueError as e:
        raise PlotError(f"{path} is not valid JSON ({e}): delete the run directory and run it again")
    return s if s.get("status") in ("completed", "early_stopped") else None


def run_labels(run_dir, summary):
    """(task, model) labels of a finished run directory for titles and legends: task from its config.ini
    ('s5 (swaps)'), model from summary.json ('RWKV-7, extended range (eigenvalues >= -1)')."""
    cfg = {}
    try:
        with open(os.path.join(run_dir, "config.ini")) as fp:
            cfg = parse_config(fp.read())
    except OSError:
        pass
    task = cfg.get("task", {})
    name, variant = task.get("name", ""), task.get("variant", "")
    tlabel = (f"{name} ({variant})" if variant and variant != "default" else name) or \
        str(summary.get("task", "?")).split(",")[0]
    arch, rng = summary.get("arch", "?"), summary.get("eig_range", "?")
    return tlabel, f"{ARCH_NAMES.get(arch, arch)}, {eig_label(arch, rng)}"


def layers_of(group):
    names = [k for k in group if k.startswith("layer") and k[5:].isdigit()]
    return sorted(names, key=lambda k: int(k[5:]))


def probes_of(f):
    if "trajectories" not in f:
        return []
    names = [k for k in f["trajectories"] if k.startswith("probe") and k[5:].isdigit()]
    return sorted(int(k[5:]) for k in names)


def check_unit_interval(values, what, where):
    """Accuracies must lie in [0, 1]: anything else (or NaN) is refused, naming the first bad value."""
    v = np.asarray(values, dtype=float)
    bad = ~np.isfinite(v) | (v < -1e-9) | (v > 1 + 1e-9)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise PlotError(f"{where}: {what} = {v.ravel()[i]!r} is outside [0, 1]: an accuracy must be a fraction; "
                        f"the file is corrupt or not what this script reads (refusing to plot it)")


# ---- axes helpers ----------------------------------------------------------------------------------

def length_axis(ax, lengths, label="sequence length (tokens)"):
    """A log2 axis with a tick at every tested length (labelled with the length itself)."""
    lengths = sorted(set(int(x) for x in lengths))
    if lengths and lengths[0] > 0 and (len(lengths) < 2 or lengths[-1] / lengths[0] >= 4):
        ax.set_xscale("log", base=2)
    ax.set_xticks(lengths)
    logx = ax.get_xscale() == "log"
    labels, last = [], None  # a tick too close to the last labelled one keeps its tick, not its label
    for x in lengths:
        near = last is not None and ((x / last < 1.07) if logx else (x - last < 0.025 * (lengths[-1] - lengths[0])))
        labels.append("" if near and x != lengths[-1] else str(x))
        if labels[-1] == "":
            continue
        if near and x == lengths[-1] and len(labels) > 1:
            labels[-2] = ""  # the last length wins over its neighbour
        last = x
    ax.set_xticklabels(labels, rotation=45 if len(lengths) > 8 else 0)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(label)
    if lengths:
        lo, hi = lengths[0], lengths[-1]
        if ax.get_xscale() == "log":
            ax.set_xlim(lo / 2 ** 0.35, hi * 2 ** 0.35)
        else:
            pad = max(1.0, 0.05 * (hi - lo))
            ax.set_xlim(lo - pad, hi + pad)


def shade_training(ax, rng, label):
    """Shade the training length or range (a thin band around a single length)."""
    if not rng:
        return
    lo, hi = rng
    if ax.get_xscale() == "log":
        a, b = (lo / 2 ** 0.12, hi * 2 ** 0.12)
    else:
        a, b = lo - 0.5, hi + 0.5
    ax.axvspan(a, b, color="0.85", alpha=0.7, lw=0, zorder=0, label=label, gid="training-span")


def draw_seed_series(ax, shown, lengths):
    """Accuracy vs length across seeds, one series per item of `shown` (dicts with point, n, x, median and
    seeds = {seed: {length: value}}; optional label): the median as a line, every seed as a small point
    and the spread (min to max) as a vertical bar; series dodged sideways so that none hides another, and a
    series with the same medians as an earlier one says so in its legend entry. Returns one dict per series
    (what was drawn, for --emit-json)."""
    k = len(shown)
    logx = ax.get_xscale() == "log"
    width = 0.32 if logx else 0.3 * (min(np.diff(sorted(lengths))) if len(lengths) > 1 else 1)
    drawn = []
    for i, s in enumerate(shown):
        c, mk, ls = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)], LINESTYLES[i % 4]
        off = (i - (k - 1) / 2) / max(k, 1) * width  # dodge: each series a little to the side
        dx = (lambda x, o=off: np.asarray(x, float) * 2 ** o) if logx else (lambda x, o=off: np.asarray(x, float) + o)
        name = s.get("label", s["point"])
        same = [shown[j].get("label", shown[j]["point"]) for j in range(i) if shown[j]["x"] == s["x"] and
                np.allclose(shown[j]["median"], s["median"], atol=1e-12)]
        label = f"{name} (n={s['n']})" + (f"  = same medians as {same[0].split(' (')[0]}" if same else "")
        ax.plot(dx(s["x"]), s["median"], ls=ls, marker=mk, color=c, ms=5, lw=1.3, mfc="white", mew=1.2,
                label=label, zorder=3)
        pts_x, pts_y = [], []
        for L in s["x"]:
            v = [vals[L] for vals in s["seeds"].values() if L in vals]
            if len(v) > 1:
                ax.plot(dx([L, L]), [min(v), max(v)], color=c, lw=0.8, alpha=0.7, label="_spread", zorder=2)
            pts_x += [L] * len(v)
            pts_y += v
        if pts_x:
            ax.scatter(dx(pts_x), pts_y, s=9, color=c, alpha=0.8, marker=mk, linewidths=0, zorder=4,
                       label=f"_seeds {name}")
        drawn.append({"point": s["point"], "label": name, "x": s["x"], "median": s["median"],
                      "seed_points": len(pts_x), "coincides_with": same[0] if same else None})
    return drawn


def legend_below(fig, handles, labels, ncol, max_frac=0.4):
    """One legend for the whole figure below its panels, with room made for its rows (at most max_frac
    of the figure's height)."""
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize="small")
    rows = (len(labels) + ncol - 1) // ncol
    fig.tight_layout(rect=(0, min(max_frac, (0.21 * rows + 0.06) / fig.get_figheight()), 1, 1))


def seed_legend(ax, ncol=2):
    """The legend below the axes, with the per-seed point explained."""
    handles, labels = ax.get_legend_handles_labels()
    handles.append(matplotlib.lines.Line2D([], [], color="0.3", marker="o", ls="", ms=3))
    labels.append("one seed (bar: min to max)")
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, frameon=False)


# ---- saving ----------------------------------------------------------------------------------------

def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _arr(a):
    return [_num(v) for v in np.asarray(a, dtype=float).ravel()]


def describe(fig):
    """What the figure holds, read back from matplotlib's own objects (for tests and --emit-json)."""
    out = {"suptitle": fig._suptitle.get_text() if fig._suptitle else "", "axes": []}
    for ax in fig.axes:
        d = {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
             "xscale": ax.get_xscale(), "yscale": ax.get_yscale(), "xticks": _arr(ax.get_xticks()),
             "xticklabels": [t.get_text() for t in ax.get_xticklabels()], "ylim": _arr(ax.get_ylim()),
             "lines": [], "collections": [], "bars": [], "spans": [], "images": [], "texts": []}
        for ln in ax.get_lines():
            d["lines"].append({"label": ln.get_label(), "x": _arr(ln.get_xdata()), "y": _arr(ln.get_ydata())})
        for c in ax.collections:
            offs = c.get_offsets()
            d["collections"].append({"label": c.get_label(), "offsets": [_arr(o) for o in offs]})
        for p in ax.patches:
            if p.get_gid() == "training-span":
                v = p.get_path().transformed(p.get_patch_transform()).vertices if isinstance(
                    p, matplotlib.patches.Rectangle) else p.get_xy()
                d["spans"].append({"label": p.get_label(), "x0": _num(v[:, 0].min()), "x1": _num(v[:, 0].max())})
            elif isinstance(p, matplotlib.patches.Rectangle):
                d["bars"].append({"x": _num(p.get_x()), "w": _num(p.get_width()), "h": _num(p.get_height()),
                                  "label": p.get_label()})
        for im in ax.get_images():
            a = im.get_array()
            d["images"].append({"shape": list(a.shape), "clim": _arr(im.get_clim())})
        for t in ax.texts:
            d["texts"].append(t.get_text())
        leg = ax.get_legend()
        d["legend"] = [t.get_text() for t in leg.get_texts()] if leg else []
        out["axes"].append(d)
    return out


def save(fig, out_dir, name, emit_json=False, meta=None):
    """Write OUT_DIR/NAME.png (and NAME.json with describe(fig) and `meta` when emit_json); returns the path."""
    os.makedirs(out_dir, exist_ok=True)
    png = os.path.join(out_dir, name + ".png")
    tmp = png + ".tmp.png"
    fig.savefig(tmp, dpi=DPI)
    os.replace(tmp, png)  # never a half-written PNG under the final name
    if emit_json:
        d = describe(fig)
        d["meta"] = meta or {}
        with open(os.path.join(out_dir, name + ".json"), "w") as fp:
            json.dump(d, fp, indent=1)
    matplotlib.pyplot.close(fig)
    print(f"wrote {png}")
    return png


def default_out(path):
    """RUN_DIR/figures for a run directory or its run.h5."""
    d = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return os.path.join(d, "figures")


def run_cli(main):
    """Run main(); a PlotError becomes 'script: error: ...' and exit status 1."""
    prog = os.path.basename(sys.argv[0])
    try:
        rc = main()
    except PlotError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(rc or 0)


def suite_parser(doc, dirs_help, name, title_help="the figure's first title line"):
    """The command line of a script over directories of run directories (fig_suite, fig_depth,
    fig_mechanism, fig_mqar): DIR..., --title, --name (default `name`), --out, --emit-json; the caller adds
    its own options, then calls suite_out on the parsed arguments."""
    ap = common_args(argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter),
                     "the first DIR's parent")
    ap.add_argument("dirs", nargs="+", help=dirs_help)
    ap.add_argument("--title", default="", help=title_help)
    ap.add_argument("--name", default=name, help="output file name without .png")
    return ap


def suite_out(a):
    """--out, or the first DIR's parent/figures."""
    return a.out or os.path.join(os.path.dirname(os.path.normpath(a.dirs[0])), "figures")


def common_args(ap, what="RUN_DIR"):
    ap.add_argument("--out", help=f"output directory (default {what}/figures)")
    ap.add_argument("--emit-json", action="store_true",
                    help="also write NAME.json beside each PNG: every axis, line, point set, bar and image drawn")
    return ap
