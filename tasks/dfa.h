/* dfa.h -- a deterministic finite automaton read from a small text file (the `dfa` task, dfa.c).
 *
 * File format (UTF-8 or ASCII text, one item per line; '#' starts a comment that runs to the end of the
 * line; blank lines are ignored; fields are separated by spaces or tabs):
 *
 *     # even number of 1s
 *     states:   even odd          the states, each once (at least one)
 *     alphabet: 0 1               the input symbols, each once (at least one); symbol i is token i
 *     start:    even              exactly one state
 *     accept:   even              the accepting states (at least one), each once
 *     even 0 -> even              transitions: FROM SYMBOL -> TO, exactly one per (state, symbol)
 *     even 1 -> odd
 *     odd  0 -> odd
 *     odd  1 -> even
 *
 * The four declarations may come in any order, each once; transitions may come before or after them.
 * A name (state or symbol) is 1..DFA_NAME_MAX printable non-space characters without '#' or ':', and
 * not "->"; names are case-sensitive; a state and a symbol may share a name.
 *
 * Errors name the file and line ("FILE:LINE: ...") and say how to fix: a line that is neither a
 * declaration nor a transition, a declaration given twice or with no names, a name listed twice, a start
 * or accepting or transition state that is not declared, a transition symbol not in the alphabet, two
 * transitions for one (state, symbol), a (state, symbol) without a transition (every state needs one per
 * symbol; the line named is the `states:` line), and an accepting state that the start state cannot reach
 * (the line named is the `accept:` line). A missing declaration names the file and its last line.
 */
#ifndef RWKV_DFA_H
#define RWKV_DFA_H

#include <stdint.h>

#include "common.h"

#define DFA_NAME_MAX 31
#define DFA_MAX_STATES 100000
#define DFA_MAX_SYMBOLS 1024
#define DFA_MAX_TABLE 10000000L   /* states x symbols */
#define DFA_MAX_FILE (64L << 20)  /* bytes */

typedef struct {
    int nstates, nsym;
    char (*state)[DFA_NAME_MAX + 1]; /* (nstates) names, in declaration order = state ids */
    char (*sym)[DFA_NAME_MAX + 1];   /* (nsym) names, in declaration order = token ids */
    int start;
    int naccept;
    unsigned char *accept;           /* (nstates) 1 = accepting */
    int *next;                       /* (nstates, nsym) next[q*nsym + a] */
    uint64_t hash;                   /* FNV-1a 64 of the file's bytes (to record which file a run used) */
} Dfa;

/* Reads and checks path. 0, or -1 with err ("PATH:LINE: ...") and d zeroed. */
int dfa_load(Dfa *d, const char *path, Err *err);
void dfa_free(Dfa *d);

static inline int dfa_next(const Dfa *d, int q, int a) { return d->next[(long)q * d->nsym + a]; }

#endif
