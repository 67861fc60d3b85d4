// Multi-head attention over packed (padding-free) variable-length sequences, and its plain reference.
//
//   out[row, h*d ..< (h+1)*d] = softmax(scale · q·K^T) · V   per (sequence, head)
//
// causal: query i sees keys j <= i; with a KV cache (GPT-2) the keys and values come from the
// sequence's cache slot (the batch's K/V are appended first) and a query at position p sees keys 0...p.
//
// Fast path: one task per (sequence, head, group of query blocks); a group is all the query blocks of
// the head unless the batch has too few heads to keep every thread busy.
//  1. The head's keys are packed once per task into NR-wide panels [Lp/NR][d][NR], zero padded: the B
//     layout of gemm.c's micro-kernels (4 KiB per panel at d = 64, so a panel stays in L1 while every
//     row block of queries streams over it). The values go to panels [dp/NR][Lkv][NR] the same way.
//     (Before, every block of 64 queries re-transposed K into a [d][Lp] array, 96 KiB at seq 384, with
//     a strided scalar scatter, and re-copied V: about as long as both matmuls together.)
//  2. Per block of QB queries: S = Q·K^T on the micro-kernels (Q read in place from the qkv rows); then
//     per row the max, e = exp(scale·(s - max)) in place and the row sum: scale, causal mask and
//     softmax in one pass over scores that stay in L2 (QB x Lp floats, 72 KiB at seq 384). On AVX2 the
//     exp is 2^t with the scale and the max folded into one FMA and a degree-5 polynomial (exp_row_avx2):
//     the generic flint_expf loop was 12% of attention at seq 384, this one ~8%.
//  3. O = E·V on the micro-kernels, written straight into `out`, with the softmax's 1/sum applied to
//     the d outputs of each row afterwards (d multiplies per row rather than Lkv).
// No padding token is ever computed. flint_attention_reference below is the plain version (double
// accumulation, no packing) the tests compare against.
#include "flint_internal.h"
#include <float.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define QB 48 // query rows per block: a multiple of the AVX2 kernel's 6 and the AVX-512 kernel's 12

typedef struct {
    int isa, nr, causal;
    const float *qkv;
    float *out;
    long rowStride, outStride, heads, d;
    float scale;
    const int32_t *starts, *lengths;
    const long *taskStart; // per sequence: first task index (prefix sum), batch+1 entries
    const long *blocksPerGroup; // per sequence: query blocks per task
    long batch;
    // KV cache (NULL keyCache: keys and values come from the qkv rows of the sequence itself).
    const float *keyCache, *valueCache;
    const int32_t *positions, *slots;
    long maxContext;
} attn_ctx;

// ---- row softmax pieces -------------------------------------------------------------------
// x[j] = exp(scale·(x[j] - max)) for j < valid (max over x[0..valid)), x[valid..n) = 0; returns the sum.
FLINT_INLINE float exp_row_body(float *x, long n, long valid, float scale) {
    // The max as 16 running lanes (a vertical max clang vectorizes; a scalar reduction over the
    // row was 3/4 of the softmax time), folded at the end.
    float lane[16];
    for (int l = 0; l < 16; l++) lane[l] = -FLT_MAX;
    long j0 = 0;
    for (; j0 + 16 <= valid; j0 += 16)
        for (int l = 0; l < 16; l++) lane[l] = x[j0 + l] > lane[l] ? x[j0 + l] : lane[l];
    for (long j = j0; j < valid; j++) lane[0] = x[j] > lane[0] ? x[j] : lane[0];
    float mx = lane[0];
    for (int l = 1; l < 16; l++) mx = lane[l] > mx ? lane[l] : mx;
    float sum = 0.0f;
    {
#pragma clang fp reassociate(on)
        for (long j = 0; j < valid; j++) { float e = flint_expf((x[j] - mx) * scale); x[j] = e; sum += e; }
    }
    for (long j = valid; j < n; j++) x[j] = 0.0f;
    return sum;
}
FLINT_INLINE void softmax_row_body(float *x, long n, long valid, float scale) {
    float inv = 1.0f / exp_row_body(x, n, valid, scale);
    for (long j = 0; j < valid; j++) x[j] *= inv;
}
static float exp_row_portable(float *x, long n, long valid, float scale) { return exp_row_body(x, n, valid, scale); }
static void softmax_row_portable(float *x, long n, long valid, float scale) { softmax_row_body(x, n, valid, scale); }
#if defined(__x86_64__) || defined(__i386__)
// 2^f on [-1/2, 1/2]: 1 + f·(c1 + f·(... c5)), a least-squares-minimax fit, relative error <= 1.9e-7.
#define EXP2_C1 0.6931470036506653f
#define EXP2_C2 0.24022242426872253f
#define EXP2_C3 0.05550733581185341f
#define EXP2_C4 0.009671512991189957f
#define EXP2_C5 0.001326472731307149f
// exp(scale·(x - max)) = 2^t with t = x·(scale·log2 e) - max·(scale·log2 e) <= 0: one FMA for the scale
// and the shift, t clamped at -126 (no denormals), 2^round(t) put straight into the exponent bits and
// 2^(t - round(t)) from the polynomial: 10 vector operations per 8 scores where flint_expf takes ~18.
FLINT_INLINE FLINT_T_AVX2 __m256 exp2_nonpositive_avx2(__m256 t) {
    t = _mm256_max_ps(t, _mm256_set1_ps(-126.0f));
    __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(t, n);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(EXP2_C5), f, _mm256_set1_ps(EXP2_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(EXP2_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(EXP2_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(EXP2_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), bits));
}
FLINT_T_AVX2 static float exp_row_avx2(float *x, long n, long valid, float scale) {
    __m256 m0 = _mm256_set1_ps(-FLT_MAX), m1 = m0, m2 = m0, m3 = m0;
    long j = 0;
    for (; j + 32 <= valid; j += 32) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + j));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + j + 8));
        m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + j + 16));
        m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + j + 24));
    }
    for (; j + 8 <= valid; j += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + j));
    m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float mx = _mm_cvtss_f32(h);
    for (; j < valid; j++) mx = x[j] > mx ? x[j] : mx;
    float c = scale * 1.44269504088896341f;
    __m256 vc = _mm256_set1_ps(c), voff = _mm256_set1_ps(-mx * c);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    j = 0;
    for (; j + 16 <= valid; j += 16) {
        __m256 e0 = exp2_nonpositive_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(x + j), vc, voff));
        __m256 e1 = exp2_nonpositive_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(x + j + 8), vc, voff));
        _mm256_storeu_ps(x + j, e0);
        _mm256_storeu_ps(x + j + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    for (; j < valid; j += 8) { // the last 1-15 scores, masked
        __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(valid - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 e = exp2_nonpositive_avx2(_mm256_fmadd_ps(_mm256_maskload_ps(x + j, live), vc, voff));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(live));
        _mm256_maskstore_ps(x + j, live, e);
        s0 = _mm256_add_ps(s0, e);
    }
    s0 = _mm256_add_ps(s0, s1);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    for (j = valid; j < n; j++) x[j] = 0.0f;
    return _mm_cvtss_f32(q);
}
FLINT_T_AVX512 static float exp_row_avx512(float *x, long n, long valid, float scale) { return exp_row_body(x, n, valid, scale); }
FLINT_T_AVX2 static void softmax_row_avx2(float *x, long n, long valid, float scale) { softmax_row_body(x, n, valid, scale); }
FLINT_T_AVX512 static void softmax_row_avx512(float *x, long n, long valid, float scale) { softmax_row_body(x, n, valid, scale); }
#define FLINT_ISA_DISPATCH(isa, fn, ...)                                          \
    ((isa) == FLINT_ISA_AVX512 ? fn##_avx512(__VA_ARGS__)                         \
     : (isa) == FLINT_ISA_AVX2 ? fn##_avx2(__VA_ARGS__) : fn##_portable(__VA_ARGS__))
#else
#define FLINT_ISA_DISPATCH(isa, fn, ...) fn##_portable(__VA_ARGS__)
#endif

void flint_softmax_rows_scaled(int isa, float *x, long n, long valid, float scale) {
    isa = flint_resolve_isa(isa);
    FLINT_ISA_DISPATCH(isa, softmax_row, x, n, valid, scale);
}

// ---- packing ------------------------------------------------------------------------------
// K[Lkv][d] (row stride ld) -> panels [Lp/nr][d][nr]: key j at column j % nr of panel j / nr, keys
// Lkv..Lp zero.
static void pack_keys_portable(const float *k, long ld, long j0, long Lkv, long Lp, long d, long nr, float *kp) {
    for (long j = j0; j < Lp; j++) {
        float *dst = kp + (j / nr) * d * nr + j % nr;
        if (j < Lkv) {
            const float *kr = k + j * ld;
            for (long e = 0; e < d; e++) dst[e * nr] = kr[e];
        } else {
            for (long e = 0; e < d; e++) dst[e * nr] = 0.0f;
        }
    }
}
#if defined(__x86_64__) || defined(__i386__)
// 8 keys x 8 dims at a time through an 8x8 register transpose, rather than the scalar scatter above.
FLINT_T_AVX2 static void pack_keys_avx2(const float *k, long ld, long Lkv, long Lp, long d, long nr, float *kp) {
    long j = 0;
    for (; j + 8 <= Lkv; j += 8) {
        float *panel = kp + (j / nr) * d * nr + j % nr;
        for (long e = 0; e < d; e += 8) {
            __m256 r[8], t[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(k + (j + i) * ld + e);
            t[0] = _mm256_unpacklo_ps(r[0], r[1]); t[1] = _mm256_unpackhi_ps(r[0], r[1]);
            t[2] = _mm256_unpacklo_ps(r[2], r[3]); t[3] = _mm256_unpackhi_ps(r[2], r[3]);
            t[4] = _mm256_unpacklo_ps(r[4], r[5]); t[5] = _mm256_unpackhi_ps(r[4], r[5]);
            t[6] = _mm256_unpacklo_ps(r[6], r[7]); t[7] = _mm256_unpackhi_ps(r[6], r[7]);
            r[0] = _mm256_shuffle_ps(t[0], t[2], 0x44); r[1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);
            r[2] = _mm256_shuffle_ps(t[1], t[3], 0x44); r[3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
            r[4] = _mm256_shuffle_ps(t[4], t[6], 0x44); r[5] = _mm256_shuffle_ps(t[4], t[6], 0xEE);
            r[6] = _mm256_shuffle_ps(t[5], t[7], 0x44); r[7] = _mm256_shuffle_ps(t[5], t[7], 0xEE);
            float *dst = panel + e * nr;
            _mm256_storeu_ps(dst + 0 * nr, _mm256_permute2f128_ps(r[0], r[4], 0x20));
            _mm256_storeu_ps(dst + 1 * nr, _mm256_permute2f128_ps(r[1], r[5], 0x20));
            _mm256_storeu_ps(dst + 2 * nr, _mm256_permute2f128_ps(r[2], r[6], 0x20));
            _mm256_storeu_ps(dst + 3 * nr, _mm256_permute2f128_ps(r[3], r[7], 0x20));
            _mm256_storeu_ps(dst + 4 * nr, _mm256_permute2f128_ps(r[0], r[4], 0x31));
            _mm256_storeu_ps(dst + 5 * nr, _mm256_permute2f128_ps(r[1], r[5], 0x31));
            _mm256_storeu_ps(dst + 6 * nr, _mm256_permute2f128_ps(r[2], r[6], 0x31));
            _mm256_storeu_ps(dst + 7 * nr, _mm256_permute2f128_ps(r[3], r[7], 0x31));
        }
    }
    pack_keys_portable(k, ld, j, Lkv, Lp, d, nr, kp);
}
#endif
static void pack_keys(int isa, const float *k, long ld, long Lkv, long Lp, long d, long nr, float *kp) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= FLINT_ISA_AVX2 && d % 8 == 0 && nr % 8 == 0) { pack_keys_avx2(k, ld, Lkv, Lp, d, nr, kp); return; }
#endif
    (void)isa;
    pack_keys_portable(k, ld, 0, Lkv, Lp, d, nr, kp);
}

// V[Lkv][d] (row stride ld) -> panels [ceil(d/nr)][Lkv][nr]: head column e at column e % nr of panel
// e / nr, columns past d zero.
static void pack_values_portable(const float *v, long ld, long Lkv, long d, long nr, float *vp) {
    long dpanels = (d + nr - 1) / nr;
    for (long j = 0; j < Lkv; j++) {
        const float *vr = v + j * ld;
        for (long p = 0; p < dpanels; p++) {
            float *dst = vp + (p * Lkv + j) * nr;
            long cols = FLINT_MIN(nr, d - p * nr);
            memcpy(dst, vr + p * nr, (size_t)cols * sizeof(float));
            for (long e = cols; e < nr; e++) dst[e] = 0.0f;
        }
    }
}
#if defined(__x86_64__) || defined(__i386__)
// nr = 16 dividing d: two vector copies per row and panel, where memcpy of 64 bytes was a library call
// each (as long as the K pack at seq 384).
FLINT_T_AVX2 static void pack_values_avx2(const float *v, long ld, long Lkv, long d, float *vp) {
    for (long j = 0; j < Lkv; j++) {
        const float *vr = v + j * ld;
        for (long p = 0; p < d / 16; p++) {
            float *dst = vp + (p * Lkv + j) * 16;
            _mm256_storeu_ps(dst, _mm256_loadu_ps(vr + p * 16));
            _mm256_storeu_ps(dst + 8, _mm256_loadu_ps(vr + p * 16 + 8));
        }
    }
}
#endif
static void pack_values(int isa, const float *v, long ld, long Lkv, long d, long nr, float *vp) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= FLINT_ISA_AVX2 && nr == 16 && d % 16 == 0) { pack_values_avx2(v, ld, Lkv, d, vp); return; }
#endif
    (void)isa;
    pack_values_portable(v, ld, Lkv, d, nr, vp);
}

// ---- fast path ----------------------------------------------------------------------------
static void attn_task(void *vctx, long t) {
    const attn_ctx *A = vctx;
    // find sequence b: taskStart[b] <= t < taskStart[b+1]
    long lo = 0, hi = A->batch;
    while (hi - lo > 1) { long mid = (lo + hi) / 2; if (A->taskStart[mid] <= t) lo = mid; else hi = mid; }
    long b = lo, local = t - A->taskStart[b];
    long L = A->lengths[b], s0 = A->starts[b];
    long qblocks = (L + QB - 1) / QB, perGroup = A->blocksPerGroup[b], groups = (qblocks + perGroup - 1) / perGroup;
    long h = local / groups, g = local % groups;
    long gq0 = g * perGroup * QB, gq1 = FLINT_MIN(L, gq0 + perGroup * QB);
    if (gq0 >= gq1) return;
    long d = A->d, nr = A->nr, hidden = A->heads * d;
    // Position of the sequence's first query: keys before it are already in the cache.
    long offset = A->keyCache ? A->positions[s0] : 0;
    long Lkv = A->causal ? offset + gq1 : L;       // keys the group's last query can see
    long Lp = (Lkv + nr - 1) / nr * nr;            // padded key count (columns of S)
    long dpanels = (d + nr - 1) / nr;
    float *kp = flint__scratch((size_t)(Lp * d + dpanels * nr * Lkv + QB * Lp));
    float *vp = kp + Lp * d, *S = vp + dpanels * nr * Lkv;
    const float *base = A->qkv + s0 * A->rowStride + h * d;
    const float *kbase = base + hidden, *vbase = base + 2 * hidden;
    long kvStride = A->rowStride;
    if (A->keyCache) {
        long row0 = (long)A->slots[b] * A->maxContext;
        kbase = A->keyCache + row0 * hidden + h * d;
        vbase = A->valueCache + row0 * hidden + h * d;
        kvStride = hidden;
    }
    pack_keys(A->isa, kbase, kvStride, Lkv, Lp, d, nr, kp);
    pack_values(A->isa, vbase, kvStride, Lkv, d, nr, vp);
    float inv[QB];
    for (long q0 = gq0; q0 < gq1; q0 += QB) {
        long qn = FLINT_MIN((long)QB, gq1 - q0);
        long kn = A->causal ? offset + q0 + qn : L; // keys this block sees
        long kpanels = (kn + nr - 1) / nr;
        const float *q = base + q0 * A->rowStride;
        // S[qn][Lp] = Q K^T (columns kn..kpanels*nr are the zero keys: 0)
        for (long p = 0; p < kpanels; p++)
            flint__kern_rows(A->isa, (int)nr, qn, d, q, A->rowStride, kp + p * d * nr, nr, S + p * nr, Lp, 0, NULL, (int)nr);
        for (long i = 0; i < qn; i++) {
            long valid = A->causal ? offset + q0 + i + 1 : L;
            inv[i] = 1.0f / FLINT_ISA_DISPATCH(A->isa, exp_row, S + i * Lp, kn, valid, A->scale);
        }
        // out rows = E V (unnormalized), then scaled by 1/sum
        float *o = A->out + (s0 + q0) * A->outStride + h * d;
        for (long p = 0; p < dpanels; p++)
            flint__kern_rows(A->isa, (int)nr, qn, kn, S, Lp, vp + p * Lkv * nr, nr, o + p * nr, A->outStride, 0, NULL,
                             (int)FLINT_MIN(nr, d - p * nr));
        for (long i = 0; i < qn; i++) {
            float *orow = o + i * A->outStride, s = inv[i];
            for (long e = 0; e < d; e++) orow[e] *= s;
        }
    }
}

static void attention_run(flint_pool *pool, attn_ctx A) {
    long batch = A.batch, heads = A.heads;
    const int32_t *lengths = A.lengths;
    long small[2 * 65];
    long *ts = batch + 1 <= 65 ? small : malloc((size_t)(2 * (batch + 1)) * sizeof(long));
    if (!ts) abort();
    long *perGroup = ts + batch + 1;
    // Enough tasks for the pool's dynamic schedule (>= 4 per thread), but no more: each task packs
    // its head's K and V once.
    long threads = flint_pool_threads(pool), want = threads > 1 ? 4 * threads : 1;
    long perHead = (want + batch * heads - 1) / (batch * heads);
    ts[0] = 0;
    for (long b = 0; b < batch; b++) {
        long L = lengths[b] > 0 ? lengths[b] : 0;
        long qblocks = (L + QB - 1) / QB;
        long g = FLINT_MAX(1, FLINT_MIN(qblocks, perHead));
        perGroup[b] = FLINT_MAX(1, (qblocks + g - 1) / g);
        ts[b + 1] = ts[b] + heads * ((qblocks + perGroup[b] - 1) / perGroup[b]);
    }
    A.taskStart = ts;
    A.blocksPerGroup = perGroup;
    flint_pool_run(pool, ts[batch], attn_task, &A);
    if (ts != small) free(ts);
}

void flint_attention(flint_pool *pool, int isa, const float *qkv, long rowStride, const int32_t *starts,
                     const int32_t *lengths, long batch, long heads, long headDim, float scale, int causal,
                     float *out, long outStride) {
    if (batch <= 0 || heads <= 0 || headDim <= 0) return;
    isa = isa == FLINT_ISA_AUTO ? flint_gemm_isa() : flint_resolve_isa(isa);
    attn_ctx A = {.isa = isa, .nr = isa == FLINT_ISA_AVX512 ? 32 : 16, .causal = causal, .qkv = qkv, .out = out,
                  .rowStride = rowStride, .outStride = outStride, .heads = heads, .d = headDim, .scale = scale,
                  .starts = starts, .lengths = lengths, .batch = batch};
    attention_run(pool, A);
}

// K and V of each token into the caches at row slot * maxContext + position, one task per sequence.
static void kv_append_task(void *vctx, long b) {
    const attn_ctx *A = vctx;
    long hidden = A->heads * A->d;
    for (long i = 0; i < A->lengths[b]; i++) {
        long row = A->starts[b] + i;
        long dst = ((long)A->slots[b] * A->maxContext + A->positions[row]) * hidden;
        const float *k = A->qkv + row * A->rowStride + hidden;
        memcpy((float *)A->keyCache + dst, k, (size_t)hidden * sizeof(float));
        memcpy((float *)A->valueCache + dst, k + hidden, (size_t)hidden * sizeof(float));
    }
}

void flint_cached_attention(flint_pool *pool, int isa, const float *qkv, long rowStride,
                            const int32_t *starts, const int32_t *lengths, const int32_t *positions,
                            const int32_t *slots, long batch, long heads, long headDim, float scale,
                            float *keyCache, float *valueCache, long maxContext,
                            float *out, long outStride) {
    if (batch <= 0 || heads <= 0 || headDim <= 0) return;
    isa = isa == FLINT_ISA_AUTO ? flint_gemm_isa() : flint_resolve_isa(isa);
    attn_ctx A = {.isa = isa, .nr = isa == FLINT_ISA_AVX512 ? 32 : 16, .causal = 1, .qkv = qkv, .out = out,
                  .rowStride = rowStride, .outStride = outStride, .heads = heads, .d = headDim, .scale = scale,
                  .starts = starts, .lengths = lengths, .batch = batch, .keyCache = keyCache,
                  .valueCache = valueCache, .positions = positions, .slots = slots, .maxContext = maxContext};
    flint_pool_run(pool, batch, kv_append_task, &A);
    attention_run(pool, A);
}

// ---- plain reference ----------------------------------------------------------------------
void flint_attention_reference(const float *qkv, long rowStride, const int32_t *starts, const int32_t *lengths,
                               long batch, long heads, long headDim, float scale, int causal,
                               float *out, long outStride) {
    long d = headDim, hidden = heads * d;
    long maxL = 0;
    for (long b = 0; b < batch; b++) maxL = FLINT_MAX(maxL, (long)lengths[b]);
    double *p = malloc((size_t)(maxL > 0 ? maxL : 1) * sizeof(double));
    if (!p) abort();
    for (long b = 0; b < batch; b++) {
        const float *rows = qkv + (long)starts[b] * rowStride;
        for (long h = 0; h < heads; h++)
            for (long i = 0; i < lengths[b]; i++) {
                long nk = causal ? i + 1 : lengths[b];
                const float *q = rows + i * rowStride + h * d;
                double mx = -DBL_MAX, z = 0.0;
                for (long j = 0; j < nk; j++) {
                    const float *k = rows + j * rowStride + hidden + h * d;
                    double s = 0.0;
                    for (long e = 0; e < d; e++) s += (double)q[e] * (double)k[e];
                    p[j] = s * scale;
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (long j = 0; j < nk; j++) { p[j] = exp(p[j] - mx); z += p[j]; }
                float *o = out + ((long)starts[b] + i) * outStride + h * d;
                for (long e = 0; e < d; e++) {
                    double acc = 0.0;
                    for (long j = 0; j < nk; j++) acc += p[j] * (double)rows[j * rowStride + 2 * hidden + h * d + e];
                    o[e] = (float)(acc / z);
                }
            }
    }
    free(p);
}
