#!/usr/bin/env bash
# The main job (`make demo`): train a small RWKV-7 on S5 with swap inputs and on S3, then print
# accuracy vs length for both. Runs go to results/<experiment>/seed1-<time>/ (never overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RWKVLAB_BIN:-build/rwkvlab}
start=$(date +%s)
dirs=()
for cfg in configs/demo_s5_swaps.ini configs/demo_s3.ini; do
  echo "== $BIN train $cfg"
  out=$(mktemp)
  "$BIN" train "$cfg" "$@" | tee "$out"
  dirs+=("$(sed -n 's/.*results in \(.*\)$/\1/p' "$out" | tail -n 1)")
  rm -f "$out"
done
echo
echo "== demo summary (wall time $(( $(date +%s) - start )) s on $(nproc) cores)"
for d in "${dirs[@]}"; do
  sed -n '/^accuracy vs length/,/^done:/p' "$d/run.log" | sed '$d'
  echo "   (run: $d)"
done
