#!/usr/bin/env bash
# parity.sh -- issue 8 item 10: Grazzi et al. (ICLR 2025) parity, their Table 3 protocol scaled to a CPU,
# for DeltaNet standard vs extended, RWKV-6, RWKV-7 standard vs extended; 3 seeds each (15 runs).
#
#   experiments/parity.sh [--jobs N] [extra sweep options, e.g. --set train.steps=...]
#
# Protocol and settings: configs/grazzi_parity.ini (its header says what was scaled down). The same for
# every architecture: 1 layer, d_model 32, head size 16, no short convolution, 4000 steps of batch 64, lr
# 3e-3, train on 2..39 bits (one length per sequence), class read at the last bit, test 39..255 bits.
# CPU budget: measured 9 min 23 s on an idle 2-core machine with --jobs 2 (15 runs of about 1 minute, two at
# a time on one thread each; more when other jobs share the cores -- the wall time is printed).
# Resumable: built on `rwkvlab sweep` (two sweeps: DeltaNet and RWKV-7 x both ranges, then RWKV-6, which
# has only the standard range). Run it again after an interruption and it continues; finished runs are
# skipped. Output: results/parity/{deltanet_rwkv7,rwkv6}/<run>/ and the table results/parity/table.md
# (scaled accuracy (acc - 1/2) / (1/2), median / best over the seeds, per test length and the mean over
# 39..255, Grazzi's test range).
set -uo pipefail
cd "$(dirname "$0")/.."
. experiments/lib.sh
OUT=${PARITY_OUT:-results/parity}
CFG=configs/grazzi_parity.ini
suite_options "jobs=JOBS" "$@"
suite_begin parity
rc=0
echo "== parity: DeltaNet and RWKV-7, standard and extended range, 3 seeds ($BIN sweep, --jobs $JOBS)"
"$BIN" sweep "$CFG" --jobs "$JOBS" --out "$OUT/deltanet_rwkv7" "${ARGS[@]}" || rc=$?
if [ "$rc" = 130 ]; then echo "interrupted: run experiments/parity.sh again to continue"; exit 130; fi
echo "== parity: RWKV-6 (standard range only), 3 seeds"
"$BIN" sweep "$CFG" --set model.arch=rwkv6 --set model.eig_range=standard --set sweep.model.arch=rwkv6 \
  --set sweep.model.eig_range=standard --jobs "$JOBS" --out "$OUT/rwkv6" "${ARGS[@]}" || rc=$((rc ? rc : $?))
if [ "$rc" = 130 ]; then echo "interrupted: run experiments/parity.sh again to continue"; exit 130; fi
wall=$(suite_wall)
echo
echo "== parity table (this invocation's wall time: $((wall / 60)) min $((wall % 60)) s on $(nproc) cores, --jobs $JOBS)"
$PY experiments/summarize.py "$OUT/deltanet_rwkv7" "$OUT/rwkv6" --metric scaled_acc \
  --lengths 10,20,39,135,255 --mean 39-255 \
  --title "Grazzi parity (configs/grazzi_parity.ini), scaled accuracy; wall time of the last invocation $wall s" \
  --out "$OUT/table.md" || rc=1
echo "(published, Grazzi et al. Table 3, mean over test lengths 40..256: DeltaNet[-1,1] 1.000, DeltaNet[0,1] 0.017)"
suite_figure "Parity (experiments/parity.sh)" seq_acc parity "$OUT/deltanet_rwkv7" "$OUT/rwkv6" || rc=1
echo "table: $OUT/table.md"
exit "$rc"
