/* group.c -- builds permutation-group tables (S_n, A_n, Z_n, G x H); composition order "a then b", see group.h.
 *
 * Every constructor produces the list of permutation arrays in lexicographic order, then one shared
 * routine (group_build_tables) derives mul and inv by composing arrays and looking the result up by
 * binary search (lexicographic order of arrays == memcmp order, since points are unsigned char).
 */
#include "group.h"

#include <ctype.h>
#include <string.h>

/* Lexicographic successor of p (n entries) in place; returns 0 when p was the last permutation. */
static int perm_next(unsigned char *p, int n) {
    int i = n - 2;
    while (i >= 0 && p[i] >= p[i + 1]) i--;
    if (i < 0) return 0;
    int j = n - 1;
    while (p[j] <= p[i]) j--;
    unsigned char t = p[i]; p[i] = p[j]; p[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) { t = p[l]; p[l] = p[r]; p[r] = t; }
    return 1;
}

/* 0 = even, 1 = odd: parity of (n - number of cycles). */
static int perm_parity(const unsigned char *p, int n) {
    unsigned char seen[256] = {0};
    int cycles = 0;
    for (int x = 0; x < n; x++) {
        if (seen[x]) continue;
        cycles++;
        for (int y = x; !seen[y]; y = p[y]) seen[y] = 1;
    }
    return (n - cycles) & 1;
}

static long factorial(int n) {
    long f = 1;
    for (int i = 2; i <= n; i++) f *= i;
    return f;
}

/* Given g->n, g->order and g->perm (order, n) sorted lexicographically, fill mul and inv.
 * Checks the invariants every constructor must give: sorted distinct rows, identity first, closure. */
static void group_build_tables(Group *g) {
    int n = g->n, ord = g->order;
    for (int x = 0; x < n; x++) CHECK(g->perm[x] == x, "%s: element 0 must be the identity", g->name);
    for (int e = 1; e < ord; e++)
        CHECK(memcmp(group_perm(g, e - 1), group_perm(g, e), (size_t)n) < 0,
              "%s: elements must be distinct and in lexicographic order (at %d)", g->name, e);
    g->mul = xmalloc((size_t)ord * ord * sizeof *g->mul);
    g->inv = xmalloc((size_t)ord * sizeof *g->inv);
    unsigned char c[256];
    for (int a = 0; a < ord; a++) {
        const unsigned char *pa = group_perm(g, a);
        g->inv[a] = -1;
        for (int b = 0; b < ord; b++) {
            const unsigned char *pb = group_perm(g, b);
            for (int x = 0; x < n; x++) c[x] = pb[pa[x]]; /* (a·b)(x) = b(a(x)): a first */
            int ab = group_find(g, c);
            CHECK(ab >= 0, "%s: not closed under composition (%d then %d)", g->name, a, b);
            g->mul[a * ord + b] = ab;
            if (ab == 0) g->inv[a] = b;
        }
        CHECK(g->inv[a] >= 0, "%s: element %d has no inverse", g->name, a);
    }
}

/* All of S_n (even_only = 0) or its even permutations (even_only = 1), lexicographic. */
static int group_init_perms(Group *g, int n, int even_only, Err *err) {
    memset(g, 0, sizeof *g);
    if (n < 1 || n > GROUP_MAX_SN)
        return err_set(err, "%s_%d: degree must be in 1..%d (tables are order^2 ints)",
                       even_only ? "A" : "S", n, GROUP_MAX_SN);
    long nfact = factorial(n);
    snprintf(g->name, sizeof g->name, "%s%d", even_only ? "A" : "S", n);
    g->n = n;
    g->perm = xmalloc((size_t)nfact * n);
    unsigned char p[GROUP_MAX_SN];
    for (int x = 0; x < n; x++) p[x] = (unsigned char)x;
    int ord = 0;
    do {
        if (!even_only || perm_parity(p, n) == 0) memcpy(g->perm + (size_t)ord++ * n, p, (size_t)n);
    } while (perm_next(p, n));
    CHECK(ord == (even_only && n >= 2 ? nfact / 2 : nfact), "%s: generated %d elements", g->name, ord);
    g->order = ord;
    group_build_tables(g);
    return 0;
}

int group_init_symmetric(Group *g, int n, Err *err) { return group_init_perms(g, n, 0, err); }
int group_init_alternating(Group *g, int n, Err *err) { return group_init_perms(g, n, 1, err); }

int group_init_cyclic(Group *g, int n, Err *err) {
    memset(g, 0, sizeof *g);
    if (n < 1 || n > GROUP_MAX_ZN) return err_set(err, "Z_%d: n must be in 1..%d", n, GROUP_MAX_ZN);
    snprintf(g->name, sizeof g->name, "Z%d", n);
    g->n = n;
    g->order = n;
    g->perm = xmalloc((size_t)n * n);
    for (int k = 0; k < n; k++)      /* rotation by k: row k starts with k, so rows are sorted */
        for (int x = 0; x < n; x++) g->perm[(size_t)k * n + x] = (unsigned char)((x + k) % n);
    group_build_tables(g);
    return 0;
}

int group_init_product(Group *g, const Group *G, const Group *H, Err *err) {
    memset(g, 0, sizeof *g);
    int n = G->n + H->n;
    long ord = (long)G->order * H->order;
    if (n > GROUP_MAX_DEGREE || ord > GROUP_MAX_ORDER)
        return err_set(err, "%sx%s: order %ld on %d points is too large (a product may have order <= %d and "
                       "act on <= %d points)", G->name, H->name, ord, n, GROUP_MAX_ORDER, GROUP_MAX_DEGREE);
    snprintf(g->name, sizeof g->name, "%sx%s", G->name, H->name);
    g->n = n;
    g->order = (int)ord;
    g->perm = xmalloc((size_t)ord * n);
    for (int a = 0; a < G->order; a++) /* index a*|H| + b: perm_G(a), then perm_H(b) shifted by nG */
        for (int b = 0; b < H->order; b++) {
            unsigned char *p = g->perm + ((size_t)a * H->order + b) * n;
            memcpy(p, group_perm(G, a), (size_t)G->n);
            for (int x = 0; x < H->n; x++) p[G->n + x] = (unsigned char)(group_perm(H, b)[x] + G->n);
        }
    group_build_tables(g); /* checks identity first, lexicographic rows and closure */
    return 0;
}

static const char GROUP_NAMES_ALLOWED[] =
    "S<n> or A<n> (n = 1..6), Z<n> (n = 1..255), or a product GxH of those, e.g. S5, A5, Z60, A4xZ5";

/* One factor: a letter and a degree. */
static int group_init_simple(Group *g, const char *name, size_t len, Err *err) {
    char buf[32];
    if (len < 2 || len >= sizeof buf) return -2;
    memcpy(buf, name, len);
    buf[len] = 0;
    char *end = NULL;
    long n = strtol(buf + 1, &end, 10);
    if (*end != '\0' || !isdigit((unsigned char)buf[1]) || n > 100000) return -2;
    switch (tolower((unsigned char)buf[0])) {
    case 's': return group_init_symmetric(g, (int)n, err);
    case 'a': return group_init_alternating(g, (int)n, err);
    case 'z': return group_init_cyclic(g, (int)n, err);
    default: return -2;
    }
}

/* name -> group; -2 when name is not of the form S<n>|A<n>|Z<n>[xNAME] (the caller says what is allowed),
 * -1 with err when it is but a size is out of range. */
static int group_parse(Group *g, const char *name, Err *err) {
    memset(g, 0, sizeof *g);
    const char *x = strpbrk(name, "xX");
    if (!x) return group_init_simple(g, name, strlen(name), err);
    Group G, H;
    int rc = group_init_simple(&G, name, (size_t)(x - name), err);
    if (rc) return rc;
    rc = group_parse(&H, x + 1, err);
    if (rc == 0) {
        rc = group_init_product(g, &G, &H, err);
        group_free(&H);
    }
    group_free(&G);
    return rc;
}

int group_init_by_name(Group *g, const char *name, Err *err) {
    int rc = group_parse(g, name ? name : "", err);
    if (rc == -2) return err_set(err, "unknown group '%s': expected %s", name ? name : "", GROUP_NAMES_ALLOWED);
    return rc;
}

void group_free(Group *g) {
    if (!g) return;
    free(g->perm);
    free(g->mul);
    free(g->inv);
    memset(g, 0, sizeof *g);
}

int group_find(const Group *g, const unsigned char *p) {
    int lo = 0, hi = g->order - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = memcmp(group_perm(g, mid), p, (size_t)g->n);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int group_moved_points(const Group *g, int e) {
    CHECK(e >= 0 && e < g->order, "%s: element %d out of range 0..%d", g->name, e, g->order - 1);
    const unsigned char *p = group_perm(g, e);
    int m = 0;
    for (int x = 0; x < g->n; x++) m += p[x] != x;
    return m;
}

int group_parity(const Group *g, int e) {
    CHECK(e >= 0 && e < g->order, "%s: element %d out of range 0..%d", g->name, e, g->order - 1);
    return perm_parity(group_perm(g, e), g->n);
}

int group_elements_moving_at_most(const Group *g, int k, int *out) {
    int cnt = 0;
    for (int e = 0; e < g->order; e++)
        if (group_moved_points(g, e) <= k) {
            if (out) out[cnt] = e;
            cnt++;
        }
    return cnt;
}
