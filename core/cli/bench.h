/* bench.h -- `rwkvlab bench`: RWKV-7 training throughput next to the machine's sgemm rate.
 *
 * Measures, in one run and with one thread setting (OpenMP for the trainer's loops, OpenBLAS for every
 * matrix product, the sgemm baseline included):
 *   - cblas_sgemm GFLOP/s at a large square size ("peak") and at the trainer's shapes (M = B*T rows);
 *   - training tokens/s (forward + loss + backward + AdamW) of RWKV-7 configs, with ms/step split into
 *     forward / backward / optimizer, the model's analytic FLOPs per token and the fraction of peak;
 *   - peak memory (max RSS of a child process that trains one step) and activation bytes vs T.
 * Prints markdown tables to stdout; BENCHMARKS.md holds a recorded run.
 */
#ifndef RWKV_BENCH_H
#define RWKV_BENCH_H

/* argv[0] = "bench"; options: --quick, --steps N, --blas-threads N, --help. Returns the exit status. */
int bench_main(int argc, char **argv);

#endif
