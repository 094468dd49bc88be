/* sweep.h -- `rwkvlab sweep`: the config's [sweep] grid x its seeds, run locally in parallel or written
 * out as a Slurm job array; then the results aggregated across seeds (median and best, with the count).
 * Re-running the same command continues every unfinished run; see sweep.c for the rules. */
#ifndef RWKV_SWEEP_H
#define RWKV_SWEEP_H

#include <stdio.h>

int sweep_main(int argc, char **argv);

/* Writes s to f as one POSIX shell word: unchanged when it has only characters that are never special
 * (letters, digits, _ @ % + = : , . / -), otherwise in single quotes with each ' written as '\''. */
void sweep_sh_quote(FILE *f, const char *s);

#endif
