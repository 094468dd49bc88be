#!/usr/bin/env bash
# make_fixtures.sh -- regenerate the figure tests' fixtures in tests/fixtures/plots/ from real tiny runs:
#   run/run.h5            a 300-step RWKV-7 run (2 layers, 2 heads of size 8, S5 swaps, training lengths 4-12,
#                         one 24-token probe); the file only (< 200 KB)
#   sweep/sweep.json      a 2-point x 2-seed sweep (eig_range standard / extended), with each run's
#   sweep/<run>/summary.json   summary.json and config.ini (no checkpoints, no run.h5)
# Usage: tests/plots/make_fixtures.sh [RWKVLAB_BIN]   (from the repository root; takes ~15 s on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build/rwkvlab}
DST=tests/fixtures/plots
work=$(mktemp -d /tmp/rwkvlab_plotfx_XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
cat > "$work/run.ini" <<'INI'
[experiment]
name = fixture_s5_swaps
seeds = 1
[model]
arch = rwkv7
layers = 2
d_model = 16
head_size = 8
eig_range = extended
[task]
name = s5
variant = swaps
train_len = 4-12
test_lens = 4, 8, 16, 32
test_size = 32
[train]
steps = 300
batch = 32
lr = 1e-2
warmup = 20
eval_every = 50
log_every = 5
ckpt_every = 1000
[log]
trajectories = 1
trajectory_len = 24
INI
sed -e 's/^name = fixture_s5_swaps/name = fixture_sweep/' -e 's/^layers = 2/layers = 1/' -e 's/^steps = 300/steps = 150/' \
    -e 's/^trajectories = 1/trajectories = 0/' "$work/run.ini" > "$work/sweep.ini"
printf '[sweep]\nmodel.eig_range = standard, extended\n' >> "$work/sweep.ini"
sed -i 's/^seeds = 1/seeds = 1, 2/' "$work/sweep.ini"
"$BIN" train "$work/run.ini" --out "$work/run" --quiet
"$BIN" sweep "$work/sweep.ini" --out "$work/sweep" --jobs 2 > "$work/sweep.log"
rm -rf "$DST"
mkdir -p "$DST/run" "$DST/sweep"
cp "$work/run/run.h5" "$DST/run/"
# sweep.json names each run by its directory: keep the name only (fig_sweep.py looks beside sweep.json)
sed "s#\"$work/sweep/#\"#" "$work/sweep/sweep.json" > "$DST/sweep/sweep.json"
for d in "$work"/sweep/*/; do
  [ -f "$d/summary.json" ] || continue
  n=$(basename "$d")
  mkdir -p "$DST/sweep/$n"
  sed "s#$work/sweep/##" "$d/summary.json" > "$DST/sweep/$n/summary.json"
  cp "$d/config.ini" "$DST/sweep/$n/"
done
du -sh "$DST"
