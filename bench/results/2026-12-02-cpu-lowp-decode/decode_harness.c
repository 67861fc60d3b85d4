// GPT-2 124M decode-step GEMVs outside Swift: 12 layers x (c_attn 2304x768, c_proj 768x768, c_fc
// 3072x768, mlp c_proj 768x3072) + the LM head 50257x768, every layer its own weights (so one step
// streams all of them from memory, as a real decode step does), for f32, bf16 and weight-only int8,
// interleaved per round. Also checks each lowp GEMV against the double-precision reference on the
// unpacked weights. Built with clang -O2 against a Sources/CFlintCPU tree:
//   clang -O2 -I SRC/include SRC/*.c decode_harness.c -lm -lpthread -o harness
#include "CFlintCPU.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static float rnd(unsigned *s) { *s = *s * 1664525u + 1013904223u; return ((int)(*s >> 8) - (1 << 23)) / (float)(1 << 23); }
static void *alloc64(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }
enum { LAYERS = 12, PER = 4 };
int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5, m = argc > 2 ? atoi(argv[2]) : 1;
    long shapes[PER + 1][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}, {50257, 768}};
    flint_pool *pool = flint_pool_create(0);
    int nr = flint_pack_nr(0), nmat = LAYERS * PER + 1;
    float **pf = malloc(nmat * sizeof *pf), **sc = malloc(nmat * sizeof *sc);
    void **pb = malloc(nmat * sizeof *pb), **pi = malloc(nmat * sizeof *pi);
    long *ns = malloc(nmat * sizeof *ns), *ks = malloc(nmat * sizeof *ks);
    float *a = malloc(m * 3072 * 4), *c = malloc(m * 50257 * 4), *ref = malloc(m * 50257 * 4);
    unsigned s = 1;
    for (long i = 0; i < m * 3072; i++) a[i] = rnd(&s);
    double worst[3] = {0, 0, 0};
    for (int j = 0; j < nmat; j++) {
        long n = shapes[j == nmat - 1 ? PER : j % PER][0], k = shapes[j == nmat - 1 ? PER : j % PER][1];
        ns[j] = n; ks[j] = k;
        float *w = malloc(n * k * 4);
        for (long i = 0; i < n * k; i++) w[i] = rnd(&s) * 0.05f;
        pf[j] = alloc64(flint_pack_floats(nr, n, k) * 4);
        flint_pack_weight(w, n, k, k, nr, pf[j]);
        pb[j] = alloc64(flint_pack_lowp_bytes(FLINT_W_BF16, n, k));
        pi[j] = alloc64(flint_pack_lowp_bytes(FLINT_W_INT8, n, k));
        sc[j] = malloc((n + 15) / 16 * 16 * 4);
        flint_pack_weight_lowp(FLINT_W_BF16, w, n, k, k, pb[j], NULL);
        flint_pack_weight_lowp(FLINT_W_INT8, w, n, k, k, pi[j], sc[j]);
        if (j < PER || j == nmat - 1) { // accuracy: each lowp GEMV against the reference on its own unpacked weights
            for (int v = 1; v < 3; v++) {
                flint_unpack_weight_lowp(v == 1 ? FLINT_W_BF16 : FLINT_W_INT8, v == 1 ? pb[j] : pi[j], sc[j], n, k, w);
                flint_linear_reference(a, m, k, w, n, k, k, NULL, 0, ref, n);
                if (v == 1) flint_linear_lowp(pool, 0, FLINT_W_BF16, 0, a, m, k, pb[j], NULL, n, k, NULL, 0, c, n);
                else flint_linear_lowp(pool, 0, FLINT_W_INT8, FLINT_INT8_WEIGHT_ONLY, a, m, k, pi[j], sc[j], n, k, NULL, 0, c, n);
                double scale = 0, err = 0;
                for (long i = 0; i < m * n; i++) scale = fmax(scale, fabs(ref[i]));
                for (long i = 0; i < m * n; i++) err = fmax(err, fabs(c[i] - ref[i]));
                worst[v] = fmax(worst[v], err / scale);
            }
        }
        free(w);
    }
    printf("threads %d, m %d; max |lowp GEMV - reference on its weights| / max|ref|: bf16 %.2e, int8-wo %.2e\n",
           flint_pool_threads(pool), m, worst[1], worst[2]);
    const char *names[] = {"f32", "bf16", "int8-wo"};
    double best[3] = {1e9, 1e9, 1e9}, bytes[3] = {0, 0, 0};
    for (int j = 0; j < nmat; j++) {
        bytes[0] += 4.0 * ns[j] * ks[j];
        bytes[1] += 2.0 * ns[j] * ks[j];
        bytes[2] += 1.0 * ns[j] * ks[j];
    }
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < 3; v++) {
            double t = now();
            for (int j = 0; j < nmat; j++) {
                long n = ns[j], k = ks[j];
                if (v == 0) flint_linear(pool, 0, a, m, k, pf[j], nr, n, k, NULL, 0, c, n);
                else if (v == 1) flint_linear_lowp(pool, 0, FLINT_W_BF16, 0, a, m, k, pb[j], NULL, n, k, NULL, 0, c, n);
                else flint_linear_lowp(pool, 0, FLINT_W_INT8, FLINT_INT8_WEIGHT_ONLY, a, m, k, pi[j], sc[j], n, k, NULL, 0, c, n);
            }
            t = now() - t;
            if (t < best[v]) best[v] = t;
        }
    for (int v = 0; v < 3; v++)
        printf("%-8s step %7.2f ms  %6.1f GB/s  %.2fx f32\n", names[v], best[v] * 1e3, bytes[v] / best[v] * 1e-9, best[v] / best[0]);
    return 0;
}
