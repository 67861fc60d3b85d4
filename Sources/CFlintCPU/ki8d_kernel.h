// The dynamic-int8 micro-kernels (MR rows x 16 columns, s32 sums of 16-bit products), included by gemm_lowp.c
// once per ISA with these macros set (pf, when not NULL: the weights of the task's next tile, prefetched one 64-byte
// line per k quad, so that the first row group's pass also brings the next panel in from L2 / memory):
//   KI8D_NAME    the dispatchers' name: KI8D_NAME(mr, ...) for per-channel weights (dequantized in the epilogue)
//                and KI8D_NAME##_grouped(mr, ...) for grouped weights (FLINT_W_INT8_G64 with int16 activations:
//                the s32 sums of each 64-k group are scaled by the group's weight scales into f32 accumulators)
//   KI8D_TARGET  its __attribute__((target(...)))
//   KI8D_DOT     acc + the pair sums of a·b: vpmaddwd + vpaddd (AVX2) or vpdpwssd (VNNI), bit-identical.
#define KI8D_CAT2(a, b) a##b
#define KI8D_CAT(a, b) KI8D_CAT2(a, b)
#define KI8D_BODY KI8D_CAT(KI8D_NAME, _body)
#define KI8G_BODY KI8D_CAT(KI8D_NAME, _grouped_body)
#define KI8G_NAME KI8D_CAT(KI8D_NAME, _grouped)
#define KI8D_QUADS KI8D_CAT(KI8D_NAME, _quads)

/// acc[i][g] += the pair sums of k quads [q, end) of A's rows i (int16, 4 per quad) and the panel's 4-column group g.
FLINT_INLINE KI8D_TARGET void KI8D_QUADS(const int MR, __m256i acc[MR_I8][4], long q, long end, const int16_t *aq, long ldq,
                                         const int8_t *b, const int8_t *pf) {
    for (; q < end; q++) {
        __m256i av[MR_I8];
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            int64_t quad;
            memcpy(&quad, aq + i * ldq + 4 * q, 8);
            av[i] = _mm256_set1_epi64x(quad);
        }
        if (pf) _mm_prefetch((const char *)(pf + q * 64), _MM_HINT_T0);
        const int8_t *bq = b + q * 64;
        #pragma clang loop unroll(full)
        for (int g = 0; g < 4; g++) {
            __m256i bg = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(bq + 16 * g)));
            #pragma clang loop unroll(full)
            for (int i = 0; i < MR; i++) acc[i][g] = KI8D_DOT(acc[i][g], av[i], bg);
        }
    }
}

FLINT_INLINE KI8D_TARGET void KI8D_BODY(const int MR, long kq, const int16_t *aq, long ldq, const float *as, const int8_t *b,
                                        const int8_t *pf, const float *ws, float *c, long ldc, int accum, const float *bias,
                                        int ncols) {
    __m256i acc[MR_I8][4];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
        for (int g = 0; g < 4; g++) acc[i][g] = _mm256_setzero_si256();
    KI8D_QUADS(MR, acc, 0, kq, aq, ldq, b, pf);
    __m256 w0 = _mm256_loadu_ps(ws), w1 = _mm256_loadu_ps(ws + 8);
    __m256 r0[MR_I8], r1[MR_I8];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) {
        __m256 sa = _mm256_set1_ps(as[i]);
        r0[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(pairs_to_columns(acc[i][0], acc[i][1])), _mm256_mul_ps(sa, w0));
        r1[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(pairs_to_columns(acc[i][2], acc[i][3])), _mm256_mul_ps(sa, w1));
    }
    flint_store_tile16(MR, r0, r1, c, ldc, accum, bias, ncols);
}

/// Grouped weights: q0 is the tile's first k quad (k0 / 4, a multiple of 16: K blocks start on group boundaries),
/// ws the panel's scales [group][16]. With |a| <= 32767 and |w| <= 127 a group's s32 sum (32 pair sums) is exact.
FLINT_INLINE KI8D_TARGET void KI8G_BODY(const int MR, long kq, long q0, const int16_t *aq, long ldq, const float *as,
                                        const int8_t *b, const int8_t *pf, const float *ws, float *c, long ldc, int accum,
                                        const float *bias, int ncols) {
    enum { GROUP_QUADS = FLINT_I8_GROUP / 4 };
    __m256 r0[MR_I8], r1[MR_I8];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) { r0[i] = _mm256_setzero_ps(); r1[i] = _mm256_setzero_ps(); }
    for (long q = 0; q < kq;) {
        long group = (q0 + q) / GROUP_QUADS, end = FLINT_MIN(kq, (group + 1) * GROUP_QUADS - q0);
        __m256i acc[MR_I8][4];
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++)
            for (int g = 0; g < 4; g++) acc[i][g] = _mm256_setzero_si256();
        KI8D_QUADS(MR, acc, q, end, aq, ldq, b, pf);
        q = end;
        __m256 w0 = _mm256_loadu_ps(ws + group * 16), w1 = _mm256_loadu_ps(ws + group * 16 + 8);
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            r0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pairs_to_columns(acc[i][0], acc[i][1])), w0, r0[i]);
            r1[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pairs_to_columns(acc[i][2], acc[i][3])), w1, r1[i]);
        }
    }
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) {
        __m256 sa = _mm256_set1_ps(as[i]);
        r0[i] = _mm256_mul_ps(r0[i], sa);
        r1[i] = _mm256_mul_ps(r1[i], sa);
    }
    flint_store_tile16(MR, r0, r1, c, ldc, accum, bias, ncols);
}

KI8D_TARGET static void KI8G_NAME(int mr, long kq, long q0, const int16_t *aq, long ldq, const float *as, const int8_t *b,
                                  const int8_t *pf, const float *ws, float *c, long ldc, int accum, const float *bias, int ncols) {
#define KG(R) case R: KI8G_BODY(R, kq, q0, aq, ldq, as, b, pf, ws, c, ldc, accum, bias, ncols); break;
    switch (mr) { KG(1) KG(2) KG(3) default: break; }
#undef KG
}

KI8D_TARGET static void KI8D_NAME(int mr, long kq, const int16_t *aq, long ldq, const float *as, const int8_t *b,
                                  const int8_t *pf, const float *ws, float *c, long ldc, int accum, const float *bias, int ncols) {
#define KD(R) case R: KI8D_BODY(R, kq, aq, ldq, as, b, pf, ws, c, ldc, accum, bias, ncols); break;
    switch (mr) { KD(1) KD(2) KD(3) default: break; }
#undef KD
}

#undef KI8D_BODY
#undef KI8G_BODY
#undef KI8G_NAME
#undef KI8D_QUADS
#undef KI8D_CAT
#undef KI8D_CAT2
#undef KI8D_NAME
#undef KI8D_TARGET
#undef KI8D_DOT
