#!/usr/bin/env python3
"""live_read.py -- read run.h5 with h5py while `rwkvlab train` appends to it (analysis/README.md,
"Reading a run while it trains").

    python3 tests/plots/live_read.py RWKVLAB_BIN WORK_DIR

Starts a small training run that logs every step, opens its run.h5 over and over with
h5py.File(path, "r", locking=False) (through analysis/rwkvplot.open_run, the scripts' own reader) while
the run writes. Every read is cut to the shortest /train dataset (datasets opened a moment apart may
differ by the records appended in between) and kept; at least 3 reads must see the file grow while the
run is still going, and at the end every read must equal the same records of the finished file (step,
loss, acc: what a reader saw was true), which must hold every step. Exit 0 on success, 1 with a message otherwise.
"""
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "analysis"))
import rwkvplot  # noqa: E402

CONFIG = """[experiment]
name = live_read
[model]
layers = 1
d_model = 16
head_size = 8
[task]
name = s3
train_len = 8
test_lens = 8, 16
test_size = 8
[train]
steps = 600
batch = 4
warmup = 2
log_every = 1
eval_every = 50
ckpt_every = 1000
[log]
trajectories = 1
trajectory_len = 16
"""


def fail(msg):
    print(f"live_read: FAIL: {msg}")
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "live.ini")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    run_dir = os.path.join(work, "run")
    h5 = os.path.join(run_dir, "run.h5")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([binary, "train", cfg, "--out", run_dir, "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen, growing, errors, last_n, snaps = 0, 0, 0, 0, []
    try:
        while proc.poll() is None:
            if not os.path.exists(h5):
                time.sleep(0.01)
                continue
            try:
                with rwkvplot.open_run(h5, retries=1) as f:
                    rec = rwkvplot.read_group(f, "train")
                n = 0 if rec is None else len(rec["step"])
                if n:
                    snaps.append({k: rec[k] for k in ("step", "loss", "acc")})
            except (rwkvplot.PlotError, OSError, KeyError):
                errors += 1  # caught the writer mid-flush (run.h5 is not SWMR): a reader retries
                continue
            seen += 1
            if n > last_n and proc.poll() is None:
                growing += 1
            last_n = max(last_n, n)
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        fail(f"the training run exited {proc.returncode}: {err}")
    if errors > seen:
        fail(f"{errors} of {seen + errors} reads failed while the run wrote: live reading is not usable")
    if growing < 3:
        fail(f"only {growing} reads saw run.h5 grow while the run was writing ({seen} reads, {errors} failed)")
    with rwkvplot.open_run(h5) as f:
        final = rwkvplot.read_group(f, "train")
    if len(final["step"]) != 600 or not (final["step"] == 1 + np.arange(600)).all():
        fail(f"the finished run.h5 holds {len(final['step'])} /train records, expected steps 1..600")
    for s in snaps:
        n = len(s["step"])
        for k in s:
            if not np.array_equal(s[k], final[k][:n]):
                fail(f"a live read of {n} records differs from the finished file in /train/{k}")
    print(f"live_read: {seen} reads while the run wrote ({growing} saw it grow, {errors} retried), final file complete")


if __name__ == "__main__":
    main()
