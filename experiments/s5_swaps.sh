#!/usr/bin/env bash
# s5_swaps.sh -- issue 11: S5 under swaps (Grazzi et al., ICLR 2025, sec. 5.2): train length 32, test to
# 500, DeltaNet standard vs extended, RWKV-7 standard vs extended, RWKV-6; 1, 2 and 4 layers (a model can
# fit the training length without generalising: the table shows both); 3 seeds, median and best.
#
#   experiments/s5_swaps.sh [--layers 1,2,4] [extra sweep options]
#
# Config and what was scaled down: configs/grazzi_s5_swaps_suite.ini (d_model 64, 4 heads of 16, 800
# steps of batch 64, lr 3e-3: the same for every model and depth).
# CPU budget on an idle 2-core machine, --jobs 2 (JOBS=N to change): 1 layer about 6 min (15 runs),
# 2 layers about 11 min, 4 layers about 20 min: about 37 min for all three; --layers 1 (or 1,2) runs a part
# (each depth is its own sweep, so a later call adds the other depths to the same table).
# Resumable (rwkvlab sweep): run it again to continue. Output: results/s5_swaps/<arch>/<run>/ and
# results/s5_swaps/table.md (sequence accuracy, median / best over seeds, per test length).
cd "$(dirname "$0")/.."
. experiments/lib.sh
OUT=${S5_OUT:-results/s5_swaps}
CFG=configs/grazzi_s5_swaps_suite.ini
LAYERS=1,2,4
suite_options "layers=LAYERS" "$@"
suite_begin s5_swaps
MODELS="deltanet:standard deltanet:extended rwkv7:standard rwkv7:extended rwkv6:standard"
rc=0
for L in ${LAYERS//,/ }; do
  sweep_models "$CFG" "$OUT" "$MODELS" --set sweep.model.layers="$L" "${ARGS[@]}"
  suite_keep $?
done
wall=$(suite_wall)
echo
echo "== s5_swaps table (this invocation: $((wall / 60)) min $((wall % 60)) s on $(nproc) cores, --jobs $JOBS, layers $LAYERS)"
$PY experiments/summarize.py "$OUT"/* --metric seq_acc \
  --title "S5 swaps (configs/grazzi_s5_swaps_suite.ini), sequence accuracy; last invocation $wall s, layers $LAYERS" \
  --out "$OUT/table.md" || rc=1
suite_figure "S5 under swaps (experiments/s5_swaps.sh)" seq_acc s5_swaps "$OUT"/* || rc=1
echo "(published, Grazzi et al. Fig. 4: DeltaNet[-1,1] 1 layer learns swaps; DeltaNet[0,1] does not)"
exit "$rc"
