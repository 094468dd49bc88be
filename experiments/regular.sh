#!/usr/bin/env bash
# regular.sh -- issue 11 "Regular languages": Delétang et al.'s four regular tasks (parity, even_pairs,
# cycle_nav, mod_arith; train input lengths 1-40, test 41-500, their score = accuracy averaged over the
# test lengths) and Grazzi et al.'s modular arithmetic without and with brackets (scaled accuracy, test
# 40-254), every architecture: RWKV-7, DeltaNet and Gated DeltaNet in both ranges, RWKV-6. Grazzi's parity
# table is experiments/parity.sh.
#
#   experiments/regular.sh [--seeds 1,2,3] [extra sweep options]
#
# Configs: configs/deletang_regular.ini and configs/grazzi_modarith.ini (protocols, read-outs and lengths in
# their headers), scaled further here, the same for every architecture and task: 2 layers, d_model 32,
# head size 16, 1500 steps of batch 64, lr 3e-3 (100 warmup steps), 128 test sequences per length.
# CPU budget on an idle 2-core machine, --jobs 2: about 1 minute per run; 6 tasks x 7 models = 42 runs per
# seed: about 20 minutes per seed (default: seed 1 only; --seeds 1,2,3 for the median/best over 3, about
# 1 hour). Resumable (rwkvlab sweep). Output: results/regular/{deletang,grazzi_modarith}/<arch>/<run>/,
# results/regular/deletang.md (token accuracy = their score, which reads one class per sequence) and
# results/regular/grazzi_modarith.md (scaled accuracy).
cd "$(dirname "$0")/.."
. experiments/lib.sh
OUT=${REGULAR_OUT:-results/regular}
SEEDS=1
suite_options "seeds=SEEDS" "$@"
suite_begin regular
SCALE=(--set model.layers=2 --set model.d_model=32 --set model.head_size=16 --set train.steps=1500
       --set train.batch=64 --set train.lr=3e-3 --set train.warmup=100 --set train.eval_every=1500
       --set train.ckpt_every=500 --set task.test_size=128 --set "experiment.seeds=$SEEDS")
MODELS="rwkv7:standard rwkv7:extended deltanet:standard deltanet:extended gated_deltanet:standard gated_deltanet:extended rwkv6:standard"
rc=0
sweep_models configs/deletang_regular.ini "$OUT/deletang" "$MODELS" "${SCALE[@]}" "${ARGS[@]}"
suite_keep $?
sweep_models configs/grazzi_modarith.ini "$OUT/grazzi_modarith" "$MODELS" "${SCALE[@]}" "${ARGS[@]}"
suite_keep $?
wall=$(suite_wall)
echo
echo "== regular tables (this invocation: $((wall / 60)) min $((wall % 60)) s on $(nproc) cores, --jobs $JOBS, seeds $SEEDS)"
$PY experiments/summarize.py "$OUT"/deletang/* --metric token_acc --lengths 42,92,242,501 --mean 42-501 \
  --title "Deletang regular tasks (configs/deletang_regular.ini, scaled: experiments/regular.sh); their score = mean over test lengths; last invocation $wall s" \
  --out "$OUT/deletang.md" || rc=1
$PY experiments/summarize.py "$OUT"/grazzi_modarith/* --metric scaled_acc --lengths 40,136,254 --mean 40-254 \
  --title "Grazzi modular arithmetic (configs/grazzi_modarith.ini, scaled: experiments/regular.sh); last invocation $wall s" \
  --out "$OUT/grazzi_modarith.md" || rc=1
suite_figure "Deletang regular tasks (experiments/regular.sh)" token_acc deletang "$OUT"/deletang/* || rc=1
suite_figure "Grazzi modular arithmetic (experiments/regular.sh)" seq_acc grazzi_modarith "$OUT"/grazzi_modarith/* || rc=1
echo "(published: Deletang Transformer parity 52.0, mod_arith 24.2, even_pairs 96.4, cycle_nav 61.9, RNN/LSTM 100 (best of 10 seeds x 3 lr);"
echo " Grazzi Table 3 mod arith w/o brackets: DeltaNet[-1,1] 0.971, DeltaNet[0,1] 0.314)"
exit "$rc"
