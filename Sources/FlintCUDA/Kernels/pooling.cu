// Flint CUDA kernels: sequence pooling and L2 normalization (sentence embeddings).
//
// What:   first_token_<T>:  out[s, c] = x[starts[s], c]                       ([CLS] pooling)
//         last_token_<T>:   out[s, c] = x[starts[s] + lengths[s] - 1, c]      (a decoder's next-token row;
//                           sequences of length 0 are skipped)
//         mean_pool_<T>:    out[s, c] = mean of x[starts[s] + i, c], i < lengths[s]   (0 if length is 0)
//         max_pool_<T>:     out[s, c] = max  of x[starts[s] + i, c], i < lengths[s]   (0 if length is 0)
//         l2_normalize_<T>: x[r, c] = x[r, c] / max(||x[r]||_2, 1e-12), in place
//         T = float (f32) / __half (f16) / __nv_bfloat16 (bf16): storage only, sums in fp32.
// Layout: x is a packed batch [tokens, cols] with row stride ld; sequence s is rows
//         starts[s] ..< starts[s] + lengths[s] (int32 arrays in device memory). out is
//         [sequences, cols], contiguous (stride cols). l2_normalize: x [rows, cols], stride cols.
// Launch: first_token / last_token / mean_pool / max_pool: grid (sequences, 1, 1), block (256, 1, 1)
//         (any block size is correct), no shared memory.
//         l2_normalize: grid (rows, 1, 1), block (256, 1, 1) (any multiple of 32 up to 1024),
//         no dynamic shared memory (128 bytes static).
// Shared helpers (flint_load/store, warp and block sums, INFINITY): common.cuh, prepended.

template <typename T>
static __device__ __forceinline__ void flint_first_token(const T* x, int ld, const int* starts, int sequences, int cols,
                                                          T* out) {
    const int s = blockIdx.x;
    if (s >= sequences) return;
    const T* row = x + (long)flint_load_int(starts, s) * ld;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) flint_copy(out, (long)s * cols + c, row, c);
}

template <typename T>
static __device__ __forceinline__ void flint_last_token(const T* x, int ld, const int* starts, const int* lengths,
                                                         int sequences, int cols, T* out) {
    const int s = blockIdx.x;
    if (s >= sequences || flint_load_int(lengths, s) <= 0) return;
    const T* row = x + (long)(flint_load_int(starts, s) + flint_load_int(lengths, s) - 1) * ld;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) flint_copy(out, (long)s * cols + c, row, c);
}

template <typename T>
static __device__ __forceinline__ void flint_mean_pool(const T* x, int ld, const int* starts, const int* lengths,
                                                        int sequences, int cols, T* out) {
    const int s = blockIdx.x;
    if (s >= sequences) return;
    const long start = flint_load_int(starts, s);
    const int length = flint_load_int(lengths, s);
    const float inv = length > 0 ? 1.0f / (float)length : 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float sum = 0.0f;
        for (int i = 0; i < length; ++i) sum += flint_load(x, (start + i) * ld + c);
        flint_store(out, (long)s * cols + c, sum * inv);
    }
}

template <typename T>
static __device__ __forceinline__ void flint_max_pool(const T* x, int ld, const int* starts, const int* lengths,
                                                       int sequences, int cols, T* out) {
    const int s = blockIdx.x;
    if (s >= sequences) return;
    const long start = flint_load_int(starts, s);
    const int length = flint_load_int(lengths, s);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float m = length > 0 ? -INFINITY : 0.0f;
        for (int i = 0; i < length; ++i) m = fmaxf(m, flint_load(x, (start + i) * ld + c));
        flint_store(out, (long)s * cols + c, m);
    }
}

template <typename T>
static __device__ __forceinline__ void flint_l2_normalize(T* x, int rows, int cols) {
    __shared__ float red[32];
    const int row = blockIdx.x;
    if (row >= rows) return;
    T* xr = x + (long)row * cols;
    float sq = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float v = flint_load(xr, c);
        sq += v * v;
    }
    const float norm = sqrtf(flint_block_sum(sq, red));
    const float inv = 1.0f / fmaxf(norm, 1e-12f);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) flint_store(xr, c, flint_load(xr, c) * inv);
}

#define FLINT_POOLING_KERNELS(SUFFIX, T)                                                                        \
    extern "C" __global__ void first_token_##SUFFIX(const T* x, int ld, const int* starts, int sequences,      \
                                                    int cols, T* out) {                                        \
        flint_first_token<T>(x, ld, starts, sequences, cols, out);                                             \
    }                                                                                                          \
    extern "C" __global__ void last_token_##SUFFIX(const T* x, int ld, const int* starts, const int* lengths,  \
                                                   int sequences, int cols, T* out) {                          \
        flint_last_token<T>(x, ld, starts, lengths, sequences, cols, out);                                     \
    }                                                                                                          \
    extern "C" __global__ void mean_pool_##SUFFIX(const T* x, int ld, const int* starts, const int* lengths,   \
                                                  int sequences, int cols, T* out) {                           \
        flint_mean_pool<T>(x, ld, starts, lengths, sequences, cols, out);                                      \
    }                                                                                                          \
    extern "C" __global__ void max_pool_##SUFFIX(const T* x, int ld, const int* starts, const int* lengths,    \
                                                 int sequences, int cols, T* out) {                            \
        flint_max_pool<T>(x, ld, starts, lengths, sequences, cols, out);                                       \
    }                                                                                                          \
    extern "C" __global__ void l2_normalize_##SUFFIX(T* x, int rows, int cols) { flint_l2_normalize<T>(x, rows, cols); }

FLINT_POOLING_KERNELS(f32, float)
FLINT_POOLING_KERNELS(f16, __half)
FLINT_POOLING_KERNELS(bf16, __nv_bfloat16)
