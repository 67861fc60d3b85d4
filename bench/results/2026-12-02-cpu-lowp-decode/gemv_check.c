// GEMV path check outside Swift (the Swift suite was not built in time on the loaded machine): bf16 and
// weight-only int8 flint_linear_lowp against the double reference on the stored weights, m 1..5 (5 takes the
// tile driver), tails (n % 16, k % 4), bias, GELU, lda != k, ldc != n, 1 and 3 threads; bound 1e-5 of sum |products|.
// clang -O2 -I SRC/include SRC/*.c gemv_check.c -lm -lpthread
#include "CFlintCPU.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
static float rnd(unsigned *s) { *s = *s * 1664525u + 1013904223u; return ((int)(*s >> 8) - (1 << 23)) / (float)(1 << 23); }
int main(void) {
    long shapes[][2] = {{7, 13}, {100, 300}, {33, 1}, {40, 1030}, {20, 770}, {16, 4}, {17, 5}};
    flint_pool *pools[2] = {flint_pool_create(1), flint_pool_create(3)};
    double worst = 0; unsigned s = 5;
    for (int pi = 0; pi < 2; pi++)
    for (int si = 0; si < 7; si++) for (int m = 1; m <= 5; m++) for (int fmt = 1; fmt <= 2; fmt++) for (int act = 0; act <= 1; act++) {
        long n = shapes[si][0], k = shapes[si][1], lda = k + si % 3, ldc = n + 5;
        float *a = malloc(m * lda * 4), *w = malloc(n * k * 4), *wq = malloc(n * k * 4), *b = malloc(n * 4);
        float *c = malloc(m * ldc * 4), *r = malloc(m * ldc * 4), *sc = malloc((n + 15) / 16 * 16 * 4);
        for (long i = 0; i < m * lda; i++) a[i] = 3 * rnd(&s);
        for (long i = 0; i < n * k; i++) w[i] = 0.2f * rnd(&s);
        for (long i = 0; i < n; i++) b[i] = rnd(&s);
        void *p = aligned_alloc(64, (flint_pack_lowp_bytes(fmt, n, k) + 63) / 64 * 64);
        flint_pack_weight_lowp(fmt, w, n, k, k, p, sc);
        flint_unpack_weight_lowp(fmt, p, sc, n, k, wq);
        flint_linear_reference(a, m, lda, wq, n, k, k, b, act, r, ldc);
        flint_linear_lowp(pools[pi], 0, fmt, FLINT_INT8_WEIGHT_ONLY, a, m, lda, p, sc, n, k, b, act, c, ldc);
        for (long i = 0; i < m; i++) for (long j = 0; j < n; j++) {
            double mag = fabs(b[j]); for (long kk = 0; kk < k; kk++) mag += fabs(a[i * lda + kk] * wq[j * k + kk]);
            double e = fabs(c[i * ldc + j] - r[i * ldc + j]) / fmax(mag, 1e-3);
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
        free(a); free(w); free(wq); free(b); free(c); free(r); free(sc); free(p);
    }
    printf("max rel err over shapes x m 1..5 x bf16/int8-wo x none/gelu x 1/3 threads: %.2e (%s)\n", worst, worst <= 1e-5 ? "ok" : "FAIL");
    return worst <= 1e-5 ? 0 : 1;
}
