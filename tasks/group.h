/* group.h -- finite permutation groups (S_n, A_n, Z_n and direct products G x H) as explicit tables,
 * built at start-up.
 *
 * Scope: the groups behind the word-problem tasks (spec/tasks.md §1). A group of degree n acts on the
 * points 0..n-1; each element is stored as its permutation array p with p[x] = image of x.
 *
 * Element order (fixed, deterministic): elements are indexed 0..order-1 in lexicographic order of their
 * permutation arrays. So the identity (0,1,...,n-1) is always index 0; A_n lists the even permutations
 * of S_n in the same relative order; Z_n is the rotations x -> x+k mod n, index k.
 *
 * Direct product G x H (group_init_product; by name "A4xZ5", "s3xz2", factors split at the first 'x'):
 *   element (a, b), a in G, b in H, has index a*|H| + b (so (0,0) = identity is index 0, and the index
 *   runs over b fastest). It acts on nG + nH points as the disjoint union: points 0..nG-1 are moved by a,
 *   points nG..nG+nH-1 by b, i.e. perm = (perm_G(a), perm_H(b) + nG). Those arrays are lexicographic in
 *   index order, so the product obeys the rule above, and composition is factor-wise:
 *   (a, b)·(a', b') = (a·a', b·b')  -- each factor "a then a'" as in its own group.
 *
 * Composition order (the one rule used everywhere, tested against brute-force composition):
 *   mul[a*order + b] = "a then b":   (a·b)(x) = b(a(x))   -- a is applied FIRST.
 * A word g_1 g_2 ... g_t therefore means: apply g_1, then g_2, ..., then g_t.
 *
 * Size limits: S_n and A_n for 1 <= n <= GROUP_MAX_SN (order up to 720, mul table 2 MB);
 * Z_n for 1 <= n <= GROUP_MAX_ZN; a product of degree (nG + nH) <= GROUP_MAX_DEGREE and order
 * <= GROUP_MAX_ORDER (mul table order^2 ints: 8 MB).
 */
#ifndef RWKV_GROUP_H
#define RWKV_GROUP_H

#include "common.h"

#define GROUP_MAX_SN 6
#define GROUP_MAX_ZN 255
#define GROUP_MAX_DEGREE 255   /* points are unsigned char */
#define GROUP_MAX_ORDER 1440   /* products only; S_n/A_n/Z_n are bounded by their degree limits */

typedef struct {
    char name[32];        /* "S5", "A5", "Z60", "A4xZ5" */
    int n;                /* degree: points 0..n-1 */
    int order;            /* |G| */
    unsigned char *perm;  /* (order, n) perm[e*n + x] = image of point x under element e */
    int *mul;             /* (order, order) mul[a*order + b] = a then b, see header */
    int *inv;             /* (order) inv[a]: mul[a*order + inv[a]] == 0 */
} Group;

/* Build a group. Return 0, or -1 with err (n out of range) and g left zeroed. */
int group_init_symmetric(Group *g, int n, Err *err);   /* S_n, order n! */
int group_init_alternating(Group *g, int n, Err *err); /* A_n, order n!/2 (n >= 2), A_1 = trivial */
int group_init_cyclic(Group *g, int n, Err *err);      /* Z_n as rotations, order n */
/* G x H with the element order and action described above (G and H are only read). */
int group_init_product(Group *g, const Group *G, const Group *H, Err *err);
/* "S5", "a5", "Z12", ... (letter case-insensitive, then the degree); "A4xZ5" = A4 x Z5 (split at the first
 * 'x' or 'X': "s3xz2xz2" = S3 x (Z2 x Z2)). */
int group_init_by_name(Group *g, const char *name, Err *err);
void group_free(Group *g);

static inline int group_mul(const Group *g, int a, int b) { return g->mul[a * g->order + b]; }
static inline int group_inv(const Group *g, int a) { return g->inv[a]; }
static inline const unsigned char *group_perm(const Group *g, int e) { return g->perm + (size_t)e * g->n; }

/* Index of the element with permutation array p (n entries), or -1 if p is not in g. */
int group_find(const Group *g, const unsigned char *p);
/* Number of points that element e moves (0 for the identity, 2 for a transposition). */
int group_moved_points(const Group *g, int e);
/* 0 if e is an even permutation, 1 if odd. */
int group_parity(const Group *g, int e);
/* The elements moving at most k points, in index order, written to out (capacity g->order; may be NULL
 * to only count). Returns the count. k = 2: identity + transpositions; k = 3: also the 3-cycles. */
int group_elements_moving_at_most(const Group *g, int k, int *out);

#endif
