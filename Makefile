# rwkvlab Makefile: probes its dependencies, says what it found, builds the library, CLI and tests.
#   make            build build/rwkvlab (release, fp32)
#   make test       Criterion suite (fp32 tests + fp64 gradient checks)
#   make debug-test the same suite built with ASan + UBSan
#   make slurm-test the sweep's Slurm script against a real single-node Slurm (root, slurm-wlm, munge;
#                   skipped with a message where it cannot start; tests/slurm/)
#   make demo       the main job: RWKV-7 on S5 (swaps) and S3, accuracy-vs-length table
#   make bench      training throughput vs the machine's sgemm rate -> stdout (see BENCHMARKS.md)
#   make deps       install the Debian packages (root; the C libraries and Python's h5py, numpy,
#                   matplotlib for the figures) or print the apt-get line
#   make plots      every figure of every run and sweep under results/ (or PLOTS_DIR=DIR) into .../figures/,
#                   and the README gallery (analysis/gallery.py) into results/gallery/
#   make data       copy tokenizer vocab and eval sets from ../shared/data into data/
# Switches: NO_OMP=1 (no OpenMP), NO_CUDA=1 (ignore nvcc), V=1 (echo commands).

DEB_PKGS := build-essential pkg-config libgsl-dev libhdf5-dev libopenblas-dev libinih-dev \
            libcjson-dev libcriterion-dev libbz2-dev python3
PY_PKGS  := python3-h5py python3-numpy python3-matplotlib
PKGS     := gsl hdf5 openblas inih libcjson criterion
# the Python that runs the figure scripts: the first of python3, /usr/bin/python3 with h5py + matplotlib
PYTHON   ?= $(shell for p in python3 /usr/bin/python3; do $$p -c 'import h5py, numpy, matplotlib' >/dev/null 2>&1 && \
              { echo $$p; break; }; done)

CC      ?= cc
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wno-sign-compare -Wno-format-truncation
OPT     := -O2 -march=native -fno-fast-math
Q       := $(if $(V),,@)

# ---- dependency probe (pkg-config), printed once --------------------------------------------
pc_ok    = $(shell pkg-config --exists $(1) 2>/dev/null && echo yes || echo no)
define probe
HAVE_GSL      := $$(call pc_ok,gsl)
HAVE_HDF5     := $$(call pc_ok,hdf5)
HAVE_OPENBLAS := $$(call pc_ok,openblas)
HAVE_INIH     := $$(call pc_ok,inih)
HAVE_CJSON    := $$(call pc_ok,libcjson)
HAVE_CRIT     := $$(call pc_ok,criterion)
HAVE_BZ2      := $$(shell printf '#include <bzlib.h>\nint main(void){return !BZ2_bzlibVersion();}\n' | \
                   $$(CC) -x c - -lbz2 -o /dev/null >/dev/null 2>&1 && echo yes || echo no)
MISSING       := $$(foreach p,GSL HDF5 OPENBLAS INIH CJSON CRIT BZ2,$$(if $$(filter no,$$(HAVE_$$(p))),$$(p)))
endef
$(eval $(probe))
# Missing libraries are installed on the spot when we are root (fresh Debian 12: `make demo` and
# `make test` just work); otherwise the build stops with the exact apt-get line. NO_AUTO_DEPS=1 disables.
ifneq ($(strip $(MISSING)),)
ifeq ($(shell id -u)$(NO_AUTO_DEPS)$(filter deps clean,$(MAKECMDGOALS)),0)
$(info rwkvlab: missing $(MISSING); installing: apt-get install -y $(DEB_PKGS))
_INSTALL := $(shell (apt-get update -q && apt-get install -y -q $(DEB_PKGS)) >&2; echo $$?)
$(eval $(probe))
endif
endif

# GSL brings its own reference CBLAS; we link OpenBLAS's CBLAS instead (drop -lgslcblas).
DEP_CFLAGS := $(shell pkg-config --cflags gsl hdf5 openblas inih libcjson 2>/dev/null)
DEP_LIBS   := $(filter-out -lgslcblas,$(shell pkg-config --libs gsl hdf5 openblas inih libcjson 2>/dev/null)) -lbz2 -lm
CRIT_LIBS  := $(shell pkg-config --libs criterion 2>/dev/null)

# OpenMP: a compile-and-link probe, not an assumption.
ifeq ($(NO_OMP),1)
  HAVE_OMP := off (NO_OMP=1)
  OMP_FLAGS := -Wno-unknown-pragmas
else
  HAVE_OMP := $(shell printf '#include <omp.h>\nint main(void){return omp_get_max_threads()<1;}\n' | \
                $(CC) -fopenmp -x c - -o /tmp/rwkvlab_omp_probe.$$$$ >/dev/null 2>&1 && echo yes || echo no; \
                rm -f /tmp/rwkvlab_omp_probe.*)
  OMP_FLAGS := $(if $(filter yes,$(HAVE_OMP)),-fopenmp)
endif

# CUDA: optional; the GPU engine (core/cuda, cuda.mk) is built and linked into rwkvlab when nvcc exists,
# reported either way. Without it rwkvlab links core/cuda/cuda_none.c: --device cuda then says why.
ifeq ($(NO_CUDA),1)
  HAVE_CUDA := off (NO_CUDA=1)
else
  NVCC := $(shell command -v nvcc 2>/dev/null)
  HAVE_CUDA := $(if $(NVCC),yes ($(NVCC), sm_90),no)
endif
CUDA_ON := $(if $(filter 1,$(NO_CUDA)),,$(strip $(NVCC)))

GIT_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

ifndef RWKVLAB_PROBED
export RWKVLAB_PROBED := 1
$(info rwkvlab build: gsl=$(HAVE_GSL) hdf5=$(HAVE_HDF5) openblas=$(HAVE_OPENBLAS) inih=$(HAVE_INIH) cjson=$(HAVE_CJSON) criterion=$(HAVE_CRIT) bz2=$(HAVE_BZ2) openmp=$(HAVE_OMP) cuda=$(HAVE_CUDA) version=$(GIT_VERSION))
endif

# core/ is the shared pieces (common, config, ops, optim, mem); its rooms: models/ (one file per
# architecture and the shared recurrence), io/ (checkpoints, HDF5, tokenizer), train/ (the training run),
# eval/ (lm-eval scoring), cli/ (one file per subcommand), cuda/ (the GPU engine, its own rules).
CORE_DIRS   := core core/models core/io core/train core/eval core/cli
CFLAGS_BASE := $(CSTD) $(WARN) $(OMP_FLAGS) $(DEP_CFLAGS) $(addprefix -I,$(CORE_DIRS)) -Icore/cuda -Itasks -DRWKVLAB_VERSION='"$(GIT_VERSION)"'
LDLIBS      := $(OMP_FLAGS) $(DEP_LIBS)
SAN         := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Build directory: NO_OMP=1 builds into its own tree so the two never mix objects.
O := $(if $(filter 1,$(NO_OMP)),build/noomp,build)

# ---- sources ------------------------------------------------------------------------------------
# core/cuda/cuda_api.c is the GPU-free part of the CUDA engine's C API (cuda_rwkv7.h)
LIB_SRC   := $(filter-out core/cli/main.c,$(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.c))) $(wildcard tasks/*.c) \
             core/cuda/cuda_api.c
CLI_SRC   := core/cli/main.c
T32_SRC   := $(wildcard tests/test_*.c)
T64_SRC   := $(wildcard tests/grad_*.c)
HDRS      := $(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.h)) $(wildcard tasks/*.h tests/*.h) core/cuda/cuda_rwkv7.h
# The CUDA engine's entry points: the stub (cuda_none.c: "built without the CUDA engine") for the test
# programs and the sanitizer build, the real engine (cuda.mk) for rwkvlab when nvcc exists.
STUB      = $(O)/$(1)/core/cuda/cuda_none.o

# flavour -> flags: rel (fp32), f64 (fp64, gradient checks), dbg / dbg64 (sanitizers)
FL_rel    := $(OPT) -g
FL_f64    := $(OPT) -g -DRWKV_F64
FL_dbg    := -O1 -g $(SAN)
FL_dbg64  := -O1 -g $(SAN) -DRWKV_F64

objs = $(patsubst %.c,$(O)/$(1)/%.o,$(2))

.PHONY: all check-deps test debug-test slurm-test demo bench deps data clean plots
all: check-deps $(O)/rwkvlab

check-deps:
	@if [ -n "$(strip $(MISSING))" ]; then \
	  echo "rwkvlab: missing libraries: $(MISSING). Run 'make deps' (or: apt-get install -y $(DEB_PKGS))"; exit 1; fi

define flavour
$(O)/$(1)/%.o: %.c $(HDRS) | check-deps
	@mkdir -p $$(dir $$@)
	@$(if $(V),,echo "  CC[$(1)] $$<")
	$(Q)$(CC) $(CFLAGS_BASE) $(FL_$(1)) -c $$< -o $$@
$(O)/$(1)/librwkvlab.a: $(call objs,$(1),$(LIB_SRC))
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach f,rel f64 dbg dbg64,$(eval $(call flavour,$(f))))

# The code version is compiled into the files that print or record it (summary.json, run.h5, bench,
# sweep logs): they are rebuilt when `git describe` changes, so a result never names an older commit.
VERSION_STAMP := $(O)/version.stamp
$(shell mkdir -p $(O) && { [ "$$(cat $(VERSION_STAMP) 2>/dev/null)" = '$(GIT_VERSION)' ] || echo '$(GIT_VERSION)' > $(VERSION_STAMP); })
VERSION_SRC := $(shell grep -l 'RWKVLAB_VERSION' $(LIB_SRC) $(CLI_SRC) 2>/dev/null)
$(foreach f,rel f64 dbg dbg64,$(call objs,$(f),$(VERSION_SRC))): $(VERSION_STAMP)

# rwkvlab: the CPU library and the GPU engine (or its stub) in one link group (they call each other)
CLI_GPU      := $(if $(CUDA_ON),$(O)/cuda/librwkvcuda.a,$(call STUB,rel))
CLI_GPU_LIBS  = $(if $(CUDA_ON),$(CUDA_RT_LIBS))
# a stamp per mode, remade when the mode changes, so that switching NO_CUDA relinks rwkvlab
CUDA_STAMP   := $(O)/cuda-$(if $(CUDA_ON),on,off).stamp
_STAMP       := $(shell mkdir -p $(O) && { [ -f $(CUDA_STAMP) ] || { rm -f $(O)/cuda-*.stamp; touch $(CUDA_STAMP); }; })
$(O)/rwkvlab: $(call objs,rel,$(CLI_SRC)) $(O)/rel/librwkvlab.a $(CLI_GPU) $(CUDA_STAMP)
	$(Q)$(CC) $(FL_rel) -o $@ $(call objs,rel,$(CLI_SRC)) -Wl,--start-group $(O)/rel/librwkvlab.a $(CLI_GPU) -Wl,--end-group \
	  $(LDLIBS) $(CLI_GPU_LIBS)
	@echo "  LD $@"
$(O)/test_f32: $(call objs,rel,$(T32_SRC)) $(O)/rel/librwkvlab.a $(call STUB,rel)
	$(Q)$(CC) $(FL_rel) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)
$(O)/test_f64: $(call objs,f64,$(T64_SRC)) $(O)/f64/librwkvlab.a $(call STUB,f64)
	$(Q)$(CC) $(FL_f64) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)
$(O)/dtest_f32: $(call objs,dbg,$(T32_SRC)) $(O)/dbg/librwkvlab.a $(call STUB,dbg)
	$(Q)$(CC) $(FL_dbg) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)
$(O)/dtest_f64: $(call objs,dbg64,$(T64_SRC)) $(O)/dbg64/librwkvlab.a $(call STUB,dbg64)
	$(Q)$(CC) $(FL_dbg64) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)
# the WKV7 and WKV6 recurrences timed alone (not in `make test`): OMP_NUM_THREADS=1 build/bench_wkv
$(O)/bench_wkv: $(call objs,rel,tests/bench/bench_wkv.c) $(O)/rel/librwkvlab.a $(call STUB,rel)
	$(Q)$(CC) $(FL_rel) -o $@ $^ $(LDLIBS)
$(O)/rwkvlab_dbg: $(call objs,dbg,$(CLI_SRC)) $(O)/dbg/librwkvlab.a $(call STUB,dbg)
	$(Q)$(CC) $(FL_dbg) -o $@ $^ $(LDLIBS)

# Tests run from the repository root; integration tests call $(O)/rwkvlab (or RWKVLAB_BIN).
TEST_ENV := OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4
test: check-deps $(O)/rwkvlab $(O)/test_f32 $(O)/test_f64
	$(TEST_ENV) RWKVLAB_BIN=$(O)/rwkvlab ./$(O)/test_f64 --jobs 1
	$(TEST_ENV) RWKVLAB_BIN=$(O)/rwkvlab ./$(O)/test_f32 --jobs 1

debug-test: check-deps $(O)/rwkvlab_dbg $(O)/dtest_f32 $(O)/dtest_f64
	$(TEST_ENV) ASAN_OPTIONS=detect_leaks=0 RWKVLAB_BIN=$(O)/rwkvlab_dbg ./$(O)/dtest_f64 --jobs 1
	$(TEST_ENV) ASAN_OPTIONS=detect_leaks=0 RWKVLAB_BIN=$(O)/rwkvlab_dbg ./$(O)/dtest_f32 --jobs 1

# Not in `make test`: it starts munged, slurmctld and slurmd (tests/slurm/start_slurm.sh) and takes
# ~30 s. The daemons are stopped by the test and, whatever happened to it, here again.
SLURM_DIR ?= $(or $(RWKVLAB_SLURM_DIR),/tmp/rwkvlab-slurm)
$(O)/test_slurm: $(call objs,rel,tests/slurm/test_slurm_real.c) $(O)/rel/librwkvlab.a
	$(Q)$(CC) $(FL_rel) -o $@ $^ $(LDLIBS) $(CRIT_LIBS)
slurm-test: check-deps $(O)/rwkvlab $(O)/test_slurm
	@rc=0; $(TEST_ENV) RWKVLAB_BIN=$(O)/rwkvlab RWKVLAB_SLURM_DIR=$(SLURM_DIR) ./$(O)/test_slurm --jobs 1 || rc=$$?; \
	 tests/slurm/stop_slurm.sh $(SLURM_DIR) || rc=1; exit $$rc

demo: $(O)/rwkvlab
	RWKVLAB_BIN=$(O)/rwkvlab bash experiments/demo.sh

bench: $(O)/rwkvlab
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4 ./$(O)/rwkvlab bench

deps:
	@if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q $(DEB_PKGS) $(PY_PKGS); \
	 else echo "run as root: apt-get install -y $(DEB_PKGS) $(PY_PKGS)"; fi

# Figures (analysis/README.md): every run.h5 and sweep.json under PLOTS_DIR -> its figures/ folder.
PLOTS_DIR ?= results
# Root on a fresh machine (and no NO_AUTO_DEPS=1): the Python packages are installed first, as `make` does
# for the C libraries.
plots:
	@py="$(PYTHON)"; \
	 if [ -z "$$py" ] && [ "$$(id -u)" = 0 ] && [ -z "$(NO_AUTO_DEPS)" ]; then \
	   echo "make plots: installing $(PY_PKGS)"; apt-get update -q && apt-get install -y -q $(PY_PKGS) >&2 && py=/usr/bin/python3; fi; \
	 if [ -z "$$py" ]; then echo "make plots: no python3 with h5py, numpy and matplotlib; run 'make deps'" \
	   "(or: apt-get install -y $(PY_PKGS))"; exit 1; fi; \
	 echo "$$py analysis/make_figures.py $(PLOTS_DIR)"; $$py analysis/make_figures.py $(PLOTS_DIR) || exit 1; \
	 $$py analysis/gallery.py --results $(PLOTS_DIR)

data:
	@mkdir -p data
	@if [ -d ../shared/data ]; then cp -ru ../shared/data/. data/ && chmod -R u+w data && echo "data/ filled from ../shared/data"; \
	 else echo "../shared/data not found: download the files listed in README.md (Data) into data/"; fi

clean:
	rm -rf build

# CUDA engine (core/cuda/): its own rules, included when present; compiled when nvcc exists.
-include core/cuda/cuda.mk
