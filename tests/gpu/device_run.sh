#!/usr/bin/env bash
# device_run.sh [tests|memcheck|bench|all] [bench args...] -- run on the GPU machine from a folder made by
# pack_carry.sh. Logs go to $OUT (or ./out); a summary is printed last.
set -u
cd "$(dirname "$0")"
out=${OUT:-./out}
mkdir -p "$out"
what=${1:-all}
shift || true
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
if ! ldconfig -p | grep -q libcublas.so.13 && [ ! -e /usr/local/cuda/lib64/libcublas.so.13 ]; then
  d=$(dirname "$(find / -name 'libcublas.so.13' -not -path '/proc/*' 2>/dev/null | head -1)")
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv; ldd ./test_gpu | grep 'not found'; } 2>&1 | tee "$out/env.txt"
summary=""
if [ "$what" = tests ] || [ "$what" = all ]; then
  timeout 300 ./test_gpu --require-data --data . > "$out/test_gpu.log" 2>&1
  summary+="test_gpu rc=$?: $(tail -1 "$out/test_gpu.log")"$'\n'
fi
if [ "$what" = memcheck ] || [ "$what" = all ]; then
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 ./test_gpu --quick --require-data --data . > "$out/memcheck.log" 2>&1
  summary+="memcheck rc=$?: $(grep -E 'ERROR SUMMARY' "$out/memcheck.log" | tail -1) / $(grep '^test_gpu:' "$out/memcheck.log" | tail -1)"$'\n'
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  timeout 300 ./bench_gpu "$@" > "$out/bench_gpu.log" 2>&1
  summary+="bench_gpu rc=$?"$'\n'
fi
# the full logs come back in $OUT; print only what needs a look
[ -f "$out/test_gpu.log" ] && grep -E 'FAIL|SKIP|reverse_L2' "$out/test_gpu.log" | head -40
[ -f "$out/memcheck.log" ] && grep -E '^=========' "$out/memcheck.log" | head -20
[ -f "$out/bench_gpu.log" ] && grep -vE '^\| ' "$out/bench_gpu.log" | tail -40
printf '%s' "$summary"
