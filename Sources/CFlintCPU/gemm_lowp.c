// Low-precision linear layers: bf16 weights, and int8 weights (symmetric, one scale per output
// channel) run either with f32 activations ("weight-only", for memory-bound decoding) or with
// activations quantized per row at run time ("dynamic", for encoders). Accumulation is f32 (bf16,
// weight-only) or exact s32 (dynamic int8); dequantization, bias and activation happen in the
// tile epilogue of the shared driver (flint__gemm_drive in gemm.c: same blocking and threading as f32).
//
// Layouts: panels of 16 output columns, like the AVX2 f32 layout, zero padded.
//  - bf16: panel p = [k][16] uint16; within a k row, 32-bit lane i holds column i (low half) and
//    column i+8 (high half), so one 256-bit load gives columns 0-7 by a 16-bit left shift and
//    columns 8-15 by masking the low half: the widening costs two integer ops per k.
//  - int8: k padded to a multiple of 4 (kpad); panel p = [kpad/4][16][4] int8: each 32-bit lane
//    is one column's 4 consecutive k values (the order vpdpbusd and the 16-bit pair sums need).
//    The S8S8 dynamic kernel widens both sides to int16 and uses vpmaddwd: products and pair sums
//    are exact (|a|,|w| <= 127), so s32 sums over a K block (KC = 256) are exact. Full-range u8 x s8
//    vpmaddubsw pair sums would saturate at 16 bits (255 * 127 * 2 > 32767); the unsigned schemes
//    (gemm_int8u.c) narrow one side so that they cannot.
//  - grouped int8 (FLINT_W_INT8_G64): the same int8 panels; one scale per 64 k (a group) and output column,
//    stored [panel][group][16], so a k block of a panel reads 16 scales per group. On AVX2 a short A (below
//    GROUPED_A16_MAX_M rows) is quantized per row to int16 (|q| <= 32767: rounding 256x finer than int8, the
//    accuracy of f32 activations in practice) and runs the S8S8 kernel's integer arithmetic, the s32 sums of each
//    group scaled into f32 (ki8d_kernel.h); without AVX2, or for more rows, the weights are widened to f32 per
//    tile (widened_tile); a few rows stream through gemv_lowp.c.
// MR (rows per micro-kernel call): bf16 6 (12 ymm accumulators, as f32), int8 dynamic and grouped 3
// (12 ymm s32 accumulators), int8 weight-only 1 (8 ymm of k-interleaved partial sums).
#include "flint_internal.h"
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FLINT_X86 1
#include "tile_store_avx2.h"
#endif

#define LP_NR 16
#define MR_BF16 6
#define MR_I8 3

static long kpad_of(long k) { return (k + 3) / 4 * 4; }

// FLINT_W_INT8_DYN appends to the int8 panels (a multiple of 64 bytes) int32 column sums
// [panels * 16] and a 64-byte trailer whose first int32 is the scheme.
size_t flint_pack_lowp_bytes(int format, long n, long k) {
    long panels = (n + LP_NR - 1) / LP_NR;
    if (format == FLINT_W_BF16) return (size_t)panels * (size_t)k * LP_NR * 2;
    size_t bytes = (size_t)panels * (size_t)kpad_of(k) * LP_NR;
    if (format == FLINT_W_INT8_DYN) bytes += (size_t)panels * LP_NR * sizeof(int32_t) + 64;
    return bytes;
}

size_t flint_pack_lowp_scale_count(int format, long n, long k) {
    size_t columns = (size_t)((n + LP_NR - 1) / LP_NR) * LP_NR;
    if (format == FLINT_W_BF16) return 0;
    return columns * (size_t)flint__lowp_scale_groups(format, k);
}

static int32_t *dyn_colsum(const void *packed, long n, long k) {
    return (int32_t *)(void *)((char *)(uintptr_t)packed + (size_t)((n + LP_NR - 1) / LP_NR) * (size_t)kpad_of(k) * LP_NR);
}
static int32_t *dyn_tag(const void *packed, long n, long k) { return dyn_colsum(packed, n, k) + (n + LP_NR - 1) / LP_NR * LP_NR; }

int flint_int8_dynamic_scheme(const void *packed, long n, long k) { return *dyn_tag(packed, n, k); }

static int weight_qmax(int scheme) { return scheme == FLINT_I8_U8S7 || scheme == FLINT_I8_U7S7 ? 63 : 127; }

static int isa_has_vnni(void) {
#ifdef FLINT_X86
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) || __builtin_cpu_supports("avxvnni");
#else
    return 0;
#endif
}

int flint_int8_default_scheme(void) {
    const char *env = getenv("FLINT_INT8_SCHEME");
    if (env) {
        static const char *names[] = {"s8s8", "u8s7", "u7s8", "u7s7"};
        for (int i = 0; i < 4; i++)
            if (strcmp(env, names[i]) == 0) return i;
    }
    // VNNI's vpdpwssd runs S8S8 at full rate with the finest rounding. On plain AVX2 (the 2-vCPU AMD EPYC VM, AVX2 only, this
    // was tuned on) U8S7 and U7S8 run at S8S8's rate (their vpmaddwd by ones costs what S8S8's vpmaddwd
    // does) and only U7S7 is faster (~1.25x: one vpmaddwd per two vpmaddubsw), while it keeps
    // all-MiniLM-L6-v2 at cosine 0.9998 with int8 attention-output projections (see CPUPrecision.int8).
    if (isa_has_vnni() || flint_resolve_isa(FLINT_ISA_AUTO) < FLINT_ISA_AVX2) return FLINT_I8_S8S8;
    return FLINT_I8_U7S7;
}

static uint16_t bf16_rne(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static long bf16_slot(long j) { return j < 8 ? 2 * j : 2 * (j - 8) + 1; }
static size_t i8_index(long kpad, long p, long kk, long j) { return ((size_t)p * kpad + (size_t)(kk / 4) * 4) * LP_NR + j * 4 + kk % 4; }

/// Index of the scale of weight column j at input kk in the [panel][group][16] scale layout.
static size_t scale_index(int format, long k, long j, long kk) {
    long group = format == FLINT_W_INT8_G64 ? kk / FLINT_I8_GROUP : 0;
    return ((size_t)(j / LP_NR) * (size_t)flint__lowp_scale_groups(format, k) + (size_t)group) * LP_NR + (size_t)(j % LP_NR);
}

static void pack_weight(int format, int scheme, const float *w, long n, long k, long ldw, void *dst, float *scales);

void flint_pack_weight_lowp(int format, const float *w, long n, long k, long ldw, void *dst, float *scales) {
    pack_weight(format, format == FLINT_W_INT8_DYN ? flint_int8_default_scheme() : FLINT_I8_S8S8, w, n, k, ldw, dst, scales);
}

void flint_pack_weight_int8_dynamic(int scheme, const float *w, long n, long k, long ldw, void *dst, float *scales) {
    pack_weight(FLINT_W_INT8_DYN, scheme, w, n, k, ldw, dst, scales);
}

/// Quantizes x[0, len) (weight column j, k from kfirst) symmetrically to +-qmax into the int8 panels; returns the
/// scale (0 for all zeros; a non-finite max is kept as the scale, so the layer's output shows it).
static float quantize_weights(const float *x, long len, float qmax, int8_t *d, long kpad, long j, long kfirst) {
    float amax = 0.0f;
    for (long kk = 0; kk < len; kk++) amax = fmaxf(amax, fabsf(x[kk]));
    if (amax == 0.0f || !isfinite(amax)) return isfinite(amax) ? 0.0f : amax;
    float inv = qmax / amax;
    for (long kk = 0; kk < len; kk++) {
        float q = nearbyintf(x[kk] * inv);
        q = q > qmax ? qmax : (q < -qmax ? -qmax : q);
        d[i8_index(kpad, j / LP_NR, kfirst + kk, j % LP_NR)] = (int8_t)q;
    }
    return amax / qmax;
}

static void pack_weight(int format, int scheme, const float *w, long n, long k, long ldw, void *dst, float *scales) {
    memset(dst, 0, flint_pack_lowp_bytes(format, n, k));
    if (format == FLINT_W_BF16) {
        uint16_t *d = dst;
        for (long j = 0; j < n; j++)
            for (long kk = 0; kk < k; kk++)
                d[((size_t)(j / LP_NR) * k + kk) * LP_NR + bf16_slot(j % LP_NR)] = bf16_rne(w[j * ldw + kk]);
        return;
    }
    int8_t *d = dst;
    long kpad = kpad_of(k);
    float qmax = (float)weight_qmax(scheme);
    memset(scales, 0, flint_pack_lowp_scale_count(format, n, k) * sizeof(float));
    if (format == FLINT_W_INT8_G64) {
        for (long j = 0; j < n; j++)
            for (long k0 = 0; k0 < k; k0 += FLINT_I8_GROUP)
                scales[scale_index(format, k, j, k0)] =
                    quantize_weights(w + j * ldw + k0, FLINT_MIN((long)FLINT_I8_GROUP, k - k0), qmax, d, kpad, j, k0);
        return;
    }
    for (long j = 0; j < n; j++) scales[j] = quantize_weights(w + j * ldw, k, qmax, d, kpad, j, 0);
    if (format != FLINT_W_INT8_DYN) return;
    int32_t *colsum = dyn_colsum(dst, n, k);
    for (long j = 0; j < n; j++) {
        int32_t sum = 0;
        for (long kk = 0; kk < k; kk++) sum += d[i8_index(kpad, j / LP_NR, kk, j % LP_NR)];
        colsum[j] = sum;
    }
    *dyn_tag(dst, n, k) = scheme;
}

void flint_unpack_weight_lowp(int format, const void *packed, const float *scales, long n, long k, float *w) {
    long kpad = kpad_of(k);
    for (long j = 0; j < n; j++)
        for (long kk = 0; kk < k; kk++) {
            if (format == FLINT_W_BF16) {
                uint32_t u = (uint32_t)((const uint16_t *)packed)[((size_t)(j / LP_NR) * k + kk) * LP_NR + bf16_slot(j % LP_NR)] << 16;
                memcpy(&w[j * k + kk], &u, 4);
            } else {
                int8_t q = ((const int8_t *)packed)[i8_index(kpad, j / LP_NR, kk, j % LP_NR)];
                w[j * k + kk] = scales[scale_index(format, k, j, kk)] * (float)q;
            }
        }
}

// ---- dynamic activation quantization -------------------------------------------------------
// S8S8: row i of A: scale = max|a|/qmax, q = round-to-nearest-even(a / scale) in [-qmax, qmax], k padded with
// zeros to kpad; qmax = 127, or 32767 for grouped int8 weights (A16_QMAX: int16 activations, rounding 256x finer,
// at the same cost: the S8S8 kernels widen A to int16 anyway). The unsigned schemes quantize in gemm_int8u.c.
#define A16_QMAX 32767.0f
/// Rows below which grouped int8 runs on int16 A rather than widened weights. Widening costs the same per tile
/// whatever its rows, so more rows amortize it: on the AVX2 VM (`flint bench gemm`, N x K 1536 x 384) int16 A
/// ran at 1.15x the widened rate at 32 rows, 1.0x at 128-256 and 0.88x at 1024.
#define GROUPED_A16_MAX_M 128
FLINT_INLINE void quantize_row_body(const float *a, long k, long kpad, float qmax, int16_t *q, float *scale) {
    float amax = 0.0f;
    for (long j = 0; j < k; j++) amax = fmaxf(amax, fabsf(a[j]));
    float inv = amax > 0.0f ? qmax / amax : 0.0f;
    *scale = amax / qmax;
    for (long j = 0; j < k; j++) {
        float v = __builtin_roundevenf(a[j] * inv);
        v = v > qmax ? qmax : (v < -qmax ? -qmax : v);
        q[j] = (int16_t)v;
    }
    for (long j = k; j < kpad; j++) q[j] = 0;
}
static void quantize_row_portable(const float *a, long k, long kpad, float qmax, int16_t *q, float *s) {
    quantize_row_body(a, k, kpad, qmax, q, s);
}
#ifdef FLINT_X86
FLINT_T_AVX2 static void quantize_row_avx2(const float *a, long k, long kpad, float qmax, int16_t *q, float *s) {
    quantize_row_body(a, k, kpad, qmax, q, s);
}
#endif

typedef struct {
    int isa, scheme; const float *a; long lda, k, kpad; float qmax; int16_t *q; uint8_t *q8; int32_t *zp; float *scale;
    long rows_per_task, m;
} quant_ctx;

static void quantize_task(void *vctx, long t) {
    const quant_ctx *Q = vctx;
    long r1 = FLINT_MIN(Q->m, (t + 1) * Q->rows_per_task);
    for (long r = t * Q->rows_per_task; r < r1; r++) {
        if (Q->scheme != FLINT_I8_S8S8) {
            flint__int8u_quantize_row(Q->isa, Q->scheme, Q->a + r * Q->lda, Q->k, Q->kpad, Q->q8 + r * Q->kpad, Q->zp + r,
                                      Q->scale + r);
            continue;
        }
#ifdef FLINT_X86
        if (Q->isa >= FLINT_ISA_AVX2) {
            quantize_row_avx2(Q->a + r * Q->lda, Q->k, Q->kpad, Q->qmax, Q->q + r * Q->kpad, Q->scale + r);
            continue;
        }
#endif
        quantize_row_portable(Q->a + r * Q->lda, Q->k, Q->kpad, Q->qmax, Q->q + r * Q->kpad, Q->scale + r);
    }
}

static void quantize_rows(flint_pool *pool, int isa, int scheme, float qmax, const float *a, long m, long lda, long k,
                          int16_t *q, uint8_t *q8, int32_t *zp, float *scale) {
    // A small A (a short sequence) is quantized on the calling thread: tens of microseconds, less than
    // waking the pool once more (which costs far more when the machine's cores are oversubscribed).
    long tasks = m * k < (1L << 17) ? 1 : FLINT_MIN(m, 4L * flint_pool_threads(pool));
    quant_ctx Q = {.isa = isa, .scheme = scheme, .a = a, .lda = lda, .k = k, .kpad = kpad_of(k), .qmax = qmax, .q = q, .q8 = q8,
                   .zp = zp, .scale = scale, .rows_per_task = (m + tasks - 1) / tasks, .m = m};
    if (tasks == 1) { quantize_task(&Q, 0); return; }
    flint_pool_run(pool, (m + Q.rows_per_task - 1) / Q.rows_per_task, quantize_task, &Q);
}

void flint_quantize_rows_int8(int scheme, const float *a, long m, long lda, long k, float *out) {
    long kpad = kpad_of(k);
    int16_t *q = malloc((size_t)kpad * sizeof(int16_t));
    uint8_t *q8 = malloc((size_t)kpad);
    if (!q || !q8) abort();
    for (long i = 0; i < m; i++) {
        float s;
        int32_t z = 0;
        if (scheme == FLINT_I8_S8S8) quantize_row_portable(a + i * lda, k, kpad, 127.0f, q, &s);
        else flint__int8u_quantize_row(FLINT_ISA_PORTABLE, scheme, a + i * lda, k, kpad, q8, &z, &s);
        for (long j = 0; j < k; j++) out[i * k + j] = (float)(scheme == FLINT_I8_S8S8 ? q[j] : (int32_t)q8[j] - z) * s;
    }
    free(q);
    free(q8);
}

/// Whether flint_linear_lowp runs grouped int8 weights on A quantized to int16 (else on A as given).
static int grouped_runs_a16(int isa, long m) { return isa >= FLINT_ISA_AVX2 && m > FLINT_GEMV_MAX_M && m < GROUPED_A16_MAX_M; }

void flint_grouped_int8_activations(int isa, const float *a, long m, long lda, long k, float *out) {
    long kpad = kpad_of(k);
    int16_t *q = malloc((size_t)kpad * sizeof(int16_t));
    if (!q) abort();
    int a16 = grouped_runs_a16(flint_resolve_isa(isa), m);
    for (long i = 0; i < m; i++) {
        float s = 1.0f;
        if (a16) quantize_row_portable(a + i * lda, k, kpad, A16_QMAX, q, &s);
        for (long j = 0; j < k; j++) out[i * k + j] = a16 ? (float)q[j] * s : a[i * lda + j];
    }
    free(q);
}

// ---- portable micro-kernels ------------------------------------------------------------------
static void store_row(float *cr, const float *v, int accum, const float *bias, int ncols) {
    for (int j = 0; j < ncols; j++) {
        float x = v[j];
        if (accum) x += cr[j];
        if (bias) x += bias[j];
        cr[j] = x;
    }
}

static void kbf16_portable(long m, long kc, const float *a, long lda, const uint16_t *b, float *c, long ldc,
                           int accum, const float *bias, int ncols) {
    for (long i = 0; i < m; i++) {
        float acc[LP_NR] = {0};
        for (long kk = 0; kk < kc; kk++) {
            float av = a[i * lda + kk];
            for (int j = 0; j < LP_NR; j++) {
                uint32_t u = (uint32_t)b[kk * LP_NR + bf16_slot(j)] << 16;
                float w;
                memcpy(&w, &u, 4);
                acc[j] += av * w;
            }
        }
        store_row(c + i * ldc, acc, accum, bias, ncols);
    }
}

static void ki8_portable(long m, long kc, const flint_lowp *L, const float *a, long lda, const int16_t *aq, const float *as,
                         const int8_t *b, const float *ws, float *c, long ldc, int accum, const float *bias, int ncols) {
    for (long i = 0; i < m; i++) {
        float v[LP_NR];
        for (int j = 0; j < LP_NR; j++) {
            if (L->mode == FLINT_INT8_DYNAMIC) {
                int32_t s = 0;
                for (long kk = 0; kk < kc; kk++) s += (int32_t)aq[i * L->kpad + kk] * b[(kk / 4) * 64 + j * 4 + kk % 4];
                v[j] = (float)s * as[i] * ws[j];
            } else {
                float s = 0.0f;
                for (long kk = 0; kk < kc; kk++) s += a[i * lda + kk] * (float)b[(kk / 4) * 64 + j * 4 + kk % 4];
                v[j] = s * ws[j];
            }
        }
        store_row(c + i * ldc, v, accum, bias, ncols);
    }
}

#ifdef FLINT_X86
// ---- AVX2 micro-kernels ----------------------------------------------------------------------
FLINT_INLINE FLINT_T_AVX2 void kbf16_body(const int MR, long kc, const float *a, long lda, const uint16_t *b,
                                          float *c, long ldc, int accum, const float *bias, int ncols) {
    __m256 acc0[MR_BF16], acc1[MR_BF16];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) { acc0[i] = _mm256_setzero_ps(); acc1[i] = _mm256_setzero_ps(); }
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (long k = 0; k < kc; k++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(b + k * LP_NR));
        __m256 b0 = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
        __m256 b1 = _mm256_castsi256_ps(_mm256_and_si256(x, high));
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i * lda + k);
            acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
        }
    }
    flint_store_tile16(MR, acc0, acc1, c, ldc, accum, bias, ncols);
}

FLINT_T_AVX2 static void kbf16_avx2(int mr, long kc, const float *a, long lda, const uint16_t *b, float *c, long ldc,
                                    int accum, const float *bias, int ncols) {
#define KB(R) case R: kbf16_body(R, kc, a, lda, b, c, ldc, accum, bias, ncols); break;
    switch (mr) { KB(1) KB(2) KB(3) KB(4) KB(5) KB(6) default: break; }
#undef KB
}

/// (c0 p01, c0 p23, c1 p01, c1 p23 | c2.., c3..) and the same for c4-c7 -> c0..c7 (s32 pair sums).
FLINT_INLINE FLINT_T_AVX2 __m256i pairs_to_columns(__m256i lo, __m256i hi) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
}

// The dynamic-int8 kernel per ISA (ki8d_kernel.h). The VNNI ones fuse multiply-add-accumulate into
// vpdpwssd on the same int16 operands, so they give bit-identical sums; this machine (AVX2 only) never
// runs them: they are compiled everywhere and chosen at run time where the CPU reports AVX-VNNI or
// AVX512-VNNI (untested here; the kernel tests cover them on such CPUs, since isa auto picks them).
#define KI8D_NAME ki8d_avx2
#define KI8D_TARGET FLINT_T_AVX2
#define KI8D_DOT(acc, a, b) _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
#include "ki8d_kernel.h"
#define KI8D_NAME ki8d_avxvnni
#define KI8D_TARGET __attribute__((target("avx2,fma,avxvnni")))
#define KI8D_DOT(acc, a, b) _mm256_dpwssd_avx_epi32(acc, a, b)
#include "ki8d_kernel.h"
#define KI8D_NAME ki8d_avx512vnni
#define KI8D_TARGET __attribute__((target("avx512f,avx512vl,avx512vnni,avx2,fma")))
#define KI8D_DOT(acc, a, b) _mm256_dpwssd_epi32(acc, a, b)
#include "ki8d_kernel.h"

typedef void (*ki8d_fn)(int, long, const int16_t *, long, const float *, const int8_t *, const int8_t *, const float *,
                        float *, long, int, const float *, int);
typedef void (*ki8g_fn)(int, long, long, const int16_t *, long, const float *, const int8_t *, const int8_t *, const float *,
                        float *, long, int, const float *, int);
static const ki8d_fn ki8d_variants[] = {ki8d_avx2, ki8d_avxvnni, ki8d_avx512vnni};
static const ki8g_fn ki8g_variants[] = {ki8d_avx2_grouped, ki8d_avxvnni_grouped, ki8d_avx512vnni_grouped};

/// Which of the *_variants this CPU runs (0 AVX2, 1 AVX-VNNI, 2 AVX512-VNNI): VNNI when present (env
/// FLINT_INT8_VNNI=0 keeps vpmaddwd).
static int ki8_variant(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    v = 0;
    const char *env = getenv("FLINT_INT8_VNNI");
    if (!(env && strcmp(env, "0") == 0)) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) v = 2;
        else if (__builtin_cpu_supports("avxvnni")) v = 1;
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/// Name of the dynamic-int8 kernel this CPU runs for the default scheme, for reports.
const char *flint_int8_kernel_name(void) {
    if (flint_resolve_isa(FLINT_ISA_AUTO) < FLINT_ISA_AVX2) return "portable";
    static const char *unsigned_names[] = {"", "avx2-u8s7", "avx2-u7s8", "avx2-u7s7"};
    int scheme = flint_int8_default_scheme();
    if (scheme != FLINT_I8_S8S8) return unsigned_names[scheme];
    static const char *names[] = {"avx2", "avxvnni", "avx512vnni"};
    return names[ki8_variant()];
}

/// 8 accumulators of (column 2h: k0..k3 | column 2h+1: k0..k3) partial sums -> columns 0..7 at
/// acc[0..3], 8..15 at acc[4..7].
FLINT_INLINE FLINT_T_AVX2 __m256 quads_to_columns(const __m256 *acc) {
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3])); // c0 c2 c4 c6 | c1 c3 c5 c7
    return _mm256_permutevar8x32_ps(u, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

FLINT_INLINE FLINT_T_AVX2 __m256 ki8w_quad(__m256 av, const int8_t *bq, __m256 *acc) {
    #pragma clang loop unroll(full)
    for (int h = 0; h < 8; h++) {
        __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(bq + 8 * h))));
        acc[h] = _mm256_fmadd_ps(av, w, acc[h]);
    }
    return av;
}

/// One row: f32 activations times int8 weights (weight-only), the column scales applied at the end.
FLINT_T_AVX2 static void ki8w_avx2(long kc, const float *a, const int8_t *b, const float *ws, float *c, int accum,
                                   const float *bias, int ncols) {
    __m256 acc[8];
    for (int h = 0; h < 8; h++) acc[h] = _mm256_setzero_ps();
    long kq = kc / 4;
    for (long q = 0; q < kq; q++) ki8w_quad(_mm256_broadcast_ps((const __m128 *)(a + 4 * q)), b + q * 64, acc);
    if (kc % 4) { // the tail quad: A's missing values are zeros (the weights' padding is zero too)
        float tail[4] = {0, 0, 0, 0};
        for (long j = 4 * kq; j < kc; j++) tail[j - 4 * kq] = a[j];
        ki8w_quad(_mm256_broadcast_ps((const __m128 *)tail), b + kq * 64, acc);
    }
    __m256 r0 = _mm256_mul_ps(quads_to_columns(acc), _mm256_loadu_ps(ws));
    __m256 r1 = _mm256_mul_ps(quads_to_columns(acc + 4), _mm256_loadu_ps(ws + 8));
    flint_store_tile16(1, &r0, &r1, c, 0, accum, bias, ncols);
}
#endif

// ---- widened tiles ----------------------------------------------------------------------------
// A tile of many rows widens its kc x 16 weight block once into f32 (bf16 -> f32 exactly; int8 -> q * column
// scale, one f32 rounding) laid out like gemm.c's f32 panel ([k][16]), then runs the f32 micro-kernel over
// all its rows: the conversion is paid once per tile instead of once per micro-kernel call (every 6 rows for
// bf16, every row for weight-only int8: GPT-2's int8 prefill at s128 ran 2.2x slower than f32 that way).
// Fewer rows keep the fused kernels above (converting in registers costs less than a store and reload).
/// Rows from which a tile is widened: bf16 four micro-kernel heights (at 16 rows, all-MiniLM-L6-v2 s16 b1, the
/// widened tile measured ~7% slower: few rows, weights streamed from memory); weight-only int8 two rows
/// (its fused kernel does one row per call).
#define WIDEN_MIN_ROWS_BF16 (4 * MR_BF16)
#define WIDEN_MIN_ROWS_I8W 2
/// k rows widened per pass: a 16 KiB f32 block that stays in L1 beside its source (a driver K block
/// longer than this is done in several passes, accumulating as K blocks do).
#define WIDEN_KC 256

static _Thread_local float widened_block[WIDEN_KC * LP_NR] __attribute__((aligned(64)));

static void widen_bf16_portable(long kc, const uint16_t *b, float *dst) {
    for (long kk = 0; kk < kc; kk++)
        for (int j = 0; j < LP_NR; j++) {
            uint32_t u = (uint32_t)b[kk * LP_NR + bf16_slot(j)] << 16;
            memcpy(&dst[kk * LP_NR + j], &u, 4);
        }
}

/// The 16 column scales of the quad of k at kfirst + 4q: ws itself (per channel), or its group's (grouped: ws is
/// the panel's [group][16] scales; a group is a whole number of quads, so a quad never straddles two).
FLINT_INLINE const float *quad_scales(const float *ws, int grouped, long kfirst, long q) {
    return grouped ? ws + (kfirst + 4 * q) / FLINT_I8_GROUP * LP_NR : ws;
}

/// Rows [0, kc) of dst (k from kfirst); the int8 layout is read in whole quads of k, so dst also gets the zero
/// padding's rows up to the next multiple of 4 (never read by the f32 kernel).
static void widen_i8_portable(long kc, const int8_t *b, const float *ws, int grouped, long kfirst, float *dst) {
    for (long kk = 0; kk < (kc + 3) / 4 * 4; kk++) {
        const float *s = quad_scales(ws, grouped, kfirst, kk / 4);
        for (int j = 0; j < LP_NR; j++) dst[kk * LP_NR + j] = (float)b[(kk / 4) * 64 + j * 4 + kk % 4] * s[j];
    }
}

#ifdef FLINT_X86
FLINT_T_AVX2 static void widen_bf16_avx2(long kc, const uint16_t *b, float *dst) {
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (long kk = 0; kk < kc; kk++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(b + kk * LP_NR));
        _mm256_store_ps(dst + kk * LP_NR, _mm256_castsi256_ps(_mm256_slli_epi32(x, 16)));
        _mm256_store_ps(dst + kk * LP_NR + 8, _mm256_castsi256_ps(_mm256_and_si256(x, high)));
    }
}

/// Columns 8h..8h+7 of 8 x 4 int8 (one column's 4 k per 32-bit lane) as (k0: c0..c7 | k1 | k2 | k3), 8 bytes each.
FLINT_INLINE FLINT_T_AVX2 __m256i i8_quad_by_k(const int8_t *bq) {
    const __m256i by_k = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                          0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m256i x = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)bq), by_k); // per 128-bit half: k0..k3 x 4 columns
    return _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

FLINT_INLINE FLINT_T_AVX2 void widen_i8_store(__m128i eight, __m256 scale, float *dst) {
    _mm256_store_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(eight)), scale));
}

FLINT_T_AVX2 static void widen_i8_avx2(long kc, const int8_t *b, const float *ws, int grouped, long kfirst, float *dst) {
    __m256 s[2] = {_mm256_loadu_ps(ws), _mm256_loadu_ps(ws + 8)};
    for (long q = 0; q < (kc + 3) / 4; q++) {
        float *d = dst + q * 4 * LP_NR;
        if (grouped) {
            const float *g = quad_scales(ws, grouped, kfirst, q);
            s[0] = _mm256_loadu_ps(g);
            s[1] = _mm256_loadu_ps(g + 8);
        }
        #pragma clang loop unroll(full)
        for (int h = 0; h < 2; h++) {
            __m256i x = i8_quad_by_k(b + q * 64 + 32 * h);
            __m128i k01 = _mm256_castsi256_si128(x), k23 = _mm256_extracti128_si256(x, 1);
            widen_i8_store(k01, s[h], d + 8 * h);
            widen_i8_store(_mm_unpackhi_epi64(k01, k01), s[h], d + LP_NR + 8 * h);
            widen_i8_store(k23, s[h], d + 2 * LP_NR + 8 * h);
            widen_i8_store(_mm_unpackhi_epi64(k23, k23), s[h], d + 3 * LP_NR + 8 * h);
        }
    }
}
#endif

/// Rows a tile needs to be widened (0: never; dynamic int8 multiplies integers, it is not widened). Grouped int8
/// weight-only (no AVX2) always: its scales change every 64 k, which the fused one-row kernel (one scale per column)
/// does not do.
static long widen_min_rows(const flint_lowp *L) {
    if (L->format == FLINT_W_BF16) return WIDEN_MIN_ROWS_BF16;
    if (L->format == FLINT_W_INT8_G64) return L->mode == FLINT_INT8_WEIGHT_ONLY ? 1 : 0;
    return L->mode == FLINT_INT8_WEIGHT_ONLY ? WIDEN_MIN_ROWS_I8W : 0;
}

/// flint__lowp_tile's rows [0, m) (A at ap) through widened f32 blocks and gemm.c's f32 micro-kernel:
/// the same accumulation across K blocks and bias at the last one as the fused kernels.
static void widened_tile(const flint_lowp *L, int isa, const float *ap, long lda, long m, long p, long k0, long kc,
                         int accum, const float *bias, int ncols, float *c, long ldc) {
    int avx2 = 0;
#ifdef FLINT_X86
    avx2 = isa >= FLINT_ISA_AVX2; // the 6 x 16 ymm kernel also on AVX-512 CPUs: the panel is 16 wide
#endif
    float *w = widened_block;
    for (long s = 0; s < kc; s += WIDEN_KC) {
        long sc = FLINT_MIN((long)WIDEN_KC, kc - s);
        if (L->format == FLINT_W_BF16) {
            const uint16_t *b = (const uint16_t *)L->packed + ((size_t)p * L->k + k0 + s) * LP_NR;
#ifdef FLINT_X86
            if (avx2) widen_bf16_avx2(sc, b, w);
            else
#endif
                widen_bf16_portable(sc, b, w);
        } else {
            const int8_t *b = (const int8_t *)L->packed + ((size_t)p * L->kpad + k0 + s) * LP_NR;
            int grouped = L->format == FLINT_W_INT8_G64;
            const float *ws = flint__lowp_panel_scales(L, p);
#ifdef FLINT_X86
            if (avx2) widen_i8_avx2(sc, b, ws, grouped, k0 + s, w);
            else
#endif
                widen_i8_portable(sc, b, ws, grouped, k0 + s, w);
        }
        flint__kern_rows_prefetch_c(avx2 ? FLINT_ISA_AVX2 : FLINT_ISA_PORTABLE, LP_NR, m, sc, ap + s, lda, w, LP_NR, c, ldc,
                                    accum || s > 0, s + sc >= kc ? bias : NULL, ncols);
    }
}

void flint__lowp_tile(const flint_lowp *L, int isa, const float *a, long lda, long m0, long m1, long p, long k0,
                      long kc, int accum, const float *bias, int ncols, float *c, long ldc) {
    long m = m1 - m0;
    const float *ap = a + m0 * lda + k0;
    long widen_from = widen_min_rows(L);
    if (widen_from > 0 && m >= widen_from) {
        widened_tile(L, isa, ap, lda, m, p, k0, kc, accum, bias, ncols, c, ldc);
        return;
    }
    if (L->format == FLINT_W_BF16) {
        const uint16_t *b = (const uint16_t *)L->packed + ((size_t)p * L->k + k0) * LP_NR;
#ifdef FLINT_X86
        if (isa >= FLINT_ISA_AVX2) {
            for (long i = 0; i < m; i += MR_BF16)
                kbf16_avx2((int)FLINT_MIN(MR_BF16, m - i), kc, ap + i * lda, lda, b, c + i * ldc, ldc, accum, bias, ncols);
            return;
        }
#endif
        kbf16_portable(m, kc, ap, lda, b, c, ldc, accum, bias, ncols);
        return;
    }
    if (L->mode == FLINT_INT8_DYNAMIC && L->scheme != FLINT_I8_S8S8) {
        flint__int8u_tile(L, isa, m0, m1, p, k0, kc, accum, bias, ncols, c, ldc);
        return;
    }
    const int8_t *b = (const int8_t *)L->packed + ((size_t)p * L->kpad + k0) * LP_NR;
    const float *ws = flint__lowp_panel_scales(L, p);
    const int16_t *aq = L->aq ? L->aq + m0 * L->kpad + k0 : NULL;
    const float *as = L->ascale ? L->ascale + m0 : NULL;
#ifdef FLINT_X86
    if (isa >= FLINT_ISA_AVX2) {
        // gemm.c's tasks visit panels in order within a K block: the next tile is usually the next panel's.
        const int8_t *next = b + (size_t)L->kpad * LP_NR;
        long kq = (kc + 3) / 4; // a short last block reads the zero padding of A and W
        if (L->mode == FLINT_INT8_DYNAMIC && L->format == FLINT_W_INT8_G64) {
            ki8g_fn kernel = ki8g_variants[ki8_variant()];
            for (long i = 0; i < m; i += MR_I8)
                kernel((int)FLINT_MIN(MR_I8, m - i), kq, k0 / 4, aq + i * L->kpad, L->kpad, as + i, b, i == 0 ? next : NULL, ws,
                       c + i * ldc, ldc, accum, bias, ncols);
        } else if (L->mode == FLINT_INT8_DYNAMIC) {
            ki8d_fn kernel = ki8d_variants[ki8_variant()];
            for (long i = 0; i < m; i += MR_I8)
                kernel((int)FLINT_MIN(MR_I8, m - i), kq, aq + i * L->kpad, L->kpad, as + i, b, i == 0 ? next : NULL, ws,
                       c + i * ldc, ldc, accum, bias, ncols);
        } else {
            for (long i = 0; i < m; i++) ki8w_avx2(kc, ap + i * lda, b, ws, c + i * ldc, accum, bias, ncols);
        }
        return;
    }
#endif
    ki8_portable(m, kc, L, ap, lda, aq, as, b, ws, c, ldc, accum, bias, ncols);
}

void flint_linear_lowp(flint_pool *pool, int isa, int format, int mode, const float *a, long m, long lda, const void *packed,
                       const float *scales, long n, long k, const float *bias, int act, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    isa = flint_resolve_isa(isa);
    // Grouped weights: int16 A through the integer kernel for a short A on AVX2 (~1.45x the widened rate at 16 rows,
    // the same accuracy: all-MiniLM-L6-v2 min cosine 0.99956 both), else weight-only (streamed or widened).
    if (format == FLINT_W_INT8_G64) mode = grouped_runs_a16(isa, m) ? FLINT_INT8_DYNAMIC : FLINT_INT8_WEIGHT_ONLY;
    flint_lowp L = {.format = format, .mode = mode, .packed = packed, .wscale = scales, .k = k, .kpad = kpad_of(k),
                    .scheme = format == FLINT_W_INT8_DYN ? flint_int8_dynamic_scheme(packed, n, k) : FLINT_I8_S8S8};
    long mr = format == FLINT_W_BF16 ? MR_BF16 : (mode == FLINT_INT8_DYNAMIC ? MR_I8 : 1);
    if (flint__lowp_gemv(pool, isa, &L, a, m, lda, n, bias, act, c, ldc)) return; // decode: stream the weights
    if (format != FLINT_W_BF16 && mode == FLINT_INT8_DYNAMIC && k > 0) {
        // Quantized A lives in the caller's scratch for this call only (GEMM tasks use no scratch):
        // [m] scales, [m] zero points (unsigned schemes), then the quantized rows.
        size_t qfloats = ((size_t)m * L.kpad * sizeof(int16_t) + 63) / sizeof(float) + 2 * (size_t)m;
        float *scratch = flint__scratch(qfloats);
        L.ascale = scratch;
        if (L.scheme == FLINT_I8_S8S8) {
            L.aq = (int16_t *)(void *)(scratch + 2 * m);
        } else {
            L.azp = (int32_t *)(void *)(scratch + m);
            L.aq8 = (uint8_t *)(void *)(scratch + 2 * m);
            L.colsum = dyn_colsum(packed, n, k);
            mr = flint__int8u_mr(isa);
        }
        quantize_rows(pool, isa, L.scheme, format == FLINT_W_INT8_G64 ? A16_QMAX : 127.0f, a, m, lda, k, (int16_t *)(void *)L.aq,
                      (uint8_t *)(void *)L.aq8, (int32_t *)(void *)L.azp, scratch);
    }
    flint__gemm_drive(pool, isa, LP_NR, mr, &L, a, m, lda, NULL, n, k, bias, act, c, ldc);
}
