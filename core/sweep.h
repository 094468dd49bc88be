/* sweep.h -- `rwkvlab sweep`: the config's [sweep] grid x its seeds, run locally in parallel or written
 * out as a Slurm job array; then the results aggregated across seeds (median and best, with the count). */
#ifndef RWKV_SWEEP_H
#define RWKV_SWEEP_H

int sweep_main(int argc, char **argv);

#endif
