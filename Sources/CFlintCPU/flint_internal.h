// Internal helpers shared by the CFlintCPU sources: target attributes and branch-free scalar
// math (exp, erf, tanh, GELU) written so that clang vectorizes it in loops. The same generic
// body is compiled three times (portable / AVX2 / AVX-512) by inlining it into wrappers that
// carry __attribute__((target)), so one source gives every ISA path.
#ifndef FLINT_INTERNAL_H
#define FLINT_INTERNAL_H
#include "CFlintCPU.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define FLINT_INLINE static inline __attribute__((always_inline))
#define FLINT_T_AVX2 __attribute__((target("avx2,fma")))
#define FLINT_T_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))

#define FLINT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FLINT_MAX(a, b) ((a) > (b) ? (a) : (b))

FLINT_INLINE float flint_bits_to_float(int32_t i) { float f; memcpy(&f, &i, 4); return f; }

/// exp(x) (Cephes expf polynomial, ~1-2 ulp), clamped to [-87.3, 88.3]: no inf/denormals.
FLINT_INLINE float flint_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float t = x * 1.44269504088896341f + 12582912.0f; // round to nearest via magic number
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    float y = p * (r * r) + r + 1.0f;
    return y * flint_bits_to_float(((int32_t)n + 127) << 23);
}

/// erf(x): rational approximation x·P(x²)/Q(x²) on [-4, 4] (Eigen's generic_fast_erf_float),
/// erf(±4) = ±(1 - 1.5e-8) so clamping there keeps the absolute error ~1e-7.
FLINT_INLINE float flint_erff(float x) {
    x = x < -4.0f ? -4.0f : x;
    x = x > 4.0f ? 4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

/// tanh(x) = sign(x)·(1 - e)/(1 + e), e = exp(-2|x|); absolute error ~1e-7.
FLINT_INLINE float flint_tanhf(float x) {
    float ax = fabsf(x);
    float e = flint_expf(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    return copysignf(t, x);
}

/// HF "gelu": 0.5·x·(1 + erf(x/√2)).
FLINT_INLINE float flint_gelu(float x) { return 0.5f * x * (1.0f + flint_erff(x * 0.70710678118654752f)); }
/// HF "gelu_new" (GPT-2): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
FLINT_INLINE float flint_gelu_tanh(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + flint_tanhf(u));
}

// Per-ISA row activation used by the GEMM epilogue (defined in rowops.c).
void flint__act_portable(float *x, long n, int act);
void flint__act_avx2(float *x, long n, int act);
void flint__act_avx512(float *x, long n, int act);

/// Low-precision weights handed to the GEMM driver (gemm_lowp.c packs and runs them).
typedef struct {
    int format;            // FLINT_W_BF16 or FLINT_W_INT8
    int mode;              // int8: FLINT_INT8_DYNAMIC or FLINT_INT8_WEIGHT_ONLY
    const void *packed;    // panels of 16 columns (layouts in gemm_lowp.c)
    const float *wscale;   // int8: per output channel
    const int16_t *aq;     // int8 dynamic S8S8: A quantized per row, [m][kpad]
    const float *ascale;   // int8 dynamic: per row of A
    long k, kpad;
    int scheme;            // int8 dynamic: FLINT_I8_* (S8S8 for FLINT_W_INT8)
    const uint8_t *aq8;    // unsigned schemes: A quantized per row, [m][kpad], with zero points azp[m]
    const int32_t *azp;
    const int32_t *colsum; // unsigned schemes: per output column, sum over k of the int8 weights
} flint_lowp;

/// Weight scales per output column along k: one per FLINT_I8_GROUP inputs for grouped int8, one otherwise.
static inline long flint__lowp_scale_groups(int format, long k) {
    return format == FLINT_W_INT8_G64 ? (k + FLINT_I8_GROUP - 1) / FLINT_I8_GROUP : 1;
}

/// The scales of weight panel p (16 output columns), laid out [group][16] (per channel: one group).
static inline const float *flint__lowp_panel_scales(const flint_lowp *L, long p) {
    return L->wscale + (size_t)p * (size_t)flint__lowp_scale_groups(L->format, L->k) * 16;
}

/// Rows of A up to which flint__lowp_gemv streams the weights (beyond, the weights are reused enough for the tile
/// driver's blocking to pay).
#define FLINT_GEMV_MAX_M 4

/// The blocked, threaded GEMM driver of gemm.c (rows x panels tasks, K blocks of KC, bias and
/// activation on the last K block); lowp NULL runs the f32 micro-kernels on `packed`.
void flint__gemm_drive(flint_pool *pool, int isa, int nr, long mr, const flint_lowp *lowp, const float *a, long m,
                       long lda, const float *packed, long n, long k, const float *bias, int act, float *c, long ldc);
/// One tile of low-precision GEMM: C[m0..m1)[panel p] (+)= A · W^T over k0..k0+kc (+ bias).
void flint__lowp_tile(const flint_lowp *L, int isa, const float *a, long lda, long m0, long m1, long p, long k0,
                      long kc, int accum, const float *bias, int ncols, float *c, long ldc);

/// Few rows of A (decode steps) on bf16 or weight-only int8 weights, streamed panel by panel
/// (gemv_lowp.c): C[m, n] = act(A · W^T + bias). Returns 0, doing nothing, where it does not apply
/// (more rows, dynamic int8, no AVX2): the caller then runs the tile driver.
int flint__lowp_gemv(flint_pool *pool, int isa, const flint_lowp *L, const float *a, long m, long lda, long n,
                     const float *bias, int act, float *c, long ldc);

/// The unsigned-activation int8 GEMM (gemm_int8u.c): rows per micro-kernel call, one row's
/// quantization, one tile (as flint__lowp_tile, A taken from L->aq8).
long flint__int8u_mr(int isa);
int flint__int8u_act_max(int scheme);
void flint__int8u_quantize_row(int isa, int scheme, const float *a, long k, long kpad, uint8_t *q, int32_t *zp,
                               float *scale);
void flint__int8u_tile(const flint_lowp *L, int isa, long m0, long m1, long p, long k0, long kc, int accum,
                       const float *bias, int ncols, float *c, long ldc);

/// Thread-local scratch of at least `floats` floats, 64-byte aligned, reused across calls
/// (freed at thread exit).
float *flint__scratch(size_t floats);
/// gemm.c's micro-kernel for `isa` over rows [0, m) of one B panel: C[m][0..ncols) (+)= A[m][kc] · B[kc][nr]
/// (+ bias); A row-major (stride lda), B rows of nr floats (stride ldb). accum = 0 overwrites C.
void flint__kern_rows(int isa, int nr, long m, long kc, const float *a, long lda, const float *b, long ldb,
                      float *c, long ldc, int accum, const float *bias, int ncols);
/// flint__kern_rows with each tile first prefetching the next tile's C rows (GEMM tiles: see gemm.c's kern_rows).
void flint__kern_rows_prefetch_c(int isa, int nr, long m, long kc, const float *a, long lda, const float *b, long ldb,
                                 float *c, long ldc, int accum, const float *bias, int ncols);

#endif
