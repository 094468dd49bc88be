#!/usr/bin/env bash
# device_run.sh [all | a comma list of tests,lmeval,decode,memcheck] -- run on the GPU machine from a folder unpacked by
# pack_carry.sh's go.sh. Logs go to $OUT (or ./out); a summary is printed last. Steps, in order of
# priority, each under its own time limit, all within RWKVLAB_DEADLINE seconds (default 330):
#   tests     test_gpu: GPU vs CPU (+ lmeval CPU vs GPU on small models, the full lambada_openai)
#   lmeval    end-to-end `time rwkvlab lmeval --device cuda` on full lambada_openai, random 0.1B and
#             1.5B shapes (V = 65536) made here by `rwkvlab init --random 0.02`
#   decode    bench_gpu --only decode (B = 1, 64, 256; CUDA graph) and `rwkvlab generate` at B = 1
#   memcheck  compute-sanitizer memcheck over test_gpu --quick
set -u
cd "$(dirname "$0")"
out=${OUT:-./out}
mkdir -p "$out"
what=${1:-all}
deadline=$(( $(date +%s) + ${RWKVLAB_DEADLINE:-330} ))
left() { echo $(( deadline - $(date +%s) )); }
lim() { local l; l=$(left); [ "$1" -lt "$l" ] && echo "$1" || echo $(( l > 5 ? l - 5 : 1 )); }
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv; nproc;
  ldd ./rwkvlab ./test_gpu | grep 'not found'; } 2>&1 | tee "$out/env.txt"
summary=""
on() { [ "$what" = all ] || [[ ",$what," == *",$1,"* ]]; }
t0=$(date +%s.%N)
secs() { echo "$(date +%s.%N) $1" | awk '{printf "%.2f", $1 - $2}'; }

if on tests; then
  timeout "$(lim 240)" ./test_gpu --require-data --data . --lmeval-data data --lmeval-full > "$out/test_gpu.log" 2>&1
  summary+="test_gpu rc=$?: $(tail -1 "$out/test_gpu.log")"$'\n'
fi

if on lmeval && [ "$(left)" -gt 60 ]; then
  L=$out/lmeval.log
  : > "$L"
  for shape in "0.1b 12 768" "1.5b 24 2048"; do
    set -- $shape
    s=$(date +%s.%N)
    timeout "$(lim 60)" ./rwkvlab init --random 0.02 --vocab 65536 --layers "$2" --d-model "$3" --head-size 64 \
      --dtype bf16 --to "/tmp/rand_$1.pth" >> "$L" 2>&1
    echo "init $1: rc=$? $(secs "$s") s" >> "$L"
    cat "/tmp/rand_$1.pth" > /dev/null  # in the page cache, as after any recent write
    for run in "100000 1" "0 1" "100000 0"; do  # bootstrap resamples, huge pages for the host copy
      set -- $shape $run
      s=$(date +%s.%N)
      RWKVLAB_HUGEPAGES=$5 timeout "$(lim 60)" ./rwkvlab lmeval --device cuda --model "/tmp/rand_$1.pth" \
        --tasks lambada_openai --data data --out "/tmp/lm_$1_$4_$5" --bootstrap $4 >> "$L" 2>&1
      rc=$?
      summary+="lmeval cuda lambada_openai $1 (bootstrap $4, hugepages $5): rc=$rc end to end $(secs "$s") s"$'\n'
    done
    set -- $shape
    s=$(date +%s.%N)
    timeout "$(lim 60)" ./rwkvlab generate --device cuda --model "/tmp/rand_$1.pth" --tokens 1,2,3,4,5,6,7,8 --n 512 \
      --batch 1 >> "$L" 2>&1
    summary+="generate cuda $1 B=1 n=512: rc=$? $(secs "$s") s: $(grep 'rwkvlab generate:' "$L" | tail -1)"$'\n'
    [ "$1" = 1.5b ] || rm -f "/tmp/rand_$1.pth"
  done
fi

if on decode && [ "$(left)" -gt 40 ]; then
  timeout "$(lim 90)" ./bench_gpu --only decode --shapes 0.1b,1.5b > "$out/bench_decode.log" 2>&1
  summary+="bench_gpu decode rc=$?"$'\n'
fi

if on memcheck && [ "$(left)" -gt 30 ]; then
  timeout "$(lim 120)" compute-sanitizer --tool memcheck --error-exitcode 3 ./test_gpu --quick --require-data --data . \
    > "$out/memcheck.log" 2>&1
  summary+="memcheck rc=$?: $(grep -E 'ERROR SUMMARY' "$out/memcheck.log" | tail -1) / $(grep '^test_gpu:' "$out/memcheck.log" | tail -1)"$'\n'
fi

# the full logs come back in $OUT; print what needs a look
[ -f "$out/test_gpu.log" ] && grep -E 'FAIL|SKIP|reverse_L2|lmeval|limit|FULL|generate|decode|shared|gather' "$out/test_gpu.log" | head -60
[ -f "$out/lmeval.log" ] && grep -E 'lambada|GPU|wrote|error|generate|init' "$out/lmeval.log" | head -30
[ -f "$out/bench_decode.log" ] && grep -E 'decode|memory|bench_gpu' "$out/bench_decode.log" | head -20
[ -f "$out/memcheck.log" ] && grep -E '^=========' "$out/memcheck.log" | head -10
printf '%s' "$summary"
echo "device_run: $(secs "$t0") s"
