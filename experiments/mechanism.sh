#!/usr/bin/env bash
# mechanism.sh -- issue 11 "Mechanism": for the trained models of parity.sh and s5_swaps.sh (every
# architecture and range, every seed), the distribution of each step's transition eigenvalues on the
# probe sequences saved in run.h5 (how often and how far below zero), next to the model's accuracy.
#
#   experiments/mechanism.sh            (after experiments/parity.sh and/or experiments/s5_swaps.sh)
#
# Reads PARITY_OUT and S5_OUT (default results/parity, results/s5_swaps) as those suites do; writes MECH_OUT.
#
# CPU budget: no training; reading the trajectories takes seconds. The probes are the first
# log.trajectories sequences of the longest test length's fixed test set (parity: 2 probes of 255 bits;
# S5: 2 of 500 swaps), so the statistics are over test sequences the model was scored on.
# Output: results/mechanism/{parity,s5_swaps}.md (per grid point), *_runs.md (per seed) and
# results/mechanism/figures/mechanism_{parity,s5_swaps}.png (analysis/fig_mechanism.py: the distribution of
# each step's smallest eigenvalue per model, and per run the fraction below -0.5 against accuracy). Needs numpy and h5py (Debian: python3-h5py).
cd "$(dirname "$0")/.."
. experiments/lib.sh
PY=python3
python3 -c 'import h5py' 2>/dev/null || PY=/usr/bin/python3
OUT=${MECH_OUT:-results/mechanism}
PAR=${PARITY_OUT:-results/parity}   # where parity.sh and s5_swaps.sh wrote (their own variables)
S5=${S5_OUT:-results/s5_swaps}
rc=1; figrc=0
if ls $PAR/*/*/run.h5 >/dev/null 2>&1; then
  echo "== mechanism: parity ($PAR)"
  $PY experiments/mechanism.py "$PAR"/* --metric scaled_acc  \
    --title "Parity (experiments/parity.sh): transition eigenvalues vs scaled accuracy at T = 255; token 0 = the bit 0, the other = the bit 1" \
    --out "$OUT/parity.md" && rc=0
  $PY experiments/mechanism.py "$PAR"/* --metric scaled_acc --per-run --out "$OUT/parity_runs.md" >/dev/null
  suite_plot fig_mechanism.py "$PAR"/* --title "Parity (experiments/parity.sh)" --out "$OUT/figures" \
    --name mechanism_parity || figrc=1
fi
if ls $S5/*/*/run.h5 >/dev/null 2>&1; then
  echo "== mechanism: S5 swaps ($S5)"
  $PY experiments/mechanism.py "$S5"/* --metric seq_acc --length 256 \
    --title "S5 swaps (experiments/s5_swaps.sh): transition eigenvalues vs sequence accuracy at T = 256 (8x the training length); token 0 = the identity, the others = the transpositions" \
    --out "$OUT/s5_swaps.md" && rc=0
  $PY experiments/mechanism.py "$S5"/* --metric seq_acc --length 256 --per-run --out "$OUT/s5_swaps_runs.md" >/dev/null
  suite_plot fig_mechanism.py "$S5"/* --length 256 --title "S5 under swaps (experiments/s5_swaps.sh)" \
    --out "$OUT/figures" --name mechanism_s5_swaps || figrc=1
fi
[ "$rc" = 0 ] || echo "mechanism.sh: no trained runs yet: run experiments/parity.sh or experiments/s5_swaps.sh first"
[ "$figrc" = 0 ] || { echo "mechanism.sh: a figure failed (see above)"; rc=1; }
exit "$rc"
