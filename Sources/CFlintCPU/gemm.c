// Linear-layer GEMM  C[m, n] = act(A[m, k] · W[n, k]^T + bias[n]).
//
// Layout: W (PyTorch nn.Linear, row-major [out, in]) is packed once into ceil(n/NR) panels,
// panel p = [k][NR] holding columns p*NR..p*NR+NR-1 (zero padded), 64-byte aligned.
// NR = 32 for AVX-512 (two zmm), 16 for AVX2 (two ymm); the portable kernel reads either.
// A is read in place (row-major, lda); the micro-kernel broadcasts A[i][k] and FMAs it into
// MR x NR accumulators (AVX-512: 12x32 = 24 zmm; AVX2: 6x16 = 12 ymm).
// Blocking, per task: for each K block (KC = 256: the KC x NR weight micro-panel, <= 32 KiB,
// stays in L1) → for each panel of the task's column range → for each MR rows of the task's
// row range (A rows read in place, from L2). C is accumulated across K blocks; the last K block adds
// the bias and applies the activation on the tile while it is still in L1. Each tile prefetches the
// next tile's C rows (see kern_rows).
// Threading: the (row range x panel range) grid is split into >= 4 tasks per thread (rows in
// chunks of <= MC, then columns), handed out dynamically by the pool; M = 1 splits columns only.
//
// The micro-kernels also run attention's two matmuls (attention.c, through flint__kern_rows).
#include "flint_internal.h"
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FLINT_X86 1
#include "tile_store_avx2.h"
#endif

#define KC 256
#define MC 192
#define MR512 12
#define MR256 6

int flint_pack_nr(int isa) {
    isa = isa == FLINT_ISA_AUTO ? flint_gemm_isa() : flint_resolve_isa(isa);
    if (isa == FLINT_ISA_PORTABLE) isa = flint_cpu_isa();
    return isa == FLINT_ISA_AVX2 ? 16 : (isa == FLINT_ISA_AVX512 ? 32 : 16);
}

size_t flint_pack_floats(int nr, long n, long k) {
    long panels = (n + nr - 1) / nr;
    return (size_t)panels * (size_t)k * (size_t)nr;
}

void flint_pack_weight(const float *w, long n, long k, long ldw, int nr, float *dst) {
    long panels = (n + nr - 1) / nr;
    for (long p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * k * nr;
        long cols = FLINT_MIN((long)nr, n - p * nr);
        for (long kk = 0; kk < k; kk++) {
            for (long j = 0; j < cols; j++) d[kk * nr + j] = w[(p * nr + j) * ldw + kk];
            for (long j = cols; j < nr; j++) d[kk * nr + j] = 0.0f;
        }
    }
}

// ---- micro-kernels ----------------------------------------------------------------------
// C[0..mr)[0..ncols) (+)= A[0..mr)[0..kc) · B[0..kc)[0..NR)  (+ bias[0..ncols) when bias).
// accum = 0 overwrites C, 1 adds to it.

static void kern_portable(int mr, long kc, const float *a, long lda, const float *b, long ldb,
                          float *c, long ldc, int accum, const float *bias, int ncols, int nr) {
    float acc[64];
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < nr; j++) acc[j] = 0.0f;
        const float *ar = a + i * lda;
        for (long k = 0; k < kc; k++) {
            float av = ar[k];
            const float *br = b + k * ldb;
            for (int j = 0; j < nr; j++) acc[j] += av * br[j];
        }
        float *cr = c + i * ldc;
        for (int j = 0; j < ncols; j++) {
            float v = acc[j];
            if (accum) v += cr[j];
            if (bias) v += bias[j];
            cr[j] = v;
        }
    }
}

#ifdef FLINT_X86
FLINT_INLINE FLINT_T_AVX512 void kern512_body(const int MR, long kc, const float *a, long lda,
                                              const float *b, long ldb, float *c, long ldc,
                                              int accum, const float *bias, int ncols) {
    __m512 acc0[MR512], acc1[MR512];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) { acc0[i] = _mm512_setzero_ps(); acc1[i] = _mm512_setzero_ps(); }
    for (long k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * ldb);
        __m512 b1 = _mm512_loadu_ps(b + k * ldb + 16);
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i * lda + k]);
            acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
        }
    }
    __mmask16 m0 = ncols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << ncols) - 1);
    __mmask16 m1 = ncols >= 32 ? (__mmask16)0xffff : (ncols <= 16 ? 0 : (__mmask16)((1u << (ncols - 16)) - 1));
    __m512 bv0 = _mm512_setzero_ps(), bv1 = _mm512_setzero_ps();
    if (bias) { bv0 = _mm512_maskz_loadu_ps(m0, bias); bv1 = _mm512_maskz_loadu_ps(m1, bias + 16); }
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) {
        float *cr = c + i * ldc;
        __m512 r0 = _mm512_add_ps(acc0[i], bv0), r1 = _mm512_add_ps(acc1[i], bv1);
        if (accum) {
            r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, cr));
            r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, r0);
        _mm512_mask_storeu_ps(cr + 16, m1, r1);
    }
}

FLINT_T_AVX512 static void kern512(int mr, long kc, const float *a, long lda, const float *b, long ldb,
                                   float *c, long ldc, int accum, const float *bias, int ncols) {
#define K512(R) case R: kern512_body(R, kc, a, lda, b, ldb, c, ldc, accum, bias, ncols); break;
    switch (mr) { K512(1) K512(2) K512(3) K512(4) K512(5) K512(6) K512(7) K512(8) K512(9) K512(10) K512(11) K512(12) default: break; }
#undef K512
}

FLINT_INLINE FLINT_T_AVX2 void kern256_body(const int MR, long kc, const float *a, long lda,
                                            const float *b, long ldb, float *c, long ldc,
                                            int accum, const float *bias, int ncols) {
    __m256 acc0[MR256], acc1[MR256];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) { acc0[i] = _mm256_setzero_ps(); acc1[i] = _mm256_setzero_ps(); }
    for (long k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b + k * ldb);
        __m256 b1 = _mm256_loadu_ps(b + k * ldb + 8);
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i * lda + k);
            acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
        }
    }
    flint_store_tile16(MR, acc0, acc1, c, ldc, accum, bias, ncols);
}

FLINT_T_AVX2 static void kern256(int mr, long kc, const float *a, long lda, const float *b, long ldb,
                                 float *c, long ldc, int accum, const float *bias, int ncols) {
#define K256(R) case R: kern256_body(R, kc, a, lda, b, ldb, c, ldc, accum, bias, ncols); break;
    switch (mr) { K256(1) K256(2) K256(3) K256(4) K256(5) K256(6) default: break; }
#undef K256
}
#endif

/// MR of the micro-kernel an ISA/panel width runs.
static long kern_mr(int isa, int nr) {
#ifdef FLINT_X86
    if (isa == FLINT_ISA_AVX512 && nr == 32) return MR512;
    if (isa == FLINT_ISA_AVX2 && nr == 16) return MR256;
#endif
    (void)isa; (void)nr;
    return 4;
}

/// Runs the micro-kernel for `isa` over rows [0, m) of one panel; A is row-major (row stride lda)
/// and read in place. With prefetch_c, each tile first prefetches the next tile's C rows: a task's C
/// block (mchunk rows x its panels, ~0.45-0.6 MB at M = 384, N >= 2304) falls out of a 512 KB L2
/// between K blocks, and the tile epilogue's strided C rows were then demand misses to L3. Measured
/// on the 2-vCPU AVX2 EPYC: +5-10% GFLOP/s per core at K = 768, neutral at K = 3072; bounding the
/// task's C block instead (panel chunks through all K blocks) gave +1-3%, and nothing on top of this.
/// (Packing A into [kc][MR] blocks was measured slower on Zen 5, even at strides that are multiples
/// of 4 KiB: each task re-packed its whole row block of A.)
static void kern_rows(int isa, int nr, long m, long kc, const float *a, long lda, const float *b,
                      long ldb, float *c, long ldc, int accum, const float *bias, int ncols, int prefetch_c) {
    long MR = kern_mr(isa, nr);
    for (long i = 0; i < m; i += MR) {
        int mr = (int)FLINT_MIN(MR, m - i);
        const float *ap = a + i * lda;
#ifdef FLINT_X86
        if (prefetch_c) {
            long nxt = FLINT_MIN(MR, m - i - MR);
            for (long r = 0; r < nxt; r++) {
                const float *cr = c + (i + MR + r) * ldc;
                _mm_prefetch((const char *)cr, _MM_HINT_T0);
                _mm_prefetch((const char *)(cr + ncols - 1), _MM_HINT_T0);
            }
        }
        if (MR == MR512 && isa == FLINT_ISA_AVX512) { kern512(mr, kc, ap, lda, b, ldb, c + i * ldc, ldc, accum, bias, ncols); continue; }
        if (MR == MR256 && isa == FLINT_ISA_AVX2) { kern256(mr, kc, ap, lda, b, ldb, c + i * ldc, ldc, accum, bias, ncols); continue; }
#endif
        kern_portable(mr, kc, ap, lda, b, ldb, c + i * ldc, ldc, accum, bias, ncols, nr);
    }
}

void flint__kern_rows(int isa, int nr, long m, long kc, const float *a, long lda, const float *b, long ldb,
                      float *c, long ldc, int accum, const float *bias, int ncols) {
    kern_rows(isa, nr, m, kc, a, lda, b, ldb, c, ldc, accum, bias, ncols, 0);
}

void flint__kern_rows_prefetch_c(int isa, int nr, long m, long kc, const float *a, long lda, const float *b, long ldb,
                                 float *c, long ldc, int accum, const float *bias, int ncols) {
    kern_rows(isa, nr, m, kc, a, lda, b, ldb, c, ldc, accum, bias, ncols, 1);
}

static void act_rows(int isa, float *c, long ldc, long m, long ncols, int act) {
    for (long i = 0; i < m; i++) {
        float *r = c + i * ldc;
        if (isa == FLINT_ISA_AVX512) flint__act_avx512(r, ncols, act);
        else if (isa == FLINT_ISA_AVX2) flint__act_avx2(r, ncols, act);
        else flint__act_portable(r, ncols, act);
    }
}

// ---- GEMM driver ------------------------------------------------------------------------
typedef struct {
    int isa, nr, act;
    const float *a, *packed, *bias;
    const flint_lowp *lowp; // NULL: f32 weights in `packed`
    float *c;
    long m, n, k, lda, ldc;
    long mchunk, mtasks, ptasks, panels_per_task, panels;
} gemm_ctx;

static void gemm_task(void *vctx, long t) {
    const gemm_ctx *g = vctx;
    long mt = t % g->mtasks, pt = t / g->mtasks;
    long m0 = mt * g->mchunk, m1 = FLINT_MIN(g->m, m0 + g->mchunk);
    long p0 = pt * g->panels_per_task, p1 = FLINT_MIN(g->panels, p0 + g->panels_per_task);
    if (m0 >= m1 || p0 >= p1) return;
    int nr = g->nr;
    for (long k0 = 0; k0 < g->k; k0 += KC) {
        long kc = FLINT_MIN((long)KC, g->k - k0);
        int last = k0 + kc >= g->k;
        for (long p = p0; p < p1; p++) {
            long col = p * nr;
            int ncols = (int)FLINT_MIN((long)nr, g->n - col);
            float *cp = g->c + m0 * g->ldc + col;
            if (g->lowp) {
                flint__lowp_tile(g->lowp, g->isa, g->a, g->lda, m0, m1, p, k0, kc, k0 > 0,
                                 last && g->bias ? g->bias + col : NULL, ncols, cp, g->ldc);
            } else {
                const float *bp = g->packed + (size_t)p * g->k * nr + (size_t)k0 * nr;
                kern_rows(g->isa, nr, m1 - m0, kc, g->a + m0 * g->lda + k0, g->lda, bp, nr, cp, g->ldc,
                          k0 > 0, last && g->bias ? g->bias + col : NULL, ncols, 1);
            }
            if (last && g->act != FLINT_ACT_NONE) act_rows(g->isa, cp, g->ldc, m1 - m0, ncols, g->act);
        }
    }
}

void flint_linear(flint_pool *pool, int isa, const float *a, long m, long lda, const float *packed, int nr,
                  long n, long k, const float *bias, int act, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    isa = flint_resolve_isa(isa);
    flint__gemm_drive(pool, isa, nr, kern_mr(isa, nr), NULL, a, m, lda, packed, n, k, bias, act, c, ldc);
}

void flint__gemm_drive(flint_pool *pool, int isa, int nr, long mr, const flint_lowp *lowp, const float *a, long m,
                       long lda, const float *packed, long n, long k, const float *bias, int act, float *c, long ldc) {
    if (k <= 0) { // degenerate: C = act(bias)
        for (long i = 0; i < m; i++) {
            for (long j = 0; j < n; j++) c[i * ldc + j] = bias ? bias[j] : 0.0f;
            act_rows(isa, c + i * ldc, ldc, 1, n, act);
        }
        return;
    }
    gemm_ctx g = {.isa = isa, .nr = nr, .act = act, .a = a, .packed = packed, .bias = bias, .lowp = lowp, .c = c,
                  .m = m, .n = n, .k = k, .lda = lda, .ldc = ldc};
    g.panels = (n + nr - 1) / nr;
    int threads = flint_pool_threads(pool);
    g.mtasks = (m + MC - 1) / MC;
    long mchunk = (m + g.mtasks - 1) / g.mtasks;
    g.mchunk = (mchunk + mr - 1) / mr * mr;
    g.mtasks = (m + g.mchunk - 1) / g.mchunk;
    long want = threads > 1 ? 4L * threads : 1;
    long ptasks = (want + g.mtasks - 1) / g.mtasks;
    if (ptasks > g.panels) ptasks = g.panels;
    if (ptasks < 1) ptasks = 1;
    g.panels_per_task = (g.panels + ptasks - 1) / ptasks;
    g.ptasks = (g.panels + g.panels_per_task - 1) / g.panels_per_task;
    flint_pool_run(pool, g.mtasks * g.ptasks, gemm_task, &g);
}

void flint_linear_reference(const float *a, long m, long lda, const float *w, long n, long k, long ldw,
                            const float *bias, int act, float *c, long ldc) {
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            double s = bias ? bias[j] : 0.0;
            for (long kk = 0; kk < k; kk++) s += (double)a[i * lda + kk] * (double)w[j * ldw + kk];
            float v = (float)s;
            if (act != FLINT_ACT_NONE) flint__act_portable(&v, 1, act);
            c[i * ldc + j] = v;
        }
}

// ---- GEMM kernel choice ------------------------------------------------------------------
// On an AVX-512 CPU the 12x32 zmm kernel is not always the faster one (CPUs that split 512-bit
// FMAs in two, or down-clock under zmm load, can favour the 6x16 ymm kernel). So the first call
// times both on a 96x256x256 single-thread GEMM (~5 ms once) and keeps the faster. On the Zen 5 VM
// this was tuned on: zmm ~260, ymm ~135 GFLOP/s per core (peak FMA: 277 / 138).
// Note: the MR loops of the micro-kernels need `unroll(full)`: at -O2 clang left the 12-row zmm
// loop rolled, with the 24 accumulators in memory (~110 GFLOP/s per core).
static double gemm_time1(int isa, int nr, const float *a, const float *packed, float *c) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int it = 0; it < 4; it++) flint_linear(NULL, isa, a, 96, 256, packed, nr, 256, 256, NULL, 0, c, 256);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}

/// 1 when the ymm kernel is clearly (> 10%) faster than the zmm one. The two are timed in
/// alternation (best of 8 each), so a burst of load from other processes hits both alike.
static int gemm_prefer_ymm(const float *a, const float *w, float *c) {
    float *p512 = NULL, *p256 = NULL;
    int ok = posix_memalign((void **)&p512, 64, flint_pack_floats(32, 256, 256) * sizeof(float)) == 0 &&
             posix_memalign((void **)&p256, 64, flint_pack_floats(16, 256, 256) * sizeof(float)) == 0;
    int ymm = 0;
    if (ok) {
        flint_pack_weight(w, 256, 256, 256, 32, p512);
        flint_pack_weight(w, 256, 256, 256, 16, p256);
        double t512 = 1e30, t256 = 1e30;
        for (int rep = 0; rep < 8; rep++) {
            double t = gemm_time1(FLINT_ISA_AVX512, 32, a, p512, c);
            if (t < t512) t512 = t;
            t = gemm_time1(FLINT_ISA_AVX2, 16, a, p256, c);
            if (t < t256) t256 = t;
        }
        ymm = t256 < 0.9 * t512;
    }
    free(p512);
    free(p256);
    return ymm;
}

int flint_gemm_isa(void) {
    static int cached = 0;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v) return v;
    v = flint_cpu_isa();
    const char *env = getenv("FLINT_GEMM_ISA"); // "avx2" / "avx512" / "portable": skip the timing
    if (env && strcmp(env, "avx2") == 0 && v >= FLINT_ISA_AVX2) v = FLINT_ISA_AVX2;
    else if (env && strcmp(env, "portable") == 0) v = FLINT_ISA_PORTABLE;
    else if (!(env && strcmp(env, "avx512") == 0) && v == FLINT_ISA_AVX512) {
        float *a = malloc(96 * 256 * sizeof(float)), *w = malloc(256 * 256 * sizeof(float)), *c = malloc(96 * 256 * sizeof(float));
        if (a && w && c) {
            for (int i = 0; i < 96 * 256; i++) a[i] = (float)((i * 37) % 101) * 0.01f;
            for (int i = 0; i < 256 * 256; i++) w[i] = (float)((i * 53) % 97) * 0.01f;
            if (gemm_prefer_ymm(a, w, c)) v = FLINT_ISA_AVX2;
        }
        free(a); free(w); free(c);
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}
