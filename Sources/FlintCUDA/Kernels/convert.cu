// Flint CUDA kernels: dtype conversions for uploads and readbacks.
//
// What:   convert_f32_to_<T>: out[i] = T(in[i]) rounded to nearest even (f32: plain copy).
//         convert_<T>_to_f32: out[i] = float(in[i]) (exact).
//         T = float (f32) / __half (f16) / __nv_bfloat16 (bf16).
// Layout: flat arrays of n elements (n is a 64-bit count).
// Launch: grid (min(ceil(n / 256), 65535), 1, 1); block (256, 1, 1); no shared memory.
//         Grid-stride loop: any grid and block size is correct.
// Shared helpers (flint_load/store, warp and block sums, INFINITY): common.cuh, prepended.

template <typename From, typename To>
static __device__ __forceinline__ void flint_convert(const From* in, To* out, long n) {
    const long stride = (long)gridDim.x * blockDim.x;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) flint_store(out, i, flint_load(in, i));
}

#define FLINT_CONVERT_KERNELS(SUFFIX, T)                                                                              \
    extern "C" __global__ void convert_f32_to_##SUFFIX(const float* in, T* out, long n) { flint_convert(in, out, n); } \
    extern "C" __global__ void convert_##SUFFIX##_to_f32(const T* in, float* out, long n) { flint_convert(in, out, n); }

FLINT_CONVERT_KERNELS(f16, __half)
FLINT_CONVERT_KERNELS(bf16, __nv_bfloat16)

// f32 -> f32 is a copy; both names exist so the host can use one naming rule for every dtype.
extern "C" __global__ void convert_f32_to_f32(const float* in, float* out, long n) { flint_convert(in, out, n); }
