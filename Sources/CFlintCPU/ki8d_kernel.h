// The dynamic-int8 micro-kernel (MR rows x 16 columns, s32 sums of 16-bit products, dequantized
// in the epilogue), included by gemm_lowp.c once per ISA with these macros set:
//   KI8D_NAME    the dispatcher's name (ki8d_<isa>(mr, ...) for mr = 1..MR_I8)
//   KI8D_TARGET  its __attribute__((target(...)))
//   KI8D_DOT     acc + the pair sums of a·b: vpmaddwd + vpaddd (AVX2) or vpdpwssd (VNNI), bit-identical.
#define KI8D_CAT2(a, b) a##b
#define KI8D_CAT(a, b) KI8D_CAT2(a, b)
#define KI8D_BODY KI8D_CAT(KI8D_NAME, _body)

FLINT_INLINE KI8D_TARGET void KI8D_BODY(const int MR, long kq, const int16_t *aq, long ldq, const float *as, const int8_t *b,
                                        const float *ws, float *c, long ldc, int accum, const float *bias, int ncols) {
    __m256i acc[MR_I8][4];
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
        for (int g = 0; g < 4; g++) acc[i][g] = _mm256_setzero_si256();
    for (long q = 0; q < kq; q++) {
        __m256i av[MR_I8];
        #pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            int64_t quad;
            memcpy(&quad, aq + i * ldq + 4 * q, 8);
            av[i] = _mm256_set1_epi64x(quad);
        }
        const int8_t *bq = b + q * 64;
        #pragma clang loop unroll(full)
        for (int g = 0; g < 4; g++) {
            __m256i bg = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(bq + 16 * g)));
            #pragma clang loop unroll(full)
            for (int i = 0; i < MR; i++) acc[i][g] = KI8D_DOT(acc[i][g], av[i], bg);
        }
    }
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

KI8D_TARGET static void KI8D_NAME(int mr, long kq, const int16_t *aq, long ldq, const float *as, const int8_t *b,
                                  const float *ws, float *c, long ldc, int accum, const float *bias, int ncols) {
#define KD(R) case R: KI8D_BODY(R, kq, aq, ldq, as, b, ws, c, ldc, accum, bias, ncols); break;
    switch (mr) { KD(1) KD(2) KD(3) default: break; }
#undef KD
}

#undef KI8D_BODY
#undef KI8D_CAT
#undef KI8D_CAT2
#undef KI8D_NAME
#undef KI8D_TARGET
#undef KI8D_DOT
