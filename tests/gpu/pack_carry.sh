#!/usr/bin/env bash
# pack_carry.sh DEST -- gather what the GPU machine needs to run the GPU tests, the benchmarks and the CLI
# built here into DEST/bundle.tgz (+ DEST/go.sh): build/rwkvlab, build/test_gpu, build/bench_gpu, the shared
# libraries they use that a bare CUDA image lacks (GSL, OpenBLAS and its Fortran runtime, cJSON, inih, bz2;
# the CUDA runtime is linked statically, cuBLAS comes from the image's toolkit), the fixture files the tests
# read, the tokenizer vocabulary and the lm-eval task files (data/: lambada_openai, piqa, hellaswag,
# arc_easy, winogrande, copa), and tests/gpu/device_run.sh. Run from the repository root after `make all`;
# then on the GPU machine: bash DEST/go.sh [device_run.sh arguments] (unpacks to /tmp/rwkvlab-gpu).
set -euo pipefail
dest=${1:?usage: tests/gpu/pack_carry.sh DEST}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/data/evalsets"
cp build/rwkvlab build/test_gpu build/bench_gpu tests/gpu/device_run.sh "$stage/"
for lib in $(ldd build/rwkvlab build/test_gpu build/bench_gpu | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libgsl*|libopenblas*|libgfortran*|libquadmath*|libcjson*|libinih*|libbz2*) cp -L "$lib" "$stage/lib/" ;;
  esac
done
cp tests/fixtures/ckpt/tiny_f32.safetensors "$stage/"
src=""
for d in data ../shared/data; do [ -f "$d/rwkv_vocab_v20230424.txt" ] && { src=$d; break; }; done
[ -n "$src" ] || { echo "pack_carry: no rwkv_vocab_v20230424.txt in data/ or ../shared/data" >&2; exit 1; }
cp "$src/rwkv_vocab_v20230424.txt" "$stage/data/"
for f in lambada_openai_test.jsonl piqa_valid.jsonl piqa_valid-labels.lst hellaswag_val_full.txt.bz2 \
         arc_easy_test.foundry.jsonl winogrande_xl_dev.foundry.jsonl copa_val.foundry.jsonl; do
  cp "$src/evalsets/$f" "$stage/data/evalsets/"
done
[ -f "$src/models/reverse_L2_x070.pth" ] && cp "$src/models/reverse_L2_x070.pth" "$stage/"
mkdir -p "$dest"
tar czf "$dest/bundle.tgz" -C "$stage" .
cat > "$dest/go.sh" <<'GO'
#!/usr/bin/env bash
# unpack the bundle next to this script into /tmp/rwkvlab-gpu and run device_run.sh there
set -u
here=$(cd "$(dirname "$0")" && pwd)
rm -rf /tmp/rwkvlab-gpu && mkdir -p /tmp/rwkvlab-gpu && tar xzf "$here/bundle.tgz" -C /tmp/rwkvlab-gpu
exec bash /tmp/rwkvlab-gpu/device_run.sh "$@"
GO
chmod +x "$dest/go.sh"
du -sh "$dest"/*
