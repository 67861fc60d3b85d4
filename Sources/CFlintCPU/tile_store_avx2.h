// The AVX2 micro-kernels' shared epilogue (gemm.c's f32 kernel, gemm_lowp.c's bf16/int8 kernels):
// a tile of MR rows x 16 columns held as two ymm per row, bias added, optionally accumulated into C,
// stored with masks when the tile has fewer than 16 valid columns. Include after <immintrin.h>.
#ifndef FLINT_TILE_STORE_AVX2_H
#define FLINT_TILE_STORE_AVX2_H

/// Lanes 0..n-1 set (n may be <= 0 or >= 8).
FLINT_INLINE FLINT_T_AVX2 __m256i flint_mask8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// C rows (+)= r0|r1 (+ bias) for the tile's ncols valid columns.
FLINT_INLINE FLINT_T_AVX2 void flint_store_tile16(const int MR, const __m256 *r0, const __m256 *r1, float *c, long ldc,
                                                  int accum, const float *bias, int ncols) {
    __m256i m0 = flint_mask8(ncols), m1 = flint_mask8(ncols - 8);
    __m256 bv0 = _mm256_setzero_ps(), bv1 = _mm256_setzero_ps();
    if (bias) { bv0 = _mm256_maskload_ps(bias, m0); bv1 = _mm256_maskload_ps(bias + 8, m1); }
    #pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) {
        float *cr = c + i * ldc;
        __m256 x0 = _mm256_add_ps(r0[i], bv0), x1 = _mm256_add_ps(r1[i], bv1);
        if (accum) {
            x0 = _mm256_add_ps(x0, _mm256_maskload_ps(cr, m0));
            x1 = _mm256_add_ps(x1, _mm256_maskload_ps(cr + 8, m1));
        }
        if (ncols >= 16) { _mm256_storeu_ps(cr, x0); _mm256_storeu_ps(cr + 8, x1); }
        else { _mm256_maskstore_ps(cr, m0, x0); _mm256_maskstore_ps(cr + 8, m1, x1); }
    }
}

#endif
