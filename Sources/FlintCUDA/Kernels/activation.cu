// Flint CUDA kernels: bias + activation, in place.
//
// What:   bias_activation_<T>: x[r, c] = act(x[r, c] + bias[c]) for every row r < rows, column c < cols.
//         activation: 0 none, 1 GELU erf form 0.5·v·(1 + erf(v/√2)) (HF "gelu"),
//         2 GELU tanh form 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))) (HF "gelu_new"), 3 tanh, 4 ReLU.
//         Used after a GEMM whose epilogue cannot do the exact erf GELU.
//         T = float (f32) / __half (f16) / __nv_bfloat16 (bf16): storage only, math in fp32.
// Layout: row-major x [rows, cols], row stride ld (>= cols). bias: [cols] or null.
// Launch: grid (rows, 1, 1); block (256, 1, 1) (any block size is correct: threads stride over
//         the columns of their block's row); no shared memory.
// Shared helpers (flint_load/store, warp and block sums, INFINITY): common.cuh, prepended.

static __device__ __forceinline__ float flint_activate(float v, int activation) {
    switch (activation) {
    case 1: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case 2: return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case 3: return tanhf(v);
    case 4: return v > 0.0f ? v : 0.0f;
    default: return v;
    }
}

template <typename T>
static __device__ __forceinline__ void flint_bias_activation(T* x, const T* bias, int rows, int cols, int ld,
                                                              int activation) {
    const int row = blockIdx.x;
    if (row >= rows) return;
    T* xr = x + (long)row * ld;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = flint_load(xr, c);
        if (bias) v += flint_load(bias, c);
        flint_store(xr, c, flint_activate(v, activation));
    }
}

#define FLINT_ACTIVATION_KERNELS(SUFFIX, T)                                                                  \
    extern "C" __global__ void bias_activation_##SUFFIX(T* x, const T* bias, int rows, int cols, int ld,    \
                                                        int activation) {                                   \
        flint_bias_activation<T>(x, bias, rows, cols, ld, activation);                                      \
    }

FLINT_ACTIVATION_KERNELS(f32, float)
FLINT_ACTIVATION_KERNELS(f16, __half)
FLINT_ACTIVATION_KERNELS(bf16, __nv_bfloat16)
