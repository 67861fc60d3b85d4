// Emulation of what NVRTC provides to Flint's kernels, so the same .cu files compile as host C++
// and run on the CPU (see emulation.cpp for the execution model).
//
// - __global__/__device__/__host__/__forceinline__: plain (inline) C++ functions.
// - threadIdx, blockIdx, blockDim, gridDim: thread_local variables of the OS thread running the
//   block; the scheduler loads the running fiber's threadIdx before every switch into it.
// - __shared__ = `static thread_local`: all fibers of a block run on one OS thread and the blocks of
//   an OS thread run one after another, so one thread_local instance per OS thread is exactly "one
//   instance per resident block". Only static shared memory is supported (launch with 0 dynamic
//   bytes); like CUDA, its contents are undefined at block start (left over from the previous block).
// - __syncthreads(): barrier over all threads of the block; __syncwarp / __shfl_*_sync / votes: warp
//   collectives (every lane of the mask publishes, waits for the others, then reads).
// - flint_load / flint_store check their address against the allocation (see "bounds checks").
// - math functions with the error CUDA documents, not libm's (see "math").
// - atomics: real atomics (blocks may run on several OS threads at once).
// - __half / __nv_bfloat16: 16-bit storage structs; conversions round to nearest even bit-exactly
//   like CUDA (cuda_fp16.hpp / cuda_bf16.hpp host paths).
#ifndef FLINT_CUDA_EMULATION_H
#define FLINT_CUDA_EMULATION_H

#define FLINT_CUDA_EMULATION 1

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <type_traits>

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};

namespace flint_emu {
extern thread_local uint3 tl_threadIdx;
extern thread_local uint3 tl_blockIdx;
extern thread_local dim3 tl_blockDim;
extern thread_local dim3 tl_gridDim;

enum WarpOp { kSyncWarp = 0, kShfl, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll };

void syncthreads();
// Warp collective: `value` published by this lane; returns the value of lane `src_lane` for
// shuffles, the ballot / any / all result for votes.
uint64_t warp_collective(int op, unsigned mask, uint64_t value, int src_lane);
unsigned lane_id();
}  // namespace flint_emu

#define threadIdx (::flint_emu::tl_threadIdx)
#define blockIdx (::flint_emu::tl_blockIdx)
#define blockDim (::flint_emu::tl_blockDim)
#define gridDim (::flint_emu::tl_gridDim)
#define warpSize 32

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static thread_local

inline void __syncthreads() { ::flint_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::flint_emu::warp_collective(::flint_emu::kSyncWarp, mask, 0, 0); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

namespace flint_emu {
template <typename T>
inline T shuffle(int op, unsigned mask, T v, int src_lane) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type CUDA cannot shuffle");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    bits = warp_collective(op, mask, bits, src_lane);
    T r;
    memcpy(&r, &bits, sizeof(T));
    return r;
}
// Source lane of a shuffle as PTX shfl.sync computes it (out-of-segment sources read their own value).
inline int shfl_source(int op, int lane, int arg, int width) {
    const int seg = lane & ~(width - 1);
    switch (op) {
    case kShfl: return seg + (arg & (width - 1));
    case kShflUp: return (lane - seg) >= arg ? lane - arg : lane;
    case kShflDown: return (lane - seg) + arg < width ? lane + arg : lane;
    default: {
        const int s = lane ^ arg;
        return (s >= seg && s < seg + width) ? s : lane;
    }
    }
}
}  // namespace flint_emu

template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return ::flint_emu::shuffle(::flint_emu::kShfl, mask, v,
                                ::flint_emu::shfl_source(::flint_emu::kShfl, (int)::flint_emu::lane_id(), src, width));
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return ::flint_emu::shuffle(::flint_emu::kShflUp, mask, v,
                                ::flint_emu::shfl_source(::flint_emu::kShflUp, (int)::flint_emu::lane_id(), (int)delta, width));
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return ::flint_emu::shuffle(::flint_emu::kShflDown, mask, v,
                                ::flint_emu::shfl_source(::flint_emu::kShflDown, (int)::flint_emu::lane_id(), (int)delta, width));
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return ::flint_emu::shuffle(::flint_emu::kShflXor, mask, v,
                                ::flint_emu::shfl_source(::flint_emu::kShflXor, (int)::flint_emu::lane_id(), lane_mask, width));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned)::flint_emu::warp_collective(::flint_emu::kBallot, mask, pred != 0, 0);
}
inline int __any_sync(unsigned mask, int pred) { return (int)::flint_emu::warp_collective(::flint_emu::kAny, mask, pred != 0, 0); }
inline int __all_sync(unsigned mask, int pred) { return (int)::flint_emu::warp_collective(::flint_emu::kAll, mask, pred != 0, 0); }

// ---- atomics (blocks may run on different OS threads) ----
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
inline float atomicAdd(float* p, float v) {
    uint32_t* u = reinterpret_cast<uint32_t*>(p);
    uint32_t old = __atomic_load_n(u, __ATOMIC_SEQ_CST), next;
    do {
        float f;
        memcpy(&f, &old, 4);
        f += v;
        memcpy(&next, &f, 4);
    } while (!__atomic_compare_exchange_n(u, &old, next, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    float r;
    memcpy(&r, &old, 4);
    return r;
}
inline int atomicMax(int* p, int v) {
    int old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return old;
}
inline int atomicMin(int* p, int v) {
    int old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return old;
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline int atomicOr(int* p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicOr(unsigned* p, unsigned v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
inline int atomicCAS(int* p, int compare, int v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}

// ---- math: device-like error ----
// The CUDA math functions are not correctly rounded; a kernel that only passes with libm's answers
// would fail on hardware. So the functions the kernels use return the exact result moved by a
// deterministic amount (a hash of the input: runs repeat bit for bit) that stays within the
// maximum error the CUDA C Programming Guide documents (math-functions appendix; "error bounds ...
// from extensive but not exhaustive tests"): rsqrtf, expf, tanhf, erff 2 ulp; __expf
// 2 + floor(|1.173 x|) ulp (it is ex2.approx of x * log2(e) rounded to float, emulated so); __logf
// 2^-21.41 absolute in [0.5, 2], else 3 ulp; __fdividef 2 ulp for |y| in [2^-126, 2^126] (0 above);
// __tanhf 2^-10.987 relative. The exact result is computed in double and rounded (0.5 ulp), so
// the moves below are the bound minus that rounding, rounded down.
namespace flint_emu {
inline uint32_t mix_bits(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}
// `result` moved by -max_ulps ... +max_ulps units in the last place, chosen by `key`; zeros,
// subnormals, infinities and NaN stay as they are (and no move crosses into them).
inline float ulp_moved(float result, uint32_t key, int max_ulps) {
    if (max_ulps <= 0) return result;
    uint32_t r;
    memcpy(&r, &result, 4);
    const uint32_t magnitude = r & 0x7fffffffu;
    if (magnitude < 0x00800000u || magnitude >= 0x7f800000u) return result;
    const int64_t step = (int64_t)(mix_bits(key) % (uint32_t)(2 * max_ulps + 1)) - max_ulps;
    const int64_t moved = (int64_t)magnitude + step;
    if (moved < 0x00800000 || moved >= 0x7f800000) return result;
    r = (r & 0x80000000u) | (uint32_t)moved;
    float f;
    memcpy(&f, &r, 4);
    return f;
}
inline uint32_t float_key(float x) {
    uint32_t k;
    memcpy(&k, &x, 4);
    return k;
}
// What the kernels call expf, tanhf, erff (kernels.cpp puts these names in each kernel namespace,
// ahead of libm's): correctly rounded, then moved by up to 1 ulp (CUDA: 2 ulp).
namespace device_math {
inline float expf(float x) { return ulp_moved((float)::exp((double)x), float_key(x), 1); }
// tanh and erf never leave [-1, 1], and give exactly +-1 where they saturate, as on the device.
inline float saturating(float exact, uint32_t key, int max_ulps) {
    if (fabsf(exact) >= 1.0f) return exact;
    const float v = ulp_moved(exact, key, max_ulps);
    return v > 1.0f ? 1.0f : (v < -1.0f ? -1.0f : v);
}
inline float tanhf(float x) { return saturating((float)::tanh((double)x), float_key(x) ^ 0x5bd1e995u, 1); }
inline float erff(float x) { return saturating((float)::erf((double)x), float_key(x) ^ 0x27d4eb2fu, 1); }
}  // namespace device_math
}  // namespace flint_emu

inline float rsqrtf(float x) { return ::flint_emu::ulp_moved((float)(1.0 / ::sqrt((double)x)), ::flint_emu::float_key(x), 1); }
inline float __expf(float x) {
    const float t = x * 1.4426950408889634f;  // rounded to float as on the device: the error that grows with |x|
    float r = (float)::exp2((double)t);
    if (r != 0.0f && fabsf(r) < 1.17549435e-38f) r = 0.0f;  // ex2.approx.ftz flushes subnormal results
    // Bound 2 + floor(1.173|x|) ulp; the rounding of t costs up to |x| ulp and the final rounding 0.5.
    const float spare = 2.0f + floorf(1.173f * fabsf(x)) - 0.5f - fabsf(x);
    return ::flint_emu::ulp_moved(r, ::flint_emu::float_key(x), spare >= 2.0f ? 2 : (spare >= 1.0f ? 1 : 0));
}
inline float __logf(float x) {
    const float r = (float)::log((double)x);
    return x >= 0.5f && x <= 2.0f ? r : ::flint_emu::ulp_moved(r, ::flint_emu::float_key(x), 2);
}
inline float __tanhf(float x) {  // 2^-10.987 relative: up to 1024 ulp (2^-13 relative) is well inside
    return ::flint_emu::device_math::saturating((float)::tanh((double)x), ::flint_emu::float_key(x), 1024);
}
inline float __fdividef(float a, float b) {
    const float magnitude = fabsf(b);
    if (magnitude > 8.50705917e37f && magnitude <= 3.40282347e38f) return isinf(a) ? NAN : copysignf(0.0f, a) * copysignf(1.0f, b);
    return ::flint_emu::ulp_moved(a / b, ::flint_emu::float_key(a) * 31u ^ ::flint_emu::float_key(b), 1);
}
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
inline int __float_as_int(float v) { int i; memcpy(&i, &v, 4); return i; }
inline float __uint_as_float(unsigned v) { float f; memcpy(&f, &v, 4); return f; }
inline unsigned __float_as_uint(float v) { unsigned i; memcpy(&i, &v, 4); return i; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
template <typename T>
inline T __ldg(const T* p) { return *p; }

// ---- bounds checks of device memory accesses (launches through flint_emu_launch_checked) ----
// The emulated driver registers its live allocations (flint_emu_register_allocation). In a checked
// launch, each access through flint_load / flint_store (common.cuh) must lie inside the allocation
// that holds the pointer it indexes from; the first that does not stops the launch with
// FLINT_EMU_ERR_OUT_OF_BOUNDS and a message naming the kernel, block, thread, address and
// allocation. The last allocation hit is cached per OS thread, so an access costs two compares.
namespace flint_emu {
struct Span {
    uintptr_t lo, hi;  // [lo, hi)
};
extern thread_local bool tl_checking;
extern thread_local Span tl_last_span;
// Outside the cached span: looks the base up among the launch's allocations; faults on a violation.
void check_access_slow(const void* base, uintptr_t address, size_t bytes, bool write);
inline void check_access(const void* base, long index, size_t bytes, bool write) {
    if (!tl_checking) return;
    const uintptr_t b = (uintptr_t)base, a = b + (uintptr_t)index * bytes;
    const Span s = tl_last_span;
    if (b >= s.lo && b < s.hi && a >= s.lo && a <= s.hi - bytes) return;
    check_access_slow(base, a, bytes, write);
}
}  // namespace flint_emu

// ---- fp16 / bf16 storage types, conversions bit-exact with CUDA ----
struct __half {
    unsigned short __x;
};
struct __nv_bfloat16 {
    unsigned short __x;
};

namespace flint_emu {
inline unsigned short float_to_half_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t u = x & 0x7fffffffu, sign = (x >> 16) & 0x8000u, remainder, result;
    if (u >= 0x7f800000u) {  // NaN / Inf
        remainder = 0;
        result = u == 0x7f800000u ? (sign | 0x7c00u) : 0x7fffu;
    } else if (u > 0x477fefffu) {  // overflow: rounds to Inf
        remainder = 0x80000000u;
        result = sign | 0x7bffu;
    } else if (u >= 0x38800000u) {  // normal
        remainder = u << 19;
        u -= 0x38000000u;
        result = sign | (u >> 13);
    } else if (u < 0x33000001u) {  // +-0
        remainder = u;
        result = sign;
    } else {  // subnormal
        const uint32_t exponent = u >> 23, shift = 0x7eu - exponent;
        uint32_t mantissa = (u & 0x7fffffu) | 0x800000u;
        remainder = mantissa << (32u - shift);
        result = (sign | (mantissa >> shift)) & 0xffffu;
    }
    if (remainder > 0x80000000u || (remainder == 0x80000000u && (result & 1u))) result++;
    return (unsigned short)result;
}
inline float half_bits_to_float(unsigned short h) {
    uint32_t sign = (h >> 15) & 1u, exponent = (h >> 10) & 0x1fu, mantissa = (uint32_t)(h & 0x3ffu) << 13;
    if (exponent == 0x1fu) {  // NaN / Inf (NaN loses its sign, like CUDA's host path)
        sign = mantissa ? sign >> 1 : sign;
        mantissa = mantissa ? 0x7fffffu : 0;
        exponent = 0xffu;
    } else if (exponent == 0) {
        if (mantissa) {
            uint32_t msb;
            exponent = 0x71u;
            do {
                msb = mantissa & 0x400000u;
                mantissa <<= 1;
                --exponent;
            } while (!msb);
            mantissa &= 0x7fffffu;
        }
    } else {
        exponent += 0x70u;
    }
    const uint32_t u = (sign << 31) | (exponent << 23) | mantissa;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline unsigned short float_to_bfloat16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  // NaN
    const uint32_t remainder = x << 16;
    uint32_t result = x >> 16;
    if (remainder > 0x80000000u || (remainder == 0x80000000u && (result & 1u))) result++;
    return (unsigned short)result;
}
inline float bfloat16_bits_to_float(unsigned short h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
}  // namespace flint_emu

inline __half __float2half_rn(float f) { return __half{::flint_emu::float_to_half_bits(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) { return ::flint_emu::half_bits_to_float(h.__x); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{::flint_emu::float_to_bfloat16_bits(f)}; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return ::flint_emu::bfloat16_bits_to_float(h.__x); }

#endif
