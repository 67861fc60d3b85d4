// CFlintCPU: fp32 CPU kernels for Flint (GEMM with packed weights, fused attention,
// row kernels) plus a persistent thread pool. Every kernel has a portable C path and
// AVX2+FMA / AVX-512 paths chosen at run time with __builtin_cpu_supports; no global
// compiler flags are needed (ISAs are enabled per function with __attribute__((target))).
//
// ISA codes used by every `isa` argument: 0 = best available, 1 = portable C,
// 2 = AVX2+FMA, 3 = AVX-512 (F/VL/BW/DQ). A request above what the CPU supports is
// lowered to the best supported level.
#ifndef CFLINTCPU_H
#define CFLINTCPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { FLINT_ISA_AUTO = 0, FLINT_ISA_PORTABLE = 1, FLINT_ISA_AVX2 = 2, FLINT_ISA_AVX512 = 3 };
enum { FLINT_ACT_NONE = 0, FLINT_ACT_GELU = 1, FLINT_ACT_GELU_TANH = 2, FLINT_ACT_TANH = 3, FLINT_ACT_RELU = 4 };

/// Best ISA level of this CPU (1, 2 or 3).
int flint_cpu_isa(void);
/// `requested` (0 = auto) lowered to what the CPU supports.
int flint_resolve_isa(int requested);
/// Number of CPUs this process may run on (sched_getaffinity).
int flint_cpu_count(void);

// ---- thread pool --------------------------------------------------------------------
typedef struct flint_pool flint_pool;
typedef void (*flint_task_fn)(void *ctx, long index);
/// threads = total threads including the caller (<= 0: flint_cpu_count()).
flint_pool *flint_pool_create(int threads);
void flint_pool_destroy(flint_pool *pool);
int flint_pool_threads(const flint_pool *pool);
/// No job follows soon: workers spinning for the next one go to sleep now (the next job wakes them).
void flint_pool_park(flint_pool *pool);
/// Runs fn(ctx, i) for i in 0..<count on the workers and the caller; returns when all are done.
/// Concurrent or nested calls on a busy pool run serially on the calling thread. pool may be NULL.
void flint_pool_run(flint_pool *pool, long count, flint_task_fn fn, void *ctx);

// ---- packed weights + GEMM ----------------------------------------------------------
/// ISA the GEMM and attention use when asked for 0 (auto): on AVX-512 CPUs the faster of the
/// AVX-512 and AVX2 kernels, timed once on first use (env FLINT_GEMM_ISA=avx2|avx512|portable
/// overrides).
int flint_gemm_isa(void);
/// Panel width used by the packed layout for an ISA (portable packs like the best ISA).
int flint_pack_nr(int isa);
/// Floats needed by flint_pack_weight for a [n, k] weight.
size_t flint_pack_floats(int nr, long n, long k);
/// Packs W[n, k] (row-major, ldw >= k) into ceil(n/nr) panels of [k][nr] (zero padded).
void flint_pack_weight(const float *w, long n, long k, long ldw, int nr, float *dst);

/// C[m, n] = act(A[m, k] · W^T + bias), W packed by flint_pack_weight with panel width nr.
void flint_linear(flint_pool *pool, int isa, const float *a, long m, long lda,
                  const float *packed, int nr, long n, long k,
                  const float *bias, int act, float *c, long ldc);

/// Plain reference: C = act(A · W^T + bias) from the unpacked W[n, k] (double accumulation).
void flint_linear_reference(const float *a, long m, long lda, const float *w, long n, long k,
                            long ldw, const float *bias, int act, float *c, long ldc);

// ---- low-precision weights (gemm_lowp.c) ------------------------------------------------
/// Weight formats of flint_pack_weight_lowp: bf16 (round to nearest even), int8 (symmetric, one
/// scale per output channel: scale = max|w|/127), or int8 for the dynamic GEMM (FLINT_W_INT8_DYN:
/// the same layout plus column sums and the scheme it was packed for, see flint_int8_dynamic_scheme), or
/// grouped int8 (FLINT_W_INT8_G64: the int8 layout with one scale per FLINT_I8_GROUP consecutive k per output
/// channel, scale = max|group|/127; a last partial group when k % 64 != 0). flint_linear_lowp runs grouped weights
/// on A as given (weight-only) for up to 4 rows, from 128 rows, and without AVX2; else on A quantized to int16 per
/// row, whatever the mode passed (flint_grouped_int8_activations).
enum { FLINT_W_F32 = 0, FLINT_W_BF16 = 1, FLINT_W_INT8 = 2, FLINT_W_INT8_DYN = 3, FLINT_W_INT8_G64 = 4 };
/// k per scale of FLINT_W_INT8_G64.
enum { FLINT_I8_GROUP = 64 };
/// Arithmetic of a dynamic int8 GEMM, fixed when the weight is packed: activations x weights.
///  - S8S8: activations symmetric per row (-127..127), 8-bit weights; vpmaddwd / vpdpwssd.
///  - U8S7: activations asymmetric per row (0..255, a zero point), 7-bit weights (-63..63);
///    vpmaddubsw pair sums cannot saturate (2 * 255 * 63 < 32768).
///  - U7S8: activations asymmetric 0..127, 8-bit weights; vpmaddubsw (2 * 127 * 127 < 32768).
///  - U7S7: activations 0..127, 7-bit weights; two vpmaddubsw summed in 16 bits (4 * 127 * 63 < 32768)
///    before one vpmaddwd.
enum { FLINT_I8_S8S8 = 0, FLINT_I8_U8S7 = 1, FLINT_I8_U7S8 = 2, FLINT_I8_U7S7 = 3 };
/// How an int8 GEMM treats A: quantized per row at run time (s32 accumulation), or kept f32
/// (weight-only: the int8 weights are widened inside the kernel; for memory-bound GEMVs).
enum { FLINT_INT8_DYNAMIC = 0, FLINT_INT8_WEIGHT_ONLY = 1 };
/// Bytes flint_pack_weight_lowp writes for a [n, k] weight (panels of 16 columns).
size_t flint_pack_lowp_bytes(int format, long n, long k);
/// Floats of scales a `format` weight of [n, k] has: 0 (bf16), ceil(n/16)*16 (int8, one per output channel), or
/// ceil(n/16)*16 * ceil(k/64) (FLINT_W_INT8_G64, laid out [panel][group][16]).
size_t flint_pack_lowp_scale_count(int format, long n, long k);
/// Packs W[n, k] (row stride ldw) as `format`; int8 also writes its flint_pack_lowp_scale_count scales (padding 0).
void flint_pack_weight_lowp(int format, const float *w, long n, long k, long ldw, void *dst, float *scales);
/// flint_pack_weight_lowp(FLINT_W_INT8_DYN, ...) with the scheme given (FLINT_I8_*) instead of the
/// CPU's default; any scheme runs on any ISA (the portable kernel does the same integer arithmetic).
void flint_pack_weight_int8_dynamic(int scheme, const float *w, long n, long k, long ldw, void *dst, float *scales);
/// The weights a packed low-precision layout stands for, as W[n, k] f32 (for reference checks).
void flint_unpack_weight_lowp(int format, const void *packed, const float *scales, long n, long k, float *w);
/// C[m, n] = act(A[m, k] · Ŵ^T + bias) with Ŵ the weights of flint_pack_weight_lowp (scales: int8's);
/// int8 with FLINT_INT8_DYNAMIC multiplies A quantized by flint_quantize_rows_int8's rule; FLINT_W_INT8_G64 see above.
void flint_linear_lowp(flint_pool *pool, int isa, int format, int mode, const float *a, long m, long lda,
                       const void *packed, const float *scales, long n, long k, const float *bias, int act,
                       float *c, long ldc);
/// The dynamic-int8 micro-kernel this CPU runs for the default scheme: S8S8 "avx512vnni" or "avxvnni"
/// (vpdpwssd) when the CPU has it, else "avx2" (vpmaddwd + vpaddd; the sums are bit-identical;
/// env FLINT_INT8_VNNI=0 keeps it); the unsigned schemes "avx2-u8s7", "avx2-u7s8", "avx2-u7s7"
/// (vpmaddubsw); "portable" without AVX2.
const char *flint_int8_kernel_name(void);
/// The scheme (FLINT_I8_*) a FLINT_W_INT8_DYN weight of [n, k] was packed for.
int flint_int8_dynamic_scheme(const void *packed, long n, long k);
/// The scheme flint_pack_weight_lowp(FLINT_W_INT8_DYN, ...) picks on this CPU: S8S8 with VNNI (or
/// without AVX2), U7S7 on AVX2; env FLINT_INT8_SCHEME=s8s8|u8s7|u7s8|u7s7 overrides it.
int flint_int8_default_scheme(void);
/// A[m, k] as the dynamic int8 GEMM of `scheme` sees it (for reference checks): S8S8 per row
/// scale = max|a|/127, q = round-half-even(a/scale) in [-127, 127], out = q · scale; the unsigned
/// schemes per row lo = min(0, min a), hi = max(0, max a), scale = (hi - lo)/Q (Q = 255 or 127),
/// zero point z = round(-lo/scale), q = clamp(round(a/scale) + z, 0, Q), out = (q - z) · scale.
void flint_quantize_rows_int8(int scheme, const float *a, long m, long lda, long k, float *out);
/// A[m, k] as flint_linear_lowp multiplies it with grouped int8 weights on `isa`, as [m, k]: A itself, or for
/// 5-127 rows on AVX2 per row scale = max|a|/32767, q = round-half-even(a/scale) in [-32767, 32767], out = q · scale.
void flint_grouped_int8_activations(int isa, const float *a, long m, long lda, long k, float *out);

// ---- attention ------------------------------------------------------------------------
/// Packed variable-length multi-head attention. Sequence b is token rows
/// starts[b] ..< starts[b]+lengths[b]; each qkv row is [Q | K | V] (hidden = heads*headDim each),
/// row stride rowStride. out[row, h*headDim + e] = softmax(scale · q·K^T) · V per (sequence, head).
/// causal: query i sees keys j <= i (positions within its sequence).
void flint_attention(flint_pool *pool, int isa, const float *qkv, long rowStride,
                     const int32_t *starts, const int32_t *lengths, long batch,
                     long heads, long headDim, float scale, int causal,
                     float *out, long outStride);
/// The plain version of flint_attention (double accumulation, one query at a time), for tests.
void flint_attention_reference(const float *qkv, long rowStride, const int32_t *starts, const int32_t *lengths,
                               long batch, long heads, long headDim, float scale, int causal,
                               float *out, long outStride);

/// Causal attention through a KV cache (GPT-2). keyCache/valueCache: [slots * maxContext, hidden]
/// (hidden = heads*headDim), row slot*maxContext + position. First the K and V of every token of
/// the batch (qkv row = [Q | K | V], stride rowStride) are stored at their slot and position, then
/// query i of sequence b (position positions[starts[b]] + i) attends to keys 0 ... its position of
/// slot slots[b]: out[row, h*headDim + e] = softmax(scale · q·K^T) · V. Positions of a sequence's
/// tokens are consecutive; the caller checks slots and positions against the cache's size.
void flint_cached_attention(flint_pool *pool, int isa, const float *qkv, long rowStride,
                            const int32_t *starts, const int32_t *lengths, const int32_t *positions,
                            const int32_t *slots, long batch, long heads, long headDim, float scale,
                            float *keyCache, float *valueCache, long maxContext,
                            float *out, long outStride);

// ---- row kernels ----------------------------------------------------------------------
/// out[r] = LayerNorm(x[r] + residual[r]) * gamma + beta (biased variance, eps inside sqrt).
/// out may alias x or residual. residual may be NULL. Row strides: cols.
/// sum (NULL: not written; ignored without residual): also receives x[r] + residual[r] (the
/// pre-LN residual stream); it may alias x or residual, not out.
void flint_layernorm(flint_pool *pool, int isa, const float *x, const float *residual,
                     const float *gamma, const float *beta, float eps, long rows, long cols,
                     float *out, float *sum);
/// out[r] = LN(word[ids[r]] + position[positions[r]] + type[typeIds[r]]); type may be NULL
/// (no type embedding); typeIds NULL with a type table means type row 0; gamma NULL: no
/// LayerNorm, the plain sum (GPT-2).
void flint_embedding_layernorm(flint_pool *pool, int isa, const int32_t *ids,
                               const int32_t *positions, const int32_t *typeIds,
                               const float *word, const float *position, const float *type,
                               const float *gamma, const float *beta, float eps,
                               long rows, long cols, float *out);
/// x[i] = act(x[i]) elementwise (act: FLINT_ACT_*), in place.
void flint_activation(flint_pool *pool, int isa, float *x, long count, int act);
/// Softmax over each row of x[rows][cols] in place (max-subtracted).
void flint_softmax_rows(flint_pool *pool, int isa, float *x, long rows, long cols);
/// Vectorized erf (the one GELU uses), for tests: y[i] = erf(x[i]).
void flint_erf(int isa, const float *x, float *y, long count);
/// Vectorized exp, for tests.
void flint_exp(int isa, const float *x, float *y, long count);

#ifdef __cplusplus
}
#endif
#endif
