// Decode-time linear layers on bf16 or weight-only int8 weights (per channel or per 64-k group): a few rows of A (GPT-2's decode
// steps, one row per sequence), so nothing in the weights is reused and the time is the bytes
// streamed from memory (GPT-2 124M: ~124 MB of int8 or ~250 MB of bf16 per step, far above L3).
//
// Why not the tile driver of gemm.c: it visits each task's panels K block by K block (KC = 256),
// i.e. 4 KiB (int8) or 8 KiB (bf16) pieces that lie a whole panel apart, so every piece restarts the
// hardware prefetcher's stream. Here a task takes a contiguous range of panels and reads each panel
// whole (all of K) in address order, with software prefetch a fixed distance ahead: every thread
// reads one sequential stream, the tasks (4 per thread, handed out dynamically) cover disjoint
// column ranges. The rows of A (f32, a few KiB each) stay in L1; with several rows each panel is
// re-read from L1/L2 per row, not from memory.
//
// Same packed layouts and the same arithmetic as gemm_lowp.c's kernels (f32 accumulation, int8's
// per-column scale applied once after the dot product), so a decode step and a prefill multiply the
// same stored weights; only the summation order differs.
#include "flint_internal.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FLINT_X86 1
#include "tile_store_avx2.h"
#endif

#define GEMV_NR 16
/// Software prefetch distance: how far ahead of the loads the weight stream is requested, in bytes.
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 1024
#endif

#ifdef FLINT_X86
/// One row of A times one bf16 panel over all of k: columns 0-7 in *r0, 8-15 in *r1.
/// Four k per iteration into separate accumulators, so the FMA latency chains do not bind.
FLINT_T_AVX2 static void gemv_bf16_row(long k, const float *a, const uint16_t *b, __m256 *r0, __m256 *r1) {
    __m256 lo[4], hi[4];
    for (int u = 0; u < 4; u++) { lo[u] = _mm256_setzero_ps(); hi[u] = _mm256_setzero_ps(); }
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    long k4 = k & ~3L, kk = 0;
    for (; kk < k4; kk += 4) {
        const char *next = (const char *)(b + kk * GEMV_NR) + GEMV_PREFETCH;
        _mm_prefetch(next, _MM_HINT_T0);
        _mm_prefetch(next + 64, _MM_HINT_T0);
        #pragma clang loop unroll(full)
        for (int u = 0; u < 4; u++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(b + (kk + u) * GEMV_NR));
            __m256 av = _mm256_broadcast_ss(a + kk + u);
            lo[u] = _mm256_fmadd_ps(av, _mm256_castsi256_ps(_mm256_slli_epi32(x, 16)), lo[u]);
            hi[u] = _mm256_fmadd_ps(av, _mm256_castsi256_ps(_mm256_and_si256(x, high)), hi[u]);
        }
    }
    for (; kk < k; kk++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(b + kk * GEMV_NR));
        __m256 av = _mm256_broadcast_ss(a + kk);
        lo[0] = _mm256_fmadd_ps(av, _mm256_castsi256_ps(_mm256_slli_epi32(x, 16)), lo[0]);
        hi[0] = _mm256_fmadd_ps(av, _mm256_castsi256_ps(_mm256_and_si256(x, high)), hi[0]);
    }
    *r0 = _mm256_add_ps(_mm256_add_ps(lo[0], lo[1]), _mm256_add_ps(lo[2], lo[3]));
    *r1 = _mm256_add_ps(_mm256_add_ps(hi[0], hi[1]), _mm256_add_ps(hi[2], hi[3]));
}

/// 4 k (one quad of A, in both 128-bit lanes) times 16 columns of int8: acc[h] holds columns 2h
/// (low lane) and 2h+1 (high lane), each as 4 partial sums over the quad's k.
FLINT_INLINE FLINT_T_AVX2 void gemv_i8_quad(__m256 av, const int8_t *bq, __m256 *acc) {
    #pragma clang loop unroll(full)
    for (int h = 0; h < 8; h++) {
        __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(bq + 8 * h))));
        acc[h] = _mm256_fmadd_ps(av, w, acc[h]);
    }
}

/// acc[0..3] (columns 2h | 2h+1, 4 partial sums each) -> columns 0..7.
FLINT_INLINE FLINT_T_AVX2 __m256 gemv_i8_columns(const __m256 *acc) {
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3])); // c0 c2 c4 c6 | c1 c3 c5 c7
    return _mm256_permutevar8x32_ps(u, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/// One row of A times one int8 panel ([kpad/4][16][4]) over all of k, scaled per column.
FLINT_T_AVX2 static void gemv_i8_row(long k, const float *a, const int8_t *b, const float *ws, __m256 *r0, __m256 *r1) {
    __m256 acc[8];
    for (int h = 0; h < 8; h++) acc[h] = _mm256_setzero_ps();
    long kq = k / 4;
    for (long q = 0; q < kq; q++) { // one 64-byte line of weights per quad
        _mm_prefetch((const char *)(b + q * 64) + GEMV_PREFETCH, _MM_HINT_T0);
        gemv_i8_quad(_mm256_broadcast_ps((const __m128 *)(a + 4 * q)), b + q * 64, acc);
    }
    if (k % 4) { // the tail quad: A's missing values are zeros (the weights' padding is zero too)
        float tail[4] = {0, 0, 0, 0};
        for (long j = 4 * kq; j < k; j++) tail[j - 4 * kq] = a[j];
        gemv_i8_quad(_mm256_broadcast_ps((const __m128 *)tail), b + kq * 64, acc);
    }
    *r0 = _mm256_mul_ps(gemv_i8_columns(acc), _mm256_loadu_ps(ws));
    *r1 = _mm256_mul_ps(gemv_i8_columns(acc + 4), _mm256_loadu_ps(ws + 8));
}

/// One row of A times one grouped int8 panel (FLINT_W_INT8_G64; gs: the panel's [group][16] scales): each group's
/// 16 quads are summed apart, then scaled by the group's column scales into the row's totals.
FLINT_T_AVX2 static void gemv_i8g_row(long k, const float *a, const int8_t *b, const float *gs, __m256 *r0, __m256 *r1) {
    const long quads_per_group = FLINT_I8_GROUP / 4, full = k / 4, quads = (k + 3) / 4;
    __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
    for (long q0 = 0; q0 < quads; q0 += quads_per_group, gs += GEMV_NR) {
        __m256 acc[8];
        for (int h = 0; h < 8; h++) acc[h] = _mm256_setzero_ps();
        long q1 = FLINT_MIN(quads, q0 + quads_per_group);
        for (long q = q0; q < FLINT_MIN(q1, full); q++) {
            _mm_prefetch((const char *)(b + q * 64) + GEMV_PREFETCH, _MM_HINT_T0);
            gemv_i8_quad(_mm256_broadcast_ps((const __m128 *)(a + 4 * q)), b + q * 64, acc);
        }
        if (q1 > full) { // the tail quad (k % 4 != 0) ends the last group; A's missing values are zeros
            float tail[4] = {0, 0, 0, 0};
            for (long j = 4 * full; j < k; j++) tail[j - 4 * full] = a[j];
            gemv_i8_quad(_mm256_broadcast_ps((const __m128 *)tail), b + full * 64, acc);
        }
        t0 = _mm256_fmadd_ps(gemv_i8_columns(acc), _mm256_loadu_ps(gs), t0);
        t1 = _mm256_fmadd_ps(gemv_i8_columns(acc + 4), _mm256_loadu_ps(gs + 8), t1);
    }
    *r0 = t0;
    *r1 = t1;
}

typedef struct {
    const flint_lowp *L;
    int isa, act;
    const float *a, *bias;
    float *c;
    long m, lda, n, ldc, panels, panels_per_task;
} gemv_ctx;

FLINT_T_AVX2 static void gemv_task(void *vctx, long t) {
    const gemv_ctx *g = vctx;
    const flint_lowp *L = g->L;
    long p1 = FLINT_MIN(g->panels, (t + 1) * g->panels_per_task);
    for (long p = t * g->panels_per_task; p < p1; p++) {
        long col = p * GEMV_NR;
        int ncols = (int)FLINT_MIN((long)GEMV_NR, g->n - col);
        const float *bias = g->bias ? g->bias + col : NULL;
        for (long i = 0; i < g->m; i++) {
            __m256 r0, r1;
            const float *ar = g->a + i * g->lda;
            if (L->format == FLINT_W_BF16)
                gemv_bf16_row(L->k, ar, (const uint16_t *)L->packed + (size_t)p * L->k * GEMV_NR, &r0, &r1);
            else if (L->format == FLINT_W_INT8_G64)
                gemv_i8g_row(L->k, ar, (const int8_t *)L->packed + (size_t)p * L->kpad * GEMV_NR, flint__lowp_panel_scales(L, p),
                             &r0, &r1);
            else
                gemv_i8_row(L->k, ar, (const int8_t *)L->packed + (size_t)p * L->kpad * GEMV_NR, flint__lowp_panel_scales(L, p),
                            &r0, &r1);
            float *cr = g->c + i * g->ldc + col;
            flint_store_tile16(1, &r0, &r1, cr, 0, 0, bias, ncols);
            if (g->act == FLINT_ACT_NONE) continue;
            if (g->isa >= FLINT_ISA_AVX512) flint__act_avx512(cr, ncols, g->act);
            else flint__act_avx2(cr, ncols, g->act);
        }
    }
}
#endif

int flint__lowp_gemv(flint_pool *pool, int isa, const flint_lowp *L, const float *a, long m, long lda, long n,
                     const float *bias, int act, float *c, long ldc) {
#ifdef FLINT_X86
    int streams = L->format == FLINT_W_BF16 || L->format == FLINT_W_INT8_G64 ||
                  (L->format == FLINT_W_INT8 && L->mode == FLINT_INT8_WEIGHT_ONLY);
    if (isa < FLINT_ISA_AVX2 || !streams || m > FLINT_GEMV_MAX_M || m <= 0 || n <= 0 || L->k <= 0) return 0;
    gemv_ctx g = {.L = L, .isa = isa, .act = act, .a = a, .bias = bias, .c = c, .m = m, .lda = lda, .n = n, .ldc = ldc,
                  .panels = (n + GEMV_NR - 1) / GEMV_NR};
    int threads = flint_pool_threads(pool);
    long tasks = FLINT_MIN(g.panels, threads > 1 ? 4L * threads : 1L);
    g.panels_per_task = (g.panels + tasks - 1) / tasks;
    flint_pool_run(pool, (g.panels + g.panels_per_task - 1) / g.panels_per_task, gemv_task, &g);
    return 1;
#else
    (void)pool; (void)isa; (void)L; (void)a; (void)m; (void)lda; (void)n; (void)bias; (void)act; (void)c; (void)ldc;
    return 0;
#endif
}
