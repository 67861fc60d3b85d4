// Row and elementwise kernels: LayerNorm (+ residual), embedding gather + LayerNorm,
// activations (GELU erf form, GELU tanh form, tanh), row softmax, and erf/exp test hooks.
// Each kernel is one generic C body (branch-free math from flint_internal.h, reductions
// marked reassociable so clang vectorizes them) compiled three times: portable, AVX2+FMA and
// AVX-512 wrappers, picked per call from the resolved ISA. Rows are split across the pool in
// chunks of >= 16 rows (or ~32K elements for elementwise ops).
#include "flint_internal.h"
#include <float.h>

#define FLINT_DISPATCH(isa, name, args)                                          \
    do {                                                                         \
        if ((isa) == FLINT_ISA_AVX512) name##_avx512 args;                       \
        else if ((isa) == FLINT_ISA_AVX2) name##_avx2 args;                      \
        else name##_portable args;                                               \
    } while (0)

// ---- activations ------------------------------------------------------------------------
FLINT_INLINE void act_body(float *x, long n, int act) {
    switch (act) {
    case FLINT_ACT_GELU: for (long i = 0; i < n; i++) x[i] = flint_gelu(x[i]); break;
    case FLINT_ACT_GELU_TANH: for (long i = 0; i < n; i++) x[i] = flint_gelu_tanh(x[i]); break;
    case FLINT_ACT_TANH: for (long i = 0; i < n; i++) x[i] = flint_tanhf(x[i]); break;
    case FLINT_ACT_RELU: for (long i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
    default: break;
    }
}
void flint__act_portable(float *x, long n, int act) { act_body(x, n, act); }
FLINT_T_AVX2 void flint__act_avx2(float *x, long n, int act) { act_body(x, n, act); }
FLINT_T_AVX512 void flint__act_avx512(float *x, long n, int act) { act_body(x, n, act); }

typedef struct { int isa, act; float *x; long n, chunk; } act_ctx;
static void act_task(void *v, long t) {
    const act_ctx *c = v;
    long i0 = t * c->chunk, n = FLINT_MIN(c->chunk, c->n - i0);
    if (c->isa == FLINT_ISA_AVX512) flint__act_avx512(c->x + i0, n, c->act);
    else if (c->isa == FLINT_ISA_AVX2) flint__act_avx2(c->x + i0, n, c->act);
    else flint__act_portable(c->x + i0, n, c->act);
}
void flint_activation(flint_pool *pool, int isa, float *x, long count, int act) {
    if (count <= 0 || act == FLINT_ACT_NONE) return;
    act_ctx c = {.isa = flint_resolve_isa(isa), .act = act, .x = x, .n = count, .chunk = 32768};
    flint_pool_run(pool, (count + c.chunk - 1) / c.chunk, act_task, &c);
}

FLINT_INLINE void erf_body(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = flint_erff(x[i]); }
FLINT_INLINE void exp_body(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = flint_expf(x[i]); }
static void erf_portable(const float *x, float *y, long n) { erf_body(x, y, n); }
FLINT_T_AVX2 static void erf_avx2(const float *x, float *y, long n) { erf_body(x, y, n); }
FLINT_T_AVX512 static void erf_avx512(const float *x, float *y, long n) { erf_body(x, y, n); }
static void exp_portable(const float *x, float *y, long n) { exp_body(x, y, n); }
FLINT_T_AVX2 static void exp_avx2(const float *x, float *y, long n) { exp_body(x, y, n); }
FLINT_T_AVX512 static void exp_avx512(const float *x, float *y, long n) { exp_body(x, y, n); }
void flint_erf(int isa, const float *x, float *y, long n) { isa = flint_resolve_isa(isa); FLINT_DISPATCH(isa, erf, (x, y, n)); }
void flint_exp(int isa, const float *x, float *y, long n) { isa = flint_resolve_isa(isa); FLINT_DISPATCH(isa, exp, (x, y, n)); }

// ---- LayerNorm --------------------------------------------------------------------------
// v = x + r (stored to out, which may alias x or r, and to sum when given, which may alias x or r
// but not out), two-pass mean / biased variance.
FLINT_INLINE void ln_row_body(const float *x, const float *r, const float *g, const float *b, float eps,
                              long n, float *out, float *sum) {
#pragma clang fp reassociate(on)
    float s = 0.0f;
    if (r && sum) { for (long j = 0; j < n; j++) { float v = x[j] + r[j]; out[j] = v; sum[j] = v; s += v; } }
    else if (r) { for (long j = 0; j < n; j++) { float v = x[j] + r[j]; out[j] = v; s += v; } }
    else { for (long j = 0; j < n; j++) { float v = x[j]; out[j] = v; s += v; } }
    float mean = s / (float)n;
    float q = 0.0f;
    for (long j = 0; j < n; j++) { float d = out[j] - mean; q += d * d; }
    float rstd = 1.0f / sqrtf(q / (float)n + eps);
    for (long j = 0; j < n; j++) out[j] = (out[j] - mean) * rstd * g[j] + b[j];
}
static void ln_row_portable(const float *x, const float *r, const float *g, const float *b, float eps, long n, float *out,
                            float *sum) {
    ln_row_body(x, r, g, b, eps, n, out, sum);
}
FLINT_T_AVX2 static void ln_row_avx2(const float *x, const float *r, const float *g, const float *b, float eps, long n, float *out,
                                     float *sum) {
    ln_row_body(x, r, g, b, eps, n, out, sum);
}
FLINT_T_AVX512 static void ln_row_avx512(const float *x, const float *r, const float *g, const float *b, float eps, long n, float *out,
                                         float *sum) {
    ln_row_body(x, r, g, b, eps, n, out, sum);
}

typedef struct {
    int isa;
    const float *x, *r, *g, *b;
    float eps;
    long rows, cols, chunk;
    float *out, *sum;
    const int32_t *ids, *pos, *types;
    const float *word, *position, *type;
} ln_ctx;

static long rows_chunk(long rows, long cols, int threads) {
    long chunk = FLINT_MAX(1L, 16384 / FLINT_MAX(1L, cols)); // >= ~64 KiB of work per task
    long per = (rows + threads - 1) / threads;
    return FLINT_MAX(1L, FLINT_MIN(chunk, per));
}

static void ln_task(void *v, long t) {
    const ln_ctx *c = v;
    long r0 = t * c->chunk, r1 = FLINT_MIN(c->rows, r0 + c->chunk);
    for (long i = r0; i < r1; i++) {
        const float *x = c->x + i * c->cols, *r = c->r ? c->r + i * c->cols : NULL;
        float *sum = c->sum ? c->sum + i * c->cols : NULL;
        FLINT_DISPATCH(c->isa, ln_row, (x, r, c->g, c->b, c->eps, c->cols, c->out + i * c->cols, sum));
    }
}

void flint_layernorm(flint_pool *pool, int isa, const float *x, const float *residual, const float *gamma,
                     const float *beta, float eps, long rows, long cols, float *out, float *sum) {
    if (rows <= 0 || cols <= 0) return;
    ln_ctx c = {.isa = flint_resolve_isa(isa), .x = x, .r = residual, .g = gamma, .b = beta, .eps = eps,
                .rows = rows, .cols = cols, .out = out, .sum = residual ? sum : NULL};
    c.chunk = rows_chunk(rows, cols, flint_pool_threads(pool));
    flint_pool_run(pool, (rows + c.chunk - 1) / c.chunk, ln_task, &c);
}

// ---- embeddings + LayerNorm (GPT-2: no LayerNorm, gamma NULL) ----------------------------
FLINT_INLINE void emb_row_body(const float *w, const float *p, const float *t, long n, float *out) {
    if (t) for (long j = 0; j < n; j++) out[j] = w[j] + p[j] + t[j];
    else for (long j = 0; j < n; j++) out[j] = w[j] + p[j];
}
static void emb_row_portable(const float *w, const float *p, const float *t, long n, float *out) { emb_row_body(w, p, t, n, out); }
FLINT_T_AVX2 static void emb_row_avx2(const float *w, const float *p, const float *t, long n, float *out) { emb_row_body(w, p, t, n, out); }
FLINT_T_AVX512 static void emb_row_avx512(const float *w, const float *p, const float *t, long n, float *out) {
    emb_row_body(w, p, t, n, out);
}

static void emb_task(void *v, long t) {
    const ln_ctx *c = v;
    long r0 = t * c->chunk, r1 = FLINT_MIN(c->rows, r0 + c->chunk);
    for (long i = r0; i < r1; i++) {
        float *o = c->out + i * c->cols;
        const float *w = c->word + (long)c->ids[i] * c->cols;
        const float *p = c->position + (long)c->pos[i] * c->cols;
        const float *ty = c->type ? c->type + (c->types ? (long)c->types[i] : 0L) * c->cols : NULL;
        FLINT_DISPATCH(c->isa, emb_row, (w, p, ty, c->cols, o));
        if (c->g) FLINT_DISPATCH(c->isa, ln_row, (o, NULL, c->g, c->b, c->eps, c->cols, o, NULL));
    }
}

void flint_embedding_layernorm(flint_pool *pool, int isa, const int32_t *ids, const int32_t *positions,
                               const int32_t *typeIds, const float *word, const float *position,
                               const float *type, const float *gamma, const float *beta, float eps,
                               long rows, long cols, float *out) {
    if (rows <= 0 || cols <= 0) return;
    ln_ctx c = {.isa = flint_resolve_isa(isa), .g = gamma, .b = beta, .eps = eps, .rows = rows, .cols = cols,
                .out = out, .ids = ids, .pos = positions, .types = typeIds, .word = word,
                .position = position, .type = type};
    c.chunk = rows_chunk(rows, cols, flint_pool_threads(pool));
    flint_pool_run(pool, (rows + c.chunk - 1) / c.chunk, emb_task, &c);
}

// ---- row softmax ------------------------------------------------------------------------
void flint_softmax_rows_scaled(int isa, float *x, long n, long valid, float scale); // attention.c

typedef struct { int isa; float *x; long rows, cols, chunk; } sm_ctx;
static void sm_task(void *v, long t) {
    const sm_ctx *c = v;
    long r0 = t * c->chunk, r1 = FLINT_MIN(c->rows, r0 + c->chunk);
    for (long i = r0; i < r1; i++) flint_softmax_rows_scaled(c->isa, c->x + i * c->cols, c->cols, c->cols, 1.0f);
}
void flint_softmax_rows(flint_pool *pool, int isa, float *x, long rows, long cols) {
    if (rows <= 0 || cols <= 0) return;
    sm_ctx c = {.isa = flint_resolve_isa(isa), .x = x, .rows = rows, .cols = cols};
    c.chunk = rows_chunk(rows, cols, flint_pool_threads(pool));
    flint_pool_run(pool, (rows + c.chunk - 1) / c.chunk, sm_task, &c);
}
