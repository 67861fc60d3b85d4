// The int8 weight-only GEMV alone: LM head 1x50257x768 vs 16 distinct 1x2304x768 (same bytes order), 5 rounds.
// clang -O2 -I SRC/include SRC/*.c head_gemv.c -lm -lpthread
#include "CFlintCPU.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(void) {
    flint_pool *pool = flint_pool_create(0);
    long n = 50257, k = 768; int nl = 16; long ln = 2304;
    float *w = malloc(n * k * 4); for (long i = 0; i < n * k; i++) w[i] = (i % 97) * 0.01f - 0.5f;
    float *a = malloc(k * 4); for (long i = 0; i < k; i++) a[i] = 0.1f * (i % 7);
    float *c = malloc(n * 4), *sc = malloc((n + 15) / 16 * 16 * 4), *scl = malloc(ln * 4);
    void *p = aligned_alloc(64, (flint_pack_lowp_bytes(2, n, k) + 63) / 64 * 64);
    flint_pack_weight_lowp(2, w, n, k, k, p, sc);
    void *pl[16];
    for (int j = 0; j < nl; j++) { pl[j] = aligned_alloc(64, flint_pack_lowp_bytes(2, ln, k)); flint_pack_weight_lowp(2, w, ln, k, k, pl[j], scl); }
    for (int r = 0; r < 5; r++) {
        double t = now(); flint_linear_lowp(pool, 0, 2, 1, a, 1, k, p, sc, n, k, NULL, 0, c, n); t = now() - t;
        double t2 = now(); for (int j = 0; j < nl; j++) flint_linear_lowp(pool, 0, 2, 1, a, 1, k, pl[j], scl, ln, k, NULL, 0, c, ln); t2 = now() - t2;
        printf("head %.2f ms %.1f GB/s | 16 x 2304x768 %.2f ms %.1f GB/s\n", t * 1e3, n * k / t * 1e-9, t2 * 1e3, nl * ln * k / t2 * 1e-9);
    }
}
