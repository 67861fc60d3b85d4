// Dynamic int8 GEMM with unsigned activations (schemes U8S7, U7S8, U7S7 of CFlintCPU.h): the AVX2
// path without VNNI. vpmaddubsw multiplies 32 u8 x s8 pairs and adds adjacent products into s16
// (saturating), twice the multiplies per instruction of vpmaddwd on s16; vpmaddwd with ones then
// widens the pair sums to s32. Saturation is ruled out by the value ranges, not by luck:
//   U8S7  u8 0..255 x s7 -63..63:  |pair| <= 32130
//   U7S8  u7 0..127 x s8 -127..127: |pair| <= 32258
//   U7S7  u7 x s7, two pairs summed in s16 (vpaddw) before one vpmaddwd: |sum| <= 32004
// Activations are quantized per row asymmetrically (q = round(a/s) + z in 0..Q), so the s32 sum
// S = sum q·w carries z·colsum(w), which the first K block's epilogue subtracts:
//   C[i, j] = s_a[i] · s_w[j] · (S[i, j] - z[i] · colsum[j]).
// The weights keep the int8 panel layout of gemm_lowp.c ([kpad/4][16][4]: one column's 4 k values
// per 32-bit lane), which is exactly what vpmaddubsw against a broadcast 4-byte group of A needs:
// the result lanes are the 16 columns in order, no shuffles.
#include "flint_internal.h"
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FLINT_X86 1
#include "tile_store_avx2.h"
#endif

#define NR 16

int flint__int8u_act_max(int scheme) { return scheme == FLINT_I8_U8S7 ? 255 : 127; }

// ---- activation quantization --------------------------------------------------------------
FLINT_INLINE void quantize_row_u_body(const float *a, long k, long kpad, float qmax, uint8_t *q, int32_t *zp,
                                      float *scale) {
    float lo = 0.0f, hi = 0.0f;
    for (long j = 0; j < k; j++) { lo = fminf(lo, a[j]); hi = fmaxf(hi, a[j]); }
    float range = hi - lo;
    if (!(range > 0.0f) || !isfinite(range)) { // all zero (or not finite: the scale carries it)
        *scale = isfinite(range) ? 0.0f : range;
        *zp = 0;
        for (long j = 0; j < kpad; j++) q[j] = 0;
        return;
    }
    float inv = qmax / range;
    float z = __builtin_roundevenf(-lo * inv);
    z = z > qmax ? qmax : z;
    *scale = range / qmax;
    *zp = (int32_t)z;
    for (long j = 0; j < k; j++) {
        float v = __builtin_roundevenf(a[j] * inv) + z;
        v = v > qmax ? qmax : (v < 0.0f ? 0.0f : v);
        q[j] = (uint8_t)v;
    }
    for (long j = k; j < kpad; j++) q[j] = (uint8_t)z; // the weights' padding is zero: any value works
}
static void quantize_row_u_portable(const float *a, long k, long kpad, float qmax, uint8_t *q, int32_t *zp, float *s) {
    quantize_row_u_body(a, k, kpad, qmax, q, zp, s);
}
#ifdef FLINT_X86
/// quantize_row_u_body written out: clang does not vectorize its fminf/fmaxf reduction, and a
/// scalar pass costs a quarter of an encoder GEMM's time. vcvtps2dq rounds half to even (the
/// default MXCSR mode), as __builtin_roundevenf; packus and min clamp to 0..qmax.
FLINT_T_AVX2 static void quantize_row_u_avx2(const float *a, long k, long kpad, float qmax, uint8_t *q, int32_t *zp,
                                             float *s) {
    __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_setzero_ps();
    long j = 0;
    for (; j + 8 <= k; j += 8) {
        __m256 x = _mm256_loadu_ps(a + j);
        vlo = _mm256_min_ps(vlo, x);
        vhi = _mm256_max_ps(vhi, x);
    }
    float lo8[8], hi8[8], lo = 0.0f, hi = 0.0f;
    _mm256_storeu_ps(lo8, vlo);
    _mm256_storeu_ps(hi8, vhi);
    for (int i = 0; i < 8; i++) { lo = fminf(lo, lo8[i]); hi = fmaxf(hi, hi8[i]); }
    for (long t = j; t < k; t++) { lo = fminf(lo, a[t]); hi = fmaxf(hi, a[t]); }
    float range = hi - lo;
    int nan_seen = 0;
    for (int i = 0; i < 8; i++) nan_seen |= lo8[i] != lo8[i] || hi8[i] != hi8[i]; // vminps drops NaNs one way
    if (nan_seen || !(range > 0.0f) || !isfinite(range)) { quantize_row_u_body(a, k, kpad, qmax, q, zp, s); return; }
    float inv = qmax / range;
    float z = __builtin_roundevenf(-lo * inv);
    z = z > qmax ? qmax : z;
    *s = range / qmax;
    *zp = (int32_t)z;
    __m256 vinv = _mm256_set1_ps(inv);
    __m256i vz = _mm256_set1_epi32((int32_t)z);
    __m128i vmax = _mm_set1_epi8((char)(uint8_t)qmax);
    for (j = 0; j + 16 <= k; j += 16) {
        __m256i i0 = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + j), vinv)), vz);
        __m256i i1 = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + j + 8), vinv)), vz);
        __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8); // 16 x s16 in order
        __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128((__m128i *)(q + j), _mm_min_epu8(b, vmax));
    }
    for (; j < k; j++) {
        float v = __builtin_roundevenf(a[j] * inv) + z;
        v = v > qmax ? qmax : (v < 0.0f ? 0.0f : v);
        q[j] = (uint8_t)v;
    }
    for (; j < kpad; j++) q[j] = (uint8_t)z;
}
#endif

void flint__int8u_quantize_row(int isa, int scheme, const float *a, long k, long kpad, uint8_t *q, int32_t *zp,
                               float *scale) {
    float qmax = (float)flint__int8u_act_max(scheme);
#ifdef FLINT_X86
    if (isa >= FLINT_ISA_AVX2) { quantize_row_u_avx2(a, k, kpad, qmax, q, zp, scale); return; }
#endif
    (void)isa;
    quantize_row_u_portable(a, k, kpad, qmax, q, zp, scale);
}

// ---- portable micro-kernel (the reference of the same integer arithmetic) ---------------------
static void kint8u_portable(long m, long kc, const uint8_t *aq, long ldq, const int32_t *zp, const float *as,
                            const int8_t *b, const float *ws, float *c, long ldc, int accum, const float *bias, int ncols) {
    for (long i = 0; i < m; i++)
        for (int j = 0; j < ncols; j++) {
            int32_t s = 0;
            for (long kk = 0; kk < kc; kk++) s += ((int32_t)aq[i * ldq + kk] - zp[i]) * b[(kk / 4) * 64 + j * 4 + kk % 4];
            float x = (float)s * (as[i] * ws[j]);
            if (accum) x += c[i * ldc + j];
            if (bias) x += bias[j];
            c[i * ldc + j] = x;
        }
}

#ifdef FLINT_X86
// ---- AVX2 micro-kernel: MR rows x 16 columns, 2 ymm s32 accumulators per row ----------------
#define MR_U 4 // 2..4 rows measured alike (the vpmaddubsw/vpmaddwd issue rate bounds it, not loads)

FLINT_INLINE FLINT_T_AVX2 __m256i bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/// PAIRS: two k groups' vpmaddubsw results summed in s16 before the widening vpmaddwd (U7S7 only).
FLINT_INLINE FLINT_T_AVX2 void kint8u_body(const int MR, const int PAIRS, long kq, const uint8_t *aq, long ldq,
                                           const int32_t *zp, const float *as, const int8_t *b, const int32_t *colsum,
                                           const float *ws, float *c, long ldc, int accum, const float *bias, int ncols) {
    __m256i acc0[MR_U], acc1[MR_U];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) { acc0[i] = _mm256_setzero_si256(); acc1[i] = _mm256_setzero_si256(); }
    const __m256i ones = _mm256_set1_epi16(1);
    long q = 0;
    if (PAIRS) {
        for (; q + 2 <= kq; q += 2) {
            const int8_t *bq = b + q * 64;
            __m256i b0 = _mm256_loadu_si256((const __m256i *)bq), b1 = _mm256_loadu_si256((const __m256i *)(bq + 32));
            __m256i b2 = _mm256_loadu_si256((const __m256i *)(bq + 64)), b3 = _mm256_loadu_si256((const __m256i *)(bq + 96));
            #pragma clang loop unroll(full)
            for (int i = 0; i < MR; i++) {
                __m256i a0 = bcast4(aq + i * ldq + 4 * q), a1 = bcast4(aq + i * ldq + 4 * q + 4);
                __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, b0), _mm256_maddubs_epi16(a1, b2));
                __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(a0, b1), _mm256_maddubs_epi16(a1, b3));
                acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(s0, ones));
                acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(s1, ones));
            }
        }
    }
    for (; q < kq; q++) {
        const int8_t *bq = b + q * 64;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)bq), b1 = _mm256_loadu_si256((const __m256i *)(bq + 32));
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m256i a0 = bcast4(aq + i * ldq + 4 * q);
            acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a0, b0), ones));
            acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a0, b1), ones));
        }
    }
    __m256 w0 = _mm256_loadu_ps(ws), w1 = _mm256_loadu_ps(ws + 8);
    __m256 r0[MR_U], r1[MR_U];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) {
        if (colsum) { // once per tile (the first K block): take out the zero point's share
            __m256i z = _mm256_set1_epi32(zp[i]);
            acc0[i] = _mm256_sub_epi32(acc0[i], _mm256_mullo_epi32(z, _mm256_loadu_si256((const __m256i *)colsum)));
            acc1[i] = _mm256_sub_epi32(acc1[i], _mm256_mullo_epi32(z, _mm256_loadu_si256((const __m256i *)(colsum + 8))));
        }
        __m256 sa = _mm256_set1_ps(as[i]);
        r0[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(acc0[i]), _mm256_mul_ps(sa, w0));
        r1[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(acc1[i]), _mm256_mul_ps(sa, w1));
    }
    flint_store_tile16(MR, r0, r1, c, ldc, accum, bias, ncols);
}

FLINT_T_AVX2 static void kint8u_avx2(int mr, int pairs, long kq, const uint8_t *aq, long ldq, const int32_t *zp,
                                     const float *as, const int8_t *b, const int32_t *colsum, const float *ws, float *c,
                                     long ldc, int accum, const float *bias, int ncols) {
#define KU(R) case R: \
    if (pairs) kint8u_body(R, 1, kq, aq, ldq, zp, as, b, colsum, ws, c, ldc, accum, bias, ncols); \
    else kint8u_body(R, 0, kq, aq, ldq, zp, as, b, colsum, ws, c, ldc, accum, bias, ncols); \
    break;
    switch (mr) { KU(1) KU(2) KU(3) KU(4) default: break; }
#undef KU
}
#endif

long flint__int8u_mr(int isa) { return isa >= FLINT_ISA_AVX2 ? MR_U : 1; }

void flint__int8u_tile(const flint_lowp *L, int isa, long m0, long m1, long p, long k0, long kc, int accum,
                       const float *bias, int ncols, float *c, long ldc) {
    long m = m1 - m0;
    const int8_t *b = (const int8_t *)L->packed + ((size_t)p * L->kpad + k0) * NR;
    const float *ws = flint__lowp_panel_scales(L, p);
    const uint8_t *aq = L->aq8 + m0 * L->kpad + k0;
    const int32_t *zp = L->azp + m0;
    const float *as = L->ascale + m0;
#ifdef FLINT_X86
    if (isa >= FLINT_ISA_AVX2) {
        long kq = (kc + 3) / 4; // a short last block reads the zero padding of W
        const int32_t *colsum = k0 == 0 ? L->colsum + p * NR : NULL;
        int pairs = L->scheme == FLINT_I8_U7S7;
        for (long i = 0; i < m; i += MR_U)
            kint8u_avx2((int)FLINT_MIN(MR_U, m - i), pairs, kq, aq + i * L->kpad, L->kpad, zp + i, as + i, b, colsum, ws,
                        c + i * ldc, ldc, accum, bias, ncols);
        return;
    }
#endif
    kint8u_portable(m, kc, aq, L->kpad, zp, as, b, ws, c, ldc, accum, bias, ncols);
}
