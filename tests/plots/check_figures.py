#!/usr/bin/env python3
"""check_figures.py -- run every figure script on the committed fixtures and check what they drew.

    python3 tests/plots/check_figures.py WORK_DIR

Fixtures: tests/fixtures/plots/run/run.h5 (a real 300-step run) and tests/fixtures/plots/sweep/
(tests/plots/make_fixtures.sh). Every script runs as a user would run it (its CLI, --emit-json), and the
JSON sidecar -- read back from matplotlib's own figure objects (rwkvplot.describe) -- must hold the
series computed here, independently, from the fixture: the plotted values, the tested lengths as ticks,
the training range shaded, the eigenvalue counts below -0.5, one colour scale per head, every sweep
series visible. Bad input (accuracy outside [0, 1], a missing file) must be refused with exit status 1
and a message, an old (schema 1) file must still plot. Exit 0 when all checks pass, 1 otherwise.
"""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
AN = os.path.join(ROOT, "analysis")
FX = os.path.join(ROOT, "tests", "fixtures", "plots")
RUN, SWEEP = os.path.join(FX, "run"), os.path.join(FX, "sweep")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")
    return cond


def close(a, b, tol=1e-6):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and np.allclose(a, b, atol=tol, rtol=1e-6, equal_nan=True)


def script(name, *args, expect=0):
    p = subprocess.run([sys.executable, os.path.join(AN, name), *args], capture_output=True, text=True)
    check(p.returncode == expect, f"{name} {' '.join(args)}: exit {p.returncode}, expected {expect}\n"
                                  f"{p.stdout}{p.stderr}")
    return p


def sidecar(out, name):
    png, js = os.path.join(out, name + ".png"), os.path.join(out, name + ".json")
    ok = check(os.path.exists(png) and os.path.getsize(png) > 5000, f"{png} missing or tiny")
    if ok:
        with open(png, "rb") as fp:
            check(fp.read(8) == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG")
    if not check(os.path.exists(js), f"{js} missing"):
        return {"axes": [], "suptitle": "", "meta": {}}
    with open(js) as fp:
        return json.load(fp)


def axis(d, **kw):
    """The first axes whose fields contain the given substrings (title='...', ylabel='...')."""
    for a in d["axes"]:
        if all(v in a.get(k, "") for k, v in kw.items()):
            return a
    check(False, f"no axes with {kw} in {[(a['title'], a['ylabel']) for a in d['axes']]}")
    return {"lines": [], "collections": [], "bars": [], "spans": [], "images": [], "texts": [], "xticks": [],
            "legend": []}


def line(a, label):
    for ln in a["lines"]:
        if ln["label"] == label:
            return ln
    check(False, f"no line '{label}' in axes '{a.get('title')}' (have {[ln['label'] for ln in a['lines']]})")
    return {"x": [], "y": []}


def check_title(d, what):
    t = d["suptitle"] or " ".join(a["title"] for a in d["axes"])
    for s in ("fixture_s5_swaps", "s5 (swaps)", "RWKV-7", "extended range"):
        check(s in t, f"{what}: title lacks '{s}': {t!r}")


def main():
    work = sys.argv[1]
    out = os.path.join(work, "fig")
    os.makedirs(out, exist_ok=True)
    f = h5py.File(os.path.join(RUN, "run.h5"), "r", locking=False)
    ev = {k: f["eval"][k][:] for k in f["eval"]}
    tr = {k: f["train"][k][:] for k in f["train"]}
    pg = f["trajectories/probe0"]
    L = len([k for k in pg if k.startswith("layer")])
    T, H, Nv, N = pg["layer0/state"].shape

    # ---- accuracy vs length
    script("fig_length.py", RUN, "--out", out, "--emit-json")
    d = sidecar(out, "acc_vs_length")
    check_title(d, "acc_vs_length")
    last = ev["step"].max()
    m = ev["step"] == last
    o = np.argsort(ev["length"][m])
    lengths = ev["length"][m][o]
    for title, key in (("sequence accuracy", "seq_acc"), ("token accuracy", "token_acc")):
        a = axis(d, title=title)
        ln = line(a, f"step {last}")
        check(close(ln["x"], lengths) and close(ln["y"], ev[key][m][o]), f"acc_vs_length {key}: plotted {ln}")
        check(close(a["xticks"], sorted(set(ev["length"]))), f"acc_vs_length: ticks {a['xticks']} != tested lengths")
        check(len(a["spans"]) == 1 and a["spans"][0]["x0"] <= 4 < 12 <= a["spans"][0]["x1"] < 16,
              f"acc_vs_length: training range 4-12 not shaded: {a['spans']}")
        earlier = [x for x in a["lines"] if x["label"] == "_earlier"]
        check(len(earlier) == len(np.unique(ev["step"])) - 1, "acc_vs_length: earlier evaluations missing")

    # ---- learning curves
    script("fig_learning.py", RUN, "--out", out, "--emit-json")
    d = sidecar(out, "learning_curves")
    check_title(d, "learning_curves")
    a = axis(d, ylabel="loss (nats / token)")
    check(close(line(a, "training loss")["y"], tr["loss"]), "learning_curves: the loss line is not /train/loss")
    a = axis(d, ylabel="accuracy")
    for Lv in np.unique(ev["length"]):
        mm = ev["length"] == Lv
        ln = line(a, f"eval seq. acc., length {Lv}")
        check(close(ln["x"], ev["step"][mm]) and close(ln["y"], ev["seq_acc"][mm]), f"learning_curves: eval {Lv}")
    check(close(line(axis(d, ylabel="batch length"), "training length")["y"], tr["length"]),
          "learning_curves: the varying training length is not plotted")
    check(d["meta"].get("wall_s") is not None and close(d["meta"]["wall_s"], tr["wall_s"][-1]),
          "learning_curves: wall time not used")
    check("wall time" in d["suptitle"], "learning_curves: title does not state the wall time")

    # ---- eigenvalues
    script("fig_eigen.py", RUN, "--out", out, "--emit-json", "--tmax", "16")
    d = sidecar(out, "probe0_eig_hist")
    check_title(d, "eig_hist")
    panels = [a for a in d["axes"] if a["bars"]]
    check(len(panels) == L * H, f"eig_hist: {len(panels)} panels, expected {L} layers x {H} heads")
    total = 0
    for i, a in enumerate(panels):
        l, h = divmod(i, H)
        e = pg[f"layer{l}/eig_real"][:, h, :]
        k = int((e < -0.5).sum())
        total += k
        check(any(f"{k}/{e.size} < -0.5" in t for t in a["texts"]), f"eig_hist layer {l} head {h}: count {k} "
                                                                      f"not stated ({a['texts']})")
        check(sum(b["h"] for b in a["bars"]) == e.size, f"eig_hist layer {l} head {h}: bars do not hold every "
                                                         "eigenvalue")
    check(total > 0, "fixture has no eigenvalue below -0.5 (regenerate it)")
    check(f"{total} of {L * T * H * N} below -0.5" in d["suptitle"], f"eig_hist: total {total} not in title")
    d = sidecar(out, "probe0_eig_time")
    check_title(d, "eig_time")
    W = 16
    for l in range(L):
        a = axis(d, ylabel=f"layer {l}\neigenvalue")
        e = pg[f"layer{l}/eig_real"][:]
        for h in range(H):
            ln = line(a, f"head {h}: smallest")
            check(close(ln["x"], np.arange(W)) and close(ln["y"], e[:W, h, :].min(axis=1)),
                  f"eig_time layer {l} head {h}: the smallest eigenvalue is not what was plotted")
        k = int((e.min(axis=(1, 2)) < -0.5).sum())
        check(any(f"steps with an eigenvalue < -0.5: {k} of {T}" in t for t in a["texts"]),
              f"eig_time layer {l}: '{k} of {T}' not stated: {a['texts']}")
    strips = [a for a in d["axes"] if a["images"]]
    check(len(strips) == L and all(s["images"][0]["shape"] == [1, W] for s in strips),
          "eig_time: the token strip below each layer is missing")
    check(any(t == str(int(pg["tokens"][0])) for t in strips[0]["texts"]), "eig_time: token ids not marked")

    # ---- state
    script("fig_state.py", RUN, "--out", out, "--emit-json")
    d = sidecar(out, "probe0_state")
    check_title(d, "state")
    heat = [a for a in d["axes"] if a["images"]]
    check(len(heat) == L * H, f"state: {len(heat)} heatmaps, expected {L * H}")
    clims = []
    for i, a in enumerate(heat):
        l, h = divmod(i, H)
        S = pg[f"layer{l}/state"][T - 1, h]
        v = float(np.abs(S).max())
        check(a["images"][0]["shape"] == [Nv, N], f"state layer {l} head {h}: shape {a['images'][0]['shape']}")
        check(close(a["images"][0]["clim"], [-v, v]), f"state layer {l} head {h}: colour scale "
                                                      f"{a['images'][0]['clim']} is not its own +-{v}")
        check(a["xlabel"] in ("key index j", "") and (h > 0 or "value index i" in a["ylabel"]),
              f"state layer {l} head {h}: axes not labelled")
        clims.append(v)
    check(len(set(clims)) > 1, "state: every head has the same colour scale")
    d = sidecar(out, "probe0_state_norm")
    for l in range(L):
        a = axis(d, ylabel=f"layer {l}")
        for h in range(H):
            check(close(line(a, f"head {h}")["y"], pg[f"layer{l}/state_norm"][:, h]), f"state_norm {l} {h}")

    # ---- sweep
    with open(os.path.join(SWEEP, "sweep.json")) as fp:
        sw = json.load(fp)
    script("fig_sweep.py", SWEEP, "--out", out, "--emit-json")
    d = sidecar(out, "sweep_acc_vs_length")
    a = d["axes"][0]
    xs = []
    for p in sw["points"]:
        ln = next((x for x in a["lines"] if x["label"].startswith(p["point"] + " ")), None)
        if not check(ln is not None, f"sweep: no series for {p['point']}"):
            continue
        check(close(ln["y"], [r["seq_acc_median"] for r in p["lengths"]]), f"sweep {p['point']}: medians")
        xs.append(ln["x"])
        seeds = []
        for r in p["runs"]:
            with open(os.path.join(SWEEP, r["dir"], "summary.json")) as fp:
                seeds += [e["seq_acc"] for e in json.load(fp)["eval"]]
        pts = next((c for c in a["collections"] if c["label"] == f"_seeds {p['point']}"), None)
        check(pts is not None and sorted(o[1] for o in pts["offsets"]) == sorted(seeds),
              f"sweep {p['point']}: per-seed points are not the runs' values")
    check(len(xs) == 2 and all(abs(u - v) > 1e-9 for u, v in zip(*xs)), "sweep: series not dodged apart")
    check(close(a["xticks"], [r["length"] for r in sw["points"][0]["lengths"]]), "sweep: ticks not at the lengths")
    check(len(a["spans"]) == 1, "sweep: training range not shaded")
    # coinciding series are marked; a value outside [0, 1] is refused
    sw2 = os.path.join(work, "sweep_same")
    shutil.copytree(SWEEP, sw2)
    j = json.load(open(os.path.join(sw2, "sweep.json")))
    j["points"][1]["lengths"] = j["points"][0]["lengths"]
    json.dump(j, open(os.path.join(sw2, "sweep.json"), "w"))
    script("fig_sweep.py", sw2, "--out", os.path.join(work, "same"), "--emit-json")
    a = sidecar(os.path.join(work, "same"), "sweep_acc_vs_length")["axes"][0]
    check(any("same medians as " + j["points"][0]["point"] in t for t in a["legend"]),
          f"sweep: coinciding series not marked in the legend {a['legend']}")
    j["points"][0]["lengths"][1]["seq_acc_median"] = 1.5
    json.dump(j, open(os.path.join(sw2, "sweep.json"), "w"))
    bad_out = os.path.join(work, "bad")
    p = script("fig_sweep.py", sw2, "--out", bad_out, expect=1)
    check("outside [0, 1]" in p.stderr and "1.5" in p.stderr, f"sweep: refusal message: {p.stderr!r}")
    check(not os.path.exists(os.path.join(bad_out, "sweep_acc_vs_length.png")), "sweep: a refused figure was written")

    # ---- a suite (fig_suite.py): every model across directories, one panel per other setting
    st = os.path.join(work, "suite")
    expect = {}  # (panel title, legend prefix) -> {length: [seq_acc per seed]}
    for r in sorted(x for x in os.listdir(SWEEP) if os.path.isdir(os.path.join(SWEEP, x))):
        for arch, panel, flip in (("rwkv7", "layers=1", False), ("deltanet", "layers=2", True)):
            dst = os.path.join(st, arch, f"{panel},{r}")
            shutil.copytree(os.path.join(SWEEP, r), dst)
            with open(os.path.join(dst, "summary.json")) as fp:
                sj = json.load(fp)
            sj["arch"] = arch
            for e in sj["eval"]:
                if flip:  # other values for the second architecture, so that its medians differ
                    e["seq_acc"] = 1 - e["seq_acc"]
                name = ("RWKV-7 " if arch == "rwkv7" else "DeltaNet ") + sj["eig_range"] + " ("
                expect.setdefault((panel.replace("=", " = "), name), {}).setdefault(e["length"], []).append(e["seq_acc"])
            with open(os.path.join(dst, "summary.json"), "w") as fp:
                json.dump(sj, fp)
    script("fig_suite.py", os.path.join(st, "rwkv7"), os.path.join(st, "deltanet"), "--title", "Fixture suite",
           "--out", out, "--emit-json")
    d = sidecar(out, "suite_seq_acc")
    check("Fixture suite" in d["suptitle"] and "task s5 (swaps)" in d["suptitle"],
          f"suite: the title names the suite and task: {d['suptitle']!r}")
    check(len(d["axes"]) == 2, f"suite: one panel per setting, got {len(d['axes'])}")
    for (panel, name), per_len in expect.items():
        a = axis(d, title=panel)
        ln = next((x for x in a["lines"] if x["label"].startswith(name)), None)
        if not check(ln is not None, f"suite {panel}: no series {name!r} in {[x['label'] for x in a['lines']]}"):
            continue
        lens = sorted(per_len)
        check(close(ln["y"], [float(np.median(per_len[L])) for L in lens]), f"suite {panel} {name}: medians")
        check(close(a["xticks"], lens), f"suite {panel}: ticks not at the tested lengths")
        check(len(a["spans"]) == 1, f"suite {panel}: training range not shaded")
        check(f"(n={len(per_len[lens[0]])})" in ln["label"], f"suite {panel} {name}: seed count in {ln['label']!r}")
    with open(os.path.join(st, "deltanet", os.listdir(os.path.join(st, "deltanet"))[0], "summary.json"), "r+") as fp:
        sj = json.load(fp)
        sj["eval"][0]["seq_acc"] = -0.25
        fp.seek(0), fp.truncate(), json.dump(sj, fp)
    p = script("fig_suite.py", os.path.join(st, "deltanet"), "--out", bad_out, expect=1)
    check("outside [0, 1]" in p.stderr and "-0.25" in p.stderr, f"suite: refusal message: {p.stderr!r}")
    check(not os.path.exists(os.path.join(bad_out, "suite_seq_acc.png")), "suite: a refused figure was written")
    p = script("fig_suite.py", os.path.join(work, "nowhere"), expect=1)
    check("no run directory" in p.stderr, f"fig_suite on a missing directory: {p.stderr!r}")

    # ---- mechanism (fig_mechanism.py): eigenvalue distribution per model, fraction below -0.5 vs accuracy
    mech = os.path.join(work, "mech", "rwkv7")
    with h5py.File(os.path.join(RUN, "run.h5"), "r", locking=False) as g:
        tr = g["trajectories"]
        mins = np.concatenate([tr[p][l]["eig_real"][:].min(axis=2).ravel() for p in sorted(tr)
                               for l in sorted(k for k in tr[p] if k.startswith("layer"))])
        arch, rng = str(g.attrs["arch"]), str(g.attrs["eig_range"])
    accs = {1: 0.75, 2: 0.25}
    for seed, acc in accs.items():
        rd = os.path.join(mech, f"eig_range={rng}-seed{seed}")
        os.makedirs(rd)
        shutil.copy(os.path.join(RUN, "run.h5"), rd)
        with open(os.path.join(rd, "summary.json"), "w") as fp:
            json.dump({"experiment": "fixture_mech", "status": "completed", "seed": seed, "arch": arch,
                       "eig_range": rng, "eval": [{"length": 8, "seq_acc": 0.9}, {"length": 24, "seq_acc": acc}]}, fp)
    script("fig_mechanism.py", mech, "--out", out, "--emit-json")
    d = sidecar(out, "mechanism")
    mm = d["meta"].get("models", [])
    if check(len(mm) == 1, f"mechanism: one model, got {len(mm)}"):
        hist, _ = np.histogram(np.concatenate([mins, mins]), np.linspace(-1.05, 1.05, 43))
        check(close(mm[0]["hist"], hist / (2 * len(mins))), "mechanism: the histogram is not the probes' eigenvalues")
        neg = float((mins < -0.5).mean())
        sc = next((c for c in axis(d, title="one point per run")["collections"]), {"offsets": []})
        check(sorted(map(tuple, sc["offsets"])) == sorted((neg, a) for a in accs.values()),
              f"mechanism: per-run points {sc['offsets']} are not (fraction below -0.5 = {neg}, accuracy at 24)")
    check("negative transition eigenvalues" in d["suptitle"], f"mechanism: title {d['suptitle']!r}")
    p = script("fig_mechanism.py", mech, "--length", "16", "--out", bad_out, expect=1)
    check("no seq_acc at length 16" in p.stderr, f"mechanism: a missing length must be refused: {p.stderr!r}")
    p = script("fig_mechanism.py", os.path.join(work, "nowhere"), expect=1)
    check("no finished run with probe trajectories" in p.stderr, f"mechanism without runs: {p.stderr!r}")

    # ---- depth vs length (fig_depth.py and experiments/depth_table.py share analysis/depthstats.py)
    dep = os.path.join(work, "depth", "rwkv7")
    made = {("extended", "s5", 4, 1): [0.95], ("standard", "s5", 4, 1): [0.3], ("standard", "s5", 4, 2): [0.5, 0.7],
            ("extended", "a5", 4, 1): [0.2], ("extended", "a5", 4, 2): [0.91, 0.99, 0.5]}
    for (rng, g, n, L), accs in made.items():
        for seed, acc in enumerate(accs, 1):
            rd = os.path.join(dep, f"name={g},train_len={n},layers={L},eig_range={rng}-seed{seed}")
            os.makedirs(rd)
            with open(os.path.join(rd, "summary.json"), "w") as fp:
                json.dump({"status": "completed", "arch": "rwkv7", "eig_range": rng, "seed": seed,
                           "eval": [{"length": n, "seq_acc": acc}]}, fp)
    script("fig_depth.py", dep, "--max-layers", "2", "--out", out, "--emit-json")
    d = sidecar(out, "depth_length")
    cells = {(p["group"], c["model"]): (c["state"], c["depth"], c["acc"]) for p in d["meta"].get("panels", [])
             for c in p["cells"]}
    want = {("s5", "RWKV-7 extended"): ("reached", 1, 0.95), ("s5", "RWKV-7 standard"): ("none", 2, 0.6),
            ("a5", "RWKV-7 extended"): ("reached", 2, 0.91)}
    check(set(cells) == set(want) and all(cells[c][:2] == want[c][:2] and abs(cells[c][2] - want[c][2]) < 1e-9
                                          for c in want), f"depth: cells {cells} != {want}")
    check([a["title"].split(" ")[0] for a in d["axes"]] == ["S5", "A5"], f"depth: panels {[a['title'] for a in d['axes']]}")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "depth_table.py"), dep, "--lengths", "4",
                        "--groups", "s5,a5", "--max-layers", "2"], capture_output=True, text=True)
    row = {ln.split(" | ")[0].strip("| "): ln for ln in p.stdout.splitlines() if ln.startswith("| rwkv7")}
    check(p.returncode == 0 and "| 1 (0.95) | 2 (0.91) |" in row.get("rwkv7 extended", "")
          and "| >2 (0.60) | ? |" in row.get("rwkv7 standard", ""), f"depth_table: {p.stdout}{p.stderr}")
    p = script("fig_depth.py", os.path.join(work, "nowhere"), expect=1)
    check("no finished run" in p.stderr, f"fig_depth without runs: {p.stderr!r}")

    # ---- MQAR (fig_mqar.py): accuracy vs state size, one series per lr_mult = lr sqrt(d) T
    mq = os.path.join(work, "mqar")
    made = {(64, 1, 1): 0.5, (64, 1, 2): 0.7, (64, 2, 1): 0.25, (128, 1, 1): 0.9, (128, 2, 1): 0.95}
    for (d, mult, seed), acc in made.items():
        lr = mult / (d ** 0.5 * 64)
        rd = os.path.join(mq, f"d{d}", f"lr={lr:.4g}-seed{seed}")
        os.makedirs(rd)
        with open(os.path.join(rd, "config.ini"), "w") as fp:
            fp.write(f"[model]\narch = rwkv7\nd_model = {d}\nhead_size = 64\ninit = official\n"
                     f"[task]\nname = mqar\nnum_kv = 4\ntrain_len = 64 ; T\n[train]\nlr = {lr:.4g}\n")
        with open(os.path.join(rd, "summary.json"), "w") as fp:
            json.dump({"status": "completed", "arch": "rwkv7", "eig_range": "standard", "seed": seed,
                       "state_size": 2 * (d // 64) * 64 * 64, "steps_done": 10,
                       "eval": [{"length": 64, "token_acc": acc, "seq_acc": acc / 2}]}, fp)
    rd = os.path.join(mq, "d128", "lr=0.009-seed1")  # a run still going: left out and counted
    os.makedirs(rd)
    with open(os.path.join(rd, "summary.json"), "w") as fp:
        json.dump({"status": "running", "eval": []}, fp)
    script("fig_mqar.py", os.path.join(mq, "d64"), os.path.join(mq, "d128"), "--out", out, "--emit-json")
    d = sidecar(out, "mqar")
    a = d["axes"][0] if d["axes"] else {"lines": [], "xticks": [], "collections": []}
    check(close(a["xticks"], [8192, 16384]), f"mqar: ticks {a['xticks']} are not the state sizes")
    check(close(line(a, "lr_mult 1 (n=2)")["y"], [0.6, 0.9]), "mqar: lr_mult 1 medians (0.6 at 8192, 0.9 at 16384)")
    check(close(line(a, "lr_mult 2 (n=1)")["y"], [0.25, 0.95]), "mqar: lr_mult 2 values")
    check(close(line(a, "best lr at each size (median over seeds)")["y"], [0.6, 0.95]), "mqar: best-lr line")
    stars = next((c for c in a["collections"] if c["label"].startswith("RWKV-7 paper")), {"offsets": []})
    check(sorted(map(tuple, stars["offsets"])) == [(8192, 0.94), (16384, 0.99)], f"mqar: published {stars}")
    check("1 run not finished" in d["suptitle"] and "task mqar, (T, K) = (64, 4)" in d["suptitle"]
          and "RWKV-7, standard range" in d["suptitle"] and "init official" in d["suptitle"],
          f"mqar: title names task, model, range, init and the unfinished run: {d['suptitle']!r}")
    with open(os.path.join(mq, "d64", "lr=0.001953-seed1", "summary.json"), "r+") as fp:
        sj = json.load(fp)
        sj["eval"][0]["token_acc"] = 1.5
        fp.seek(0), fp.truncate(), json.dump(sj, fp)
    p = script("fig_mqar.py", os.path.join(mq, "d64"), "--out", bad_out, expect=1)
    check("outside [0, 1]" in p.stderr and "1.5" in p.stderr, f"mqar: refusal message: {p.stderr!r}")
    check(not os.path.exists(os.path.join(bad_out, "mqar.png")), "mqar: a refused figure was written")
    p = script("fig_mqar.py", os.path.join(mq, "d128"), "--published", "8192=0.9", "--out", bad_out, expect=1)
    check("STATE:ACC" in p.stderr, f"mqar: a bad --published must be refused: {p.stderr!r}")
    p = script("fig_mqar.py", os.path.join(work, "nowhere"), expect=1)
    check("no run directory" in p.stderr, f"fig_mqar without runs: {p.stderr!r}")

    # ---- refusals and old files for a run
    bad = os.path.join(work, "bad_run")
    os.makedirs(bad)
    shutil.copy(os.path.join(RUN, "run.h5"), bad)
    with h5py.File(os.path.join(bad, "run.h5"), "r+") as g:
        g["eval/seq_acc"][0] = 1.25
    p = script("fig_length.py", bad, "--out", bad_out, expect=1)
    check("outside [0, 1]" in p.stderr, f"fig_length: refusal message: {p.stderr!r}")
    p = script("fig_length.py", os.path.join(work, "nowhere"), expect=1)
    check("no run.h5" in p.stderr, f"fig_length on a missing run: {p.stderr!r}")
    old = os.path.join(work, "old_run")
    os.makedirs(old)
    shutil.copy(os.path.join(RUN, "run.h5"), old)
    with h5py.File(os.path.join(old, "run.h5"), "r+") as g:  # back to the first layout
        del g["train/wall_s"], g["train/length"], g["eval/scaled_acc"], g.attrs["schema_version"]
        for k in ("step", "run_status", "T", "meaning"):
            g["trajectories/probe0"].attrs.pop(k, None)
    script("plot_run.py", old, "--emit-json")
    d = sidecar(os.path.join(old, "figures"), "learning_curves")
    check(any("wall time not recorded" in t for a in d["axes"] for t in a["texts"]),
          "an old file's learning curves do not say that wall time is missing")
    for n in ("acc_vs_length", "probe0_eig_hist", "probe0_eig_time", "probe0_state", "probe0_state_norm"):
        sidecar(os.path.join(old, "figures"), n)

    # ---- make plots: every run and sweep under a directory
    tree = os.path.join(work, "results")
    shutil.copytree(RUN, os.path.join(tree, "exp", "run1"))
    shutil.copytree(SWEEP, os.path.join(tree, "exp2", "sweep"))
    script("make_figures.py", tree)
    for n in ("learning_curves", "acc_vs_length", "probe0_eig_hist", "probe0_eig_time", "probe0_state"):
        check(os.path.exists(os.path.join(tree, "exp", "run1", "figures", n + ".png")), f"make_figures: {n}")
    check(os.path.exists(os.path.join(tree, "exp2", "sweep", "figures", "sweep_acc_vs_length.png")),
          "make_figures: the sweep figure")
    # ---- the gallery, from demo-named runs
    gal = os.path.join(work, "gal")
    for exp in ("demo_s5_swaps", "demo_s3"):
        d = os.path.join(gal, exp, "seed1-20260101-000000")
        shutil.copytree(RUN, d)
        json.dump({"status": "completed"}, open(os.path.join(d, "summary.json"), "w"))
    script("gallery.py", "--results", gal, "--emit-json")
    for n in ("1_s5_acc_vs_length", "2_s5_eigenvalues", "3_s3_learning_curves"):
        sidecar(os.path.join(gal, "gallery"), n)
    shutil.copytree(SWEEP, os.path.join(gal, "s5_swaps_eig_sweep", "sweep"))
    script("gallery.py", "--results", gal)
    check(os.path.exists(os.path.join(gal, "gallery", "4_sweep_eig_range.png")), "gallery: the sweep figure")
    shutil.copytree(os.path.join(st, "rwkv7"), os.path.join(gal, "s5_swaps", "rwkv7"))  # the suite wins
    script("gallery.py", "--results", gal, "--emit-json")
    d = sidecar(os.path.join(gal, "gallery"), "4_s5_swaps_models")
    check("S5 under swaps" in d["suptitle"] and len(d["axes"]) == 1, f"gallery: the suite figure {d['suptitle']!r}")
    p = script("gallery.py", "--results", os.path.join(work, "empty_results"))
    check("make demo" in p.stdout, f"gallery without runs must say how to make them: {p.stdout!r}")

    script("plot_sweep.py", SWEEP, "--out", os.path.join(work, "ps"))
    check(os.path.exists(os.path.join(work, "ps", "sweep_acc_vs_length.png")), "plot_sweep.py (old name)")

    if failures:
        print(f"check_figures: {len(failures)} check(s) failed")
        return 1
    print("check_figures: every script ran; the figures hold the fixture's series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
