// Flint CUDA kernels: what every kernel file shares. Prepended to each .cu file: by the host
// before NVRTC compiles it (KernelSources), and by the emulation build inside each file's
// namespace (CFlintCUDAEmulation/kernels.cpp). No include guard on purpose: it is included once per
// kernel file, and each file is a separate compilation (NVRTC) or namespace (emulation).
//
// flint_load / flint_store: T = float (f32) / __half (f16) / __nv_bfloat16 (bf16) is the storage
// type only; all math is fp32 (stores round to nearest even).
// flint_load_int / flint_copy: an int32 element, a raw element copy (no rounding). Under the
// emulation all four check the address against the allocation the pointer lies in.
// flint_warp_sum / flint_warp_max: over the 32 lanes of a warp, result in every lane (all lanes
// must take part). flint_block_sum: over the block, the same bits in every thread; blockDim.x a
// multiple of 32, at most 1024; `red` 32 floats of shared memory; every thread must call it.
#ifndef FLINT_CUDA_EMULATION
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif
#ifndef INFINITY  // NVRTC has no <math.h>
#define INFINITY __int_as_float(0x7f800000)
#endif

#ifdef FLINT_CUDA_EMULATION  // every access bounds-checked against its allocation (cuda_emulation.h)
#define FLINT_CHECKED(p, i, write) ::flint_emu::check_access(p, i, sizeof(*(p)), write)
#else
#define FLINT_CHECKED(p, i, write)
#endif
static __device__ __forceinline__ float flint_load(const float* p, long i) { FLINT_CHECKED(p, i, false); return p[i]; }
static __device__ __forceinline__ float flint_load(const __half* p, long i) { FLINT_CHECKED(p, i, false); return __half2float(p[i]); }
static __device__ __forceinline__ float flint_load(const __nv_bfloat16* p, long i) {
    FLINT_CHECKED(p, i, false);
    return __bfloat162float(p[i]);
}
static __device__ __forceinline__ void flint_store(float* p, long i, float v) { FLINT_CHECKED(p, i, true); p[i] = v; }
static __device__ __forceinline__ void flint_store(__half* p, long i, float v) { FLINT_CHECKED(p, i, true); p[i] = __float2half_rn(v); }
static __device__ __forceinline__ void flint_store(__nv_bfloat16* p, long i, float v) {
    FLINT_CHECKED(p, i, true);
    p[i] = __float2bfloat16_rn(v);
}
// int32 arrays (ids, starts, lengths, ...) and raw element copies, checked the same way.
static __device__ __forceinline__ int flint_load_int(const int* p, long i) { FLINT_CHECKED(p, i, false); return p[i]; }
template <typename T>
static __device__ __forceinline__ void flint_copy(T* dst, long j, const T* src, long i) {
    FLINT_CHECKED(src, i, false);
    FLINT_CHECKED(dst, j, true);
    dst[j] = src[i];
}

static __device__ __forceinline__ float flint_warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

static __device__ __forceinline__ float flint_warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

static __device__ __forceinline__ float flint_block_sum(float v, float* red) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    v = flint_warp_sum(v);
    __syncthreads();  // red may still be read by the previous flint_block_sum
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0f;
    return flint_warp_sum(v);
}
