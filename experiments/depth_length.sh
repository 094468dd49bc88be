#!/usr/bin/env bash
# depth_length.sh -- issue 11 "Depth versus length": Merrill et al. (ICML 2024) finite-dataset protocol
# (configs/merrill_depth.ini: for each length n, train on 80% of the distinct length-n sequences plus every
# length-2 sequence, test on the held-out 20%) on S5, A5 and Z60 (the abelian control), and for each
# architecture the minimum number of layers whose held-out sequence accuracy exceeds 90% at each n.
#
#   experiments/depth_length.sh [--lengths 4,6] [--groups s5,a5,z60] [--max-layers 2] [--seeds 1] [--set k=v ...]
#
# Further --set options go to every sweep after the scale below (tests/test_suites.c runs the suite at a
# toy scale this way; results at another scale are not the ones EXPERIMENTS.md reports).
# Search: for each (model, group, n) depths 1, 2, ... are trained in turn until one reaches > 0.9 (median
# over the seeds); deeper ones are not run. Models (every architecture): RWKV-7, DeltaNet and Gated
# DeltaNet in both ranges, RWKV-6. Two lanes run side by side, each with its own models (each sweep has
# --jobs 2, so a run gets one thread; the sweeps' output goes to results/depth_length/lanes.log).
# Scaled down for a CPU, the same for every model: n in {4, 6} (paper 2..20), depths 1 and 2 (paper up
# to 8+), at most 20000 length-n sequences (paper 1M), d_model 128 with heads of 32, at most 2000 steps of
# batch 64, lr 3e-3, early stop at 0.9, 1 seed (--seeds 1,2,3 for three). Calibration (RWKV-7 extended,
# Z60, n = 4, 2 layers): d_model 128 reaches 0.961 held-out at step 2000; d_model 64 with 1 layer and the
# config's lr 1e-3 stays at 0.018 after 4000 steps, and d_model 32 at 1500 steps learns nothing anywhere.
# CPU budget on an idle 2-core machine: 30-70 s per run; 7 models x 3 groups x 2 lengths = 42 searches of
# 1-2 runs: about 30-45 minutes (a cell that learns at depth 1 stops there). Resumable: each depth of each cell is a
# `rwkvlab sweep` of its own; run it again to continue. Output: results/depth_length/<arch>/<run>/,
# results/depth_length/table.md and results/depth_length/figures/depth_length.png (analysis/fig_depth.py).
cd "$(dirname "$0")/.."
. experiments/lib.sh
OUT=${DEPTH_OUT:-results/depth_length}
LENGTHS=4,6; GROUP_LIST=s5,a5,z60; MAXL=2; SEEDS=1
suite_options "lengths=LENGTHS groups=GROUP_LIST max-layers=MAXL seeds=SEEDS" "$@"
for ((i = 0; i < ${#ARGS[@]}; i += 2)); do
  [ "${ARGS[i]}" = --set ] && [ -n "${ARGS[i + 1]:-}" ] || { echo "depth_length.sh: unknown option ${ARGS[i]} (see the header)"; exit 1; }
done
suite_begin depth_length
SCALE=(--set model.d_model=128 --set model.head_size=32 --set train.steps=2000 --set train.lr=3e-3
       --set train.warmup=100 --set train.eval_every=500 --set train.ckpt_every=500 --set train.log_every=50
       --set "experiment.seeds=$SEEDS" --set task.variant=full)
# one cell: the smallest depth reaching > 0.9 (prints it); every depth is its own resumable sweep, tested at
# its own n only (so a run's config does not depend on which other lengths this invocation covers)
cell() {
  local arch=$1 range=$2 group=$3 n=$4 L
  for L in $(seq 1 "$MAXL"); do
    "$BIN" sweep configs/merrill_depth.ini --set model.arch="$arch" --set model.eig_range="$range" \
      --set sweep.task.name="$group" --set sweep.task.train_len="$n" --set sweep.model.layers="$L" \
      --set sweep.model.eig_range="$range" --set task.train_len="$n" --set task.test_lens="$n" "${SCALE[@]}" "${ARGS[@]}" --jobs 2 --out "$OUT/$arch" >>"$OUT/lanes.log" 2>&1
    local r=$?
    [ "$r" = 130 ] && return 130
    if [ "$r" != 0 ]; then
      echo "  FAILED: $arch $range $group n=$n, $L layers: rwkvlab sweep exit $r (its output: $OUT/lanes.log)"
      return 1
    fi
    if $PY experiments/depth_table.py --check "$OUT/$arch" --group "$group" --n "$n" --layers "$L" --range "$range"; then
      return 0
    fi
  done
}
lane() {
  local fail=0 r
  for m in "$@"; do
    for g in ${GROUP_LIST//,/ }; do
      for n in ${LENGTHS//,/ }; do
        cell "${m%%:*}" "${m#*:}" "$g" "$n"
        r=$?
        [ "$r" = 130 ] && return 130
        if [ "$r" = 0 ]; then echo "  $m $g n=$n done"; else fail=1; fi
      done
    done
  done
  return "$fail"
}
mkdir -p "$OUT"
echo "== depth_length: groups $GROUP_LIST, lengths $LENGTHS, up to $MAXL layers, seeds $SEEDS, 2 lanes"
lane rwkv7:standard rwkv7:extended deltanet:standard rwkv6:standard &
p1=$!
lane deltanet:extended gated_deltanet:standard gated_deltanet:extended &
p2=$!
trap 'kill -TERM $p1 $p2 2>/dev/null; wait; echo "interrupted: run it again to continue"; exit 130' INT TERM
wait $p1; r1=$?; wait $p2; r2=$?
wall=$(suite_wall)
echo
echo "== depth_length table (this invocation: $((wall / 60)) min $((wall % 60)) s on $(nproc) cores)"
$PY experiments/depth_table.py "$OUT"/* --lengths "$LENGTHS" --groups "$GROUP_LIST" --max-layers "$MAXL" \
  --title "Merrill depth protocol (configs/merrill_depth.ini, scaled: experiments/depth_length.sh); last invocation $wall s" \
  --out "$OUT/table.md"
rc=$?
suite_plot fig_depth.py "$OUT"/* --max-layers "$MAXL" --title "Depth versus length (experiments/depth_length.sh)" \
  --out "$OUT/figures" || rc=1
[ "$r1" = 0 ] && [ "$r2" = 0 ] || rc=1
exit "$rc"
