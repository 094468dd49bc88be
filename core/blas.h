/* blas.h -- which OpenBLAS kernels run, and choosing better ones when the library guessed low.
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU id at load time. A release older than the
 * processor does not recognise it and falls back: Debian 12's 0.3.21 runs its `Prescott` (SSE3) kernels
 * on some Intel Xeon VMs and its `Haswell` (AVX2) kernels on AMD Zen 5 (AVX-512), 2-7x below what the
 * machine can do. OpenBLAS honours OPENBLAS_CORETYPE, read when the library loads, so `rwkvlab` checks at
 * start-up and, when the kernels are below the CPU's instruction set and the user has not set
 * OPENBLAS_CORETYPE, sets it and re-executes itself (core/cli/main.c). The user's own setting wins.
 */
#ifndef RWKV_BLAS_H
#define RWKV_BLAS_H

#include <stddef.h>

/* Vector instruction level: 0 SSE-class, 1 AVX, 2 AVX2 + FMA, 3 AVX-512 (F, CD, BW, DQ, VL). */
enum { BLAS_ISA_SSE = 0, BLAS_ISA_AVX = 1, BLAS_ISA_AVX2 = 2, BLAS_ISA_AVX512 = 3 };

/* The level of this CPU (cpuid, through the compiler's builtins). */
int blas_cpu_isa(void);
/* The level an OpenBLAS core name's kernels use; -1 for a name not known here (then nothing is changed). */
int blas_core_isa(const char *core);
/* 1 on a GenuineIntel CPU. */
int blas_cpu_intel(void);
/* The core type to ask for, or NULL to leave the library's choice. Only a fallback is replaced: `core`
 * known and below AVX2 (Prescott, Nehalem, Sandybridge, ...) on a CPU of a higher level; AVX2 kernels on
 * an AVX-512 CPU are kept (the AVX-512 kernels of an OpenBLAS older than the processor are not trusted:
 * set OPENBLAS_CORETYPE=SkylakeX yourself and check `rwkvlab bench`). The target: SkylakeX on an Intel
 * AVX-512 CPU, Haswell on any other AVX2 CPU, Sandybridge on an AVX-only one. Also NULL unless the library
 * is DYNAMIC_ARCH (`config` from openblas_get_config()) and `user_setting` (OPENBLAS_CORETYPE) is NULL. */
const char *blas_better_core(const char *core, int cpu_isa, int intel, const char *config, const char *user_setting);
/* In a process whose core type rwkvlab chose: a small product against a plain loop. Returns 0 when the
 * kernels compute right, -1 otherwise (main.c then goes back to the library's choice). */
int blas_selfcheck(void);

/* Environment variable recording the change, set before the re-exec: "FROM->TO". */
#define BLAS_NOTE_ENV "RWKVLAB_BLAS_CORE_CHANGED"
/* One line describing the kernels in use, e.g. "OpenBLAS 0.3.21 ..., core SkylakeX (set by rwkvlab:
 * the library chose Haswell on an AVX-512 CPU)" or "..., core Haswell (library's choice)". */
void blas_describe(char *out, size_t n);
/* The core name in use (openblas_get_corename()). */
const char *blas_core_name(void);
/* "library", "rwkvlab" (changed by us: then *from receives the library's pick) or "user" (OPENBLAS_CORETYPE). */
const char *blas_core_origin(const char **from);

#endif
