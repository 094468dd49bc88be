# core/cuda/cuda.mk -- the CUDA engine's build rules (included by the Makefile).
# Built when nvcc exists and NO_CUDA != 1: core/cuda/*.cu -> $(O)/cuda/*.o -> $(O)/cuda/librwkvcuda.a, linked
# into build/rwkvlab (the Makefile's rule: --device cuda), and two programs linked with the fp32 CPU library
# (the oracle); cuBLAS is opened at run time (cuda_blas.cu), the CUDA runtime linked statically:
#   $(O)/test_gpu   GPU vs CPU checks (tests/gpu/test_*.c); `make test-gpu` runs it, and it prints
#                   "skipped: no GPU (...)" and exits 0 where no usable GPU is present
#   $(O)/bench_gpu  prefill / scoring / decoding throughput (tests/gpu/bench_gpu.c); `make bench-gpu`
# `make all` builds all three (no GPU needed to build).
# Knobs: CUDA_ARCH (default sm_90 machine code + compute_90 PTX), NVCC_OPT.

CUDA_ARCH ?= -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90
NVCC_OPT  ?= -O3

ifneq ($(CUDA_ON),)
CUDA_HOME   := $(patsubst %/bin/nvcc,%,$(NVCC))
CU_SRC      := $(wildcard core/cuda/*.cu)
CU_HDRS     := $(wildcard core/cuda/*.h core/cuda/*.cuh)
CU_OBJ      := $(patsubst core/cuda/%.cu,$(O)/cuda/%.o,$(CU_SRC))
CU_LIB      := $(O)/cuda/librwkvcuda.a
NVCC_FLAGS  := $(NVCC_OPT) -std=c++17 $(CUDA_ARCH) -lineinfo $(addprefix -I,$(CORE_DIRS)) -Icore/cuda -Itasks $(DEP_CFLAGS) \
               -Xcompiler -Wall,-Wno-unused-parameter --expt-relaxed-constexpr $(addprefix -Xcompiler ,$(OMP_FLAGS))
# static CUDA runtime (nothing to carry to the GPU machine); cuBLAS from the toolkit, opened at run time
# (dlopen: the rpath names the toolkit's folder); bench_gpu also calls cuBLAS itself
CUDA_RT_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -lrt -ldl -lpthread -lstdc++
GPU_TEST_SRC  := $(wildcard tests/gpu/test_*.c)
GPU_BENCH_SRC := tests/gpu/bench_gpu.c
GPU_CFLAGS    := $(CFLAGS_BASE) $(FL_rel) -Icore/cuda -Itests/gpu

$(O)/cuda/%.o: core/cuda/%.cu $(CU_HDRS) $(HDRS) | check-deps
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  NVCC $<")
	$(Q)$(NVCC) $(NVCC_FLAGS) -c $< -o $@
$(CU_LIB): $(CU_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(O)/gpu/%.o: tests/gpu/%.c $(CU_HDRS) $(HDRS) $(wildcard tests/gpu/*.h) | check-deps
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC[gpu] $<")
	$(Q)$(CC) $(GPU_CFLAGS) -c $< -o $@
GPU_LINK = $(Q)$(CC) $(FL_rel) -o $@ $(filter %.o,$^) -Wl,--start-group $(CU_LIB) $(O)/rel/librwkvlab.a -Wl,--end-group \
           $(LDLIBS) $(CUDA_RT_LIBS)
$(O)/test_gpu: $(patsubst tests/gpu/%.c,$(O)/gpu/%.o,$(GPU_TEST_SRC)) $(CU_LIB) $(O)/rel/librwkvlab.a
	$(GPU_LINK)
	@echo "  LD $@"
$(O)/bench_gpu: $(patsubst tests/gpu/%.c,$(O)/gpu/%.o,$(GPU_BENCH_SRC)) $(CU_LIB) $(O)/rel/librwkvlab.a
	$(GPU_LINK) -lcublas
	@echo "  LD $@"

all: $(CU_LIB) $(O)/test_gpu $(O)/bench_gpu
.PHONY: test-gpu bench-gpu cuda
cuda: $(CU_LIB) $(O)/test_gpu $(O)/bench_gpu
test-gpu: $(O)/test_gpu
	OMP_WAIT_POLICY=passive ./$(O)/test_gpu
bench-gpu: $(O)/bench_gpu
	./$(O)/bench_gpu
else
.PHONY: test-gpu bench-gpu
test-gpu bench-gpu:
	@echo "$@: skipped: the CUDA engine is not built (nvcc not found, or NO_CUDA=1)"
endif
