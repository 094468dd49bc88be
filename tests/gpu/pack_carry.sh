#!/usr/bin/env bash
# pack_carry.sh DEST -- gather what the GPU machine needs to run the GPU tests and benchmarks built here:
# build/test_gpu, build/bench_gpu, the shared libraries they use that a bare CUDA image lacks (GSL, OpenBLAS
# and its Fortran runtime, cJSON; the CUDA runtime is linked statically, cuBLAS comes from the image's
# toolkit), the fixture files the tests read, and tests/gpu/device_run.sh. Run from the repository root after
# `make all`; then run DEST/device_run.sh on the GPU machine.
set -euo pipefail
dest=${1:?usage: tests/gpu/pack_carry.sh DEST}
mkdir -p "$dest/lib"
cp build/test_gpu build/bench_gpu tests/gpu/device_run.sh "$dest/"
for lib in $(ldd build/test_gpu build/bench_gpu | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libgsl*|libopenblas*|libgfortran*|libquadmath*|libcjson*) cp -L "$lib" "$dest/lib/" ;;
  esac
done
cp tests/fixtures/ckpt/tiny_f32.safetensors "$dest/"
for p in data/models/reverse_L2_x070.pth ../shared/data/models/reverse_L2_x070.pth; do
  if [ -f "$p" ]; then cp "$p" "$dest/"; break; fi
done
du -sh "$dest"
