// GEMM harness for the CPU low-precision kernels: GFLOP/s per precision at transformer shapes,
// precisions interleaved per round, best of the rounds. Built outside SwiftPM with clang -O2 against
// Sources/CFlintCPU (LOWP=1) or against the base commit's gemm.c for the f32 before/after check (LOWP=0).
#include "CFlintCPU.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static float rnd(unsigned *s) { *s = *s * 1664525u + 1013904223u; return ((int)(*s >> 8) - (1 << 23)) / (float)(1 << 23); }
int main(int argc, char **argv) {
    long shapes[][3] = {{128, 1152, 384}, {128, 1536, 384}, {128, 384, 1536}, {1024, 768, 768}, {1, 2304, 768}, {1, 3072, 768}, {1, 768, 3072}, {1, 50257, 768}};
    int nshapes = sizeof shapes / sizeof shapes[0], rounds = argc > 1 ? atoi(argv[1]) : 3;
    flint_pool *pool = flint_pool_create(0);
    printf("threads %d, isa %d\n", flint_pool_threads(pool), flint_gemm_isa());
#if LOWP
    const char *names[] = {"f32", "bf16", "int8", "int8-wo"};
    int nv = 4;
#else
    const char *names[] = {"f32"};
    int nv = 1;
#endif
    printf("%-16s", "MxNxK"); for (int v = 0; v < nv; v++) printf(" %10s", names[v]); printf("   (GFLOP/s, best of %d interleaved rounds)\n", rounds);
    for (int si = 0; si < nshapes; si++) {
        long m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
        unsigned s = 1;
        float *a = malloc(m * k * 4), *w = malloc(n * k * 4), *c = malloc(m * n * 4);
        for (long i = 0; i < m * k; i++) a[i] = rnd(&s);
        for (long i = 0; i < n * k; i++) w[i] = rnd(&s) * 0.05f;
        int nr = flint_pack_nr(0);
        float *pf = aligned_alloc(64, (flint_pack_floats(nr, n, k) * 4 + 63) / 64 * 64);
        flint_pack_weight(w, n, k, k, nr, pf);
#if LOWP
        void *pb = aligned_alloc(64, (flint_pack_lowp_bytes(FLINT_W_BF16, n, k) + 63) / 64 * 64);
        void *pi = aligned_alloc(64, (flint_pack_lowp_bytes(FLINT_W_INT8, n, k) + 63) / 64 * 64);
        float *sc = malloc((n + 15) / 16 * 16 * 4);
        flint_pack_weight_lowp(FLINT_W_BF16, w, n, k, k, pb, NULL);
        flint_pack_weight_lowp(FLINT_W_INT8, w, n, k, k, pi, sc);
#endif
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        int it = (int)fmax(3, 4e8 / (2.0 * m * n * k));
        for (int r = 0; r < rounds; r++)
            for (int v = 0; v < nv; v++) {
                double t = now();
                for (int i = 0; i < it; i++) {
                    if (v == 0) flint_linear(pool, 0, a, m, k, pf, nr, n, k, NULL, 0, c, n);
#if LOWP
                    else if (v == 1) flint_linear_lowp(pool, 0, FLINT_W_BF16, 0, a, m, k, pb, NULL, n, k, NULL, 0, c, n);
                    else flint_linear_lowp(pool, 0, FLINT_W_INT8, v == 3 ? FLINT_INT8_WEIGHT_ONLY : FLINT_INT8_DYNAMIC, a, m, k, pi, sc, n, k, NULL, 0, c, n);
#endif
                }
                t = (now() - t) / it;
                if (t < best[v]) best[v] = t;
            }
        char label[64]; snprintf(label, sizeof label, "%ldx%ldx%ld", m, n, k);
        printf("%-16s", label);
        for (int v = 0; v < nv; v++) printf(" %10.1f", 2.0 * m * n * k / best[v] / 1e9);
        printf("   ms:"); for (int v = 0; v < nv; v++) printf(" %.3f", best[v] * 1e3); printf("\n");
        fflush(stdout);
    }
    return 0;
}
