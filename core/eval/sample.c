/* sample.c -- greedy and top-p sampling (rules: sample.h). */
#include "sample.h"

#include <math.h>

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

double sample_uniform(uint64_t seed, uint64_t seq, uint64_t pos) {
    const uint64_t h = mix64(mix64(mix64(seed) ^ seq) ^ pos);
    return (h >> 11) * (1.0 / 9007199254740992.0);
}

int sample_argmax(const real *lg, int V) {
    int am = -1;
    for (int i = 0; i < V; i++)
        if (!isnan(lg[i]) && (am < 0 || lg[i] > lg[am])) am = i;
    return am < 0 ? 0 : am;
}

void sampler_init(Sampler *s, int V) {
    s->V = V;
    s->p = xmalloc((size_t)V * sizeof(double));
    s->heap = xmalloc((size_t)V * sizeof(int));
}
void sampler_free(Sampler *s) {
    free(s->p), free(s->heap);
    s->p = NULL, s->heap = NULL;
}

/* heap order: a before b when its probability is larger, or equal with a lower id */
static int before(const double *p, int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); }
static void sift_down(int *h, int n, int i, const double *p) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(p, h[l], h[m])) m = l;
        if (r < n && before(p, h[r], h[m])) m = r;
        if (m == i) return;
        int t = h[i];
        h[i] = h[m], h[m] = t, i = m;
    }
}

int sampler_pick(Sampler *s, const real *lg, double temperature, double top_p, double u) {
    const int V = s->V;
    if (temperature <= 0) return sample_argmax(lg, V);
    const int am = sample_argmax(lg, V);
    const double mx = lg[am];
    double z = 0;
    for (int i = 0; i < V; i++) z += s->p[i] = isnan(lg[i]) ? 0.0 : exp(((double)lg[i] - mx) / temperature);
    if (top_p >= 1) { /* every token, in id order */
        const double target = u * z;
        double c = 0;
        int last = am;
        for (int i = 0; i < V; i++) {
            if (s->p[i] <= 0) continue;
            c += s->p[i], last = i;
            if (c > target) return i;
        }
        return last;
    }
    /* the nucleus: pop the heap (most probable first) until its mass reaches top_p * z */
    int *h = s->heap, n = V;
    for (int i = 0; i < V; i++) h[i] = i;
    for (int i = V / 2 - 1; i >= 0; i--) sift_down(h, n, i, s->p);
    double mass = 0;
    int k = 0; /* the first k entries of h[V-k..V) hold the nucleus, popped in order */
    while (n > 0 && (k == 0 || mass < top_p * z)) {
        const int top = h[0];
        h[0] = h[--n];
        sift_down(h, n, 0, s->p);
        h[n] = top; /* popped entries collect at the end, most probable last-written at V-1 */
        mass += s->p[top], k++;
    }
    const double target = u * mass;
    double c = 0;
    for (int j = 0; j < k; j++) {
        const int t = h[V - 1 - j]; /* pop order */
        c += s->p[t];
        if (c > target) return t;
    }
    return h[V - k];
}
