// Flint CUDA kernels: LayerNorm family.
//
// What:   embedding_layernorm_<T>: out[r] = LN(word[ids[r]] + position[positions[r]] + type[type_ids[r]])
//                                  (gamma null: the plain sum, no LN: GPT-2's embeddings)
//         layernorm_<T>:           out[r] = LN(x[r] + bias + residual[r]); sum[r] = x[r] + bias + residual[r]
//                                  when sum is given (GPT-2's pre-LN residual stream, one pass for both)
//         LN(v) = (v - mean) / sqrt(var + eps) * gamma + beta, per row, two passes in fp32
//         (mean first, then the biased variance of (v - mean); eps inside the sqrt, like PyTorch).
//         T = float (f32) / __half (f16) / __nv_bfloat16 (bf16): storage type only, all math in fp32.
// Layout: row-major. Embedding tables are [vocab|positions|types, cols] with row stride cols; out of
//         embedding_layernorm is [rows, cols] with stride cols. layernorm: x row r at x + r*ldx,
//         out and residual row r at out/residual + r*ldo (residual has out's layout; out may alias x or
//         residual: every element is read and written by the same thread). bias, gamma, beta: [cols].
//         sum has out's layout and may alias x or residual (written in the last pass, after the
//         element's last read), not out.
//         Nullable: type_ids (type row 0 is used when a type table is given), type (no token-type
//         embedding), residual, bias, sum; embedding_layernorm's gamma (then beta is ignored).
//         ids/positions/type_ids are int32 in device memory, not range-checked.
// Launch: grid (rows, 1, 1); block (256, 1, 1) (any multiple of 32 up to 1024 is correct);
//         no dynamic shared memory (128 bytes static). One block per row: each thread keeps up to 8 of
//         its row's values in registers (cols <= 8*blockDim.x stay in registers; longer rows are
//         recomputed from global memory in the later passes, still correct).
// Shared helpers (flint_load/store, warp and block sums, INFINITY): common.cuh, prepended.

#define FLINT_LN_CACHE 8

// Normalizes one row whose value at column c is src(c). Called by the whole block.
template <typename T, typename Src>
static __device__ __forceinline__ void flint_layernorm_row(const Src& src, const T* gamma, const T* beta, float eps,
                                                            int cols, T* out, T* sum, float* red) {
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    if (!gamma) {  // no normalization: store the row as it is
        for (int c = tid; c < cols; c += nt) flint_store(out, c, src(c));
        return;
    }
    float cache[FLINT_LN_CACHE];
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < FLINT_LN_CACHE; ++i) {
        const int c = tid + i * nt;
        cache[i] = c < cols ? src(c) : 0.0f;
        total += cache[i];
    }
    for (int c = tid + FLINT_LN_CACHE * nt; c < cols; c += nt) total += src(c);
    const float mean = flint_block_sum(total, red) / (float)cols;

    float sq = 0.0f;
#pragma unroll
    for (int i = 0; i < FLINT_LN_CACHE; ++i) {
        const int c = tid + i * nt;
        if (c < cols) {
            const float d = cache[i] - mean;
            sq += d * d;
        }
    }
    for (int c = tid + FLINT_LN_CACHE * nt; c < cols; c += nt) {
        const float d = src(c) - mean;
        sq += d * d;
    }
    const float var = flint_block_sum(sq, red) / (float)cols;
    const float rstd = rsqrtf(var + eps);

#pragma unroll
    for (int i = 0; i < FLINT_LN_CACHE; ++i) {
        const int c = tid + i * nt;
        if (c < cols) {
            if (sum) flint_store(sum, c, cache[i]);
            flint_store(out, c, (cache[i] - mean) * rstd * flint_load(gamma, c) + flint_load(beta, c));
        }
    }
    for (int c = tid + FLINT_LN_CACHE * nt; c < cols; c += nt) {
        const float v = src(c);
        if (sum) flint_store(sum, c, v);
        flint_store(out, c, (v - mean) * rstd * flint_load(gamma, c) + flint_load(beta, c));
    }
}

template <typename T>
struct FlintEmbeddingRow {
    const T* word;
    const T* position;
    const T* type;  // null: no token-type embedding
    __device__ __forceinline__ float operator()(int c) const {
        float v = flint_load(word, c) + flint_load(position, c);
        if (type) v += flint_load(type, c);
        return v;
    }
};

template <typename T>
struct FlintResidualRow {
    const T* x;
    const T* bias;      // nullable
    const T* residual;  // nullable
    __device__ __forceinline__ float operator()(int c) const {
        float v = flint_load(x, c);
        if (bias) v += flint_load(bias, c);
        if (residual) v += flint_load(residual, c);
        return v;
    }
};

template <typename T>
static __device__ __forceinline__ void flint_embedding_layernorm(const int* ids, const int* positions, const int* type_ids,
                                                                  const T* word, const T* position, const T* type,
                                                                  const T* gamma, const T* beta, float eps, int rows,
                                                                  int cols, T* out) {
    __shared__ float red[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    FlintEmbeddingRow<T> src;
    src.word = word + (long)flint_load_int(ids, row) * cols;
    src.position = position + (long)flint_load_int(positions, row) * cols;
    src.type = type ? type + (long)(type_ids ? flint_load_int(type_ids, row) : 0) * cols : (const T*)0;
    flint_layernorm_row(src, gamma, beta, eps, cols, out + (long)row * cols, (T*)0, red);
}

template <typename T>
static __device__ __forceinline__ void flint_layernorm(const T* x, const T* residual, const T* bias, const T* gamma,
                                                        const T* beta, float eps, int rows, int cols, int ldx, T* out,
                                                        int ldo, T* sum) {
    __shared__ float red[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    FlintResidualRow<T> src;
    src.x = x + (long)row * ldx;
    src.bias = bias;
    src.residual = residual ? residual + (long)row * ldo : (const T*)0;
    flint_layernorm_row(src, gamma, beta, eps, cols, out + (long)row * ldo, sum ? sum + (long)row * ldo : (T*)0, red);
}

#define FLINT_LAYERNORM_KERNELS(SUFFIX, T)                                                                          \
    extern "C" __global__ void embedding_layernorm_##SUFFIX(                                                        \
        const int* ids, const int* positions, const int* type_ids, const T* word, const T* position, const T* type, \
        const T* gamma, const T* beta, float eps, int rows, int cols, T* out) {                                     \
        flint_embedding_layernorm<T>(ids, positions, type_ids, word, position, type, gamma, beta, eps, rows, cols,  \
                                     out);                                                                          \
    }                                                                                                               \
    extern "C" __global__ void layernorm_##SUFFIX(const T* x, const T* residual, const T* bias, const T* gamma,     \
                                                  const T* beta, float eps, int rows, int cols, int ldx, T* out,    \
                                                  int ldo, T* sum) {                                                \
        flint_layernorm<T>(x, residual, bias, gamma, beta, eps, rows, cols, ldx, out, ldo, sum);                    \
    }

FLINT_LAYERNORM_KERNELS(f32, float)
FLINT_LAYERNORM_KERNELS(f16, __half)
FLINT_LAYERNORM_KERNELS(bf16, __nv_bfloat16)
