#!/usr/bin/env bash
# copy_figures.sh -- copy each suite's figure (results/<suite>/.../figures/<name>.png, drawn by the suite
# itself) into results/figures/, the committed copies that EXPERIMENTS.md shows. Run it after a suite,
# then commit results/figures/ if the figures changed. A suite not yet run is skipped with a note.
cd "$(dirname "$0")/.."
mkdir -p results/figures
n=0
for f in results/parity/figures/parity.png results/s5_swaps/figures/s5_swaps.png \
         results/regular/deletang/figures/deletang.png results/regular/grazzi_modarith/figures/grazzi_modarith.png \
         results/depth_length/figures/depth_length.png results/mqar/figures/mqar.png \
         results/mechanism/figures/mechanism_parity.png results/mechanism/figures/mechanism_s5_swaps.png; do
  if [ -f "$f" ]; then cp "$f" results/figures/ && n=$((n + 1)); else echo "copy_figures: no $f (suite not run yet)"; fi
done
echo "copy_figures: $n figure(s) in results/figures/"
