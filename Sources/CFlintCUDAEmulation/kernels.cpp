// The Flint CUDA kernels compiled for the host, and the name -> launcher table behind
// flint_emu_launch. Each .cu file is included inside its own namespace after common.cuh, as NVRTC
// gets it (their static helpers share names); the kernels are extern "C" as NVRTC sees them.
// Adding a kernel is one FLINT_EMU_KERNEL line: the launcher unpacks cuLaunchKernel-style params by
// the kernel's declared parameter types.
#include "cuda_emulation.h"
#include "include/CFlintCUDAEmulation.h"
#include "emulation_internal.h"

#include <cstring>
#include <string>
#include <tuple>
#include <utility>

// expf / tanhf / erff with CUDA's error, not libm's (cuda_emulation.h, "math"): declared in each
// kernel namespace, they hide the global libm names for the kernels' unqualified calls.
#define FLINT_EMU_DEVICE_MATH               \
    using ::flint_emu::device_math::expf;  \
    using ::flint_emu::device_math::tanhf; \
    using ::flint_emu::device_math::erff;

namespace flint_kernels_layernorm {
FLINT_EMU_DEVICE_MATH
#include "../FlintCUDA/Kernels/common.cuh"
#include "../FlintCUDA/Kernels/layernorm.cu"
}
namespace flint_kernels_activation {
FLINT_EMU_DEVICE_MATH
#include "../FlintCUDA/Kernels/common.cuh"
#include "../FlintCUDA/Kernels/activation.cu"
}
namespace flint_kernels_attention {
FLINT_EMU_DEVICE_MATH
#include "../FlintCUDA/Kernels/common.cuh"
#include "../FlintCUDA/Kernels/attention.cu"
}
namespace flint_kernels_pooling {
FLINT_EMU_DEVICE_MATH
#include "../FlintCUDA/Kernels/common.cuh"
#include "../FlintCUDA/Kernels/pooling.cu"
}
namespace flint_kernels_sampling {
FLINT_EMU_DEVICE_MATH
#include "../FlintCUDA/Kernels/common.cuh"
#include "../FlintCUDA/Kernels/sampling.cu"
}
namespace flint_kernels_convert {
FLINT_EMU_DEVICE_MATH
#include "../FlintCUDA/Kernels/common.cuh"
#include "../FlintCUDA/Kernels/convert.cu"
}
namespace flint_kernels_emu_test {
FLINT_EMU_DEVICE_MATH
#include "test_kernels.h"
}

namespace {

struct Geometry {
    unsigned gx, gy, gz, bx, by, bz, shared;
    bool checked;
};

template <typename... A, size_t... I>
int launch_unpacked(void (*kernel)(A...), const char* name, const Geometry& g, void** params, int count,
                    std::index_sequence<I...>) {
    using Args = std::tuple<std::decay_t<A>...>;
    struct Context {
        void (*kernel)(A...);
        Args args;
    };
    if (count != (int)sizeof...(A)) {
        flint_emu::set_last_error(std::string(name) + " takes " + std::to_string(sizeof...(A)) + " parameters, " +
                                  std::to_string(count) + " given");
        return FLINT_EMU_ERR_INVALID_CONFIG;
    }
    for (size_t i = 0; i < sizeof...(A); ++i) {
        if (params == nullptr || params[i] == nullptr) {
            flint_emu::set_last_error(std::string(name) + ": parameter " + std::to_string(i) + " is missing");
            return FLINT_EMU_ERR_INVALID_CONFIG;
        }
    }
    Context context{kernel, Args(*static_cast<std::decay_t<A>*>(params[I])...)};
    // Every fiber calls the kernel with its own copies of the by-value arguments.
    auto entry = [](void* c) {
        Context* ctx = static_cast<Context*>(c);
        std::apply(ctx->kernel, Args(ctx->args));
    };
    return flint_emu::launch_grid(name, g.gx, g.gy, g.gz, g.bx, g.by, g.bz, g.shared, g.checked, entry,
                                &context);
}

template <typename... A>
int launch_kernel(void (*kernel)(A...), const char* name, const Geometry& g, void** params, int count) {
    return launch_unpacked(kernel, name, g, params, count, std::index_sequence_for<A...>{});
}

struct KernelEntry {
    const char* name;
    int (*launch)(const char* name, const Geometry& g, void** params, int count);
};

#define FLINT_EMU_KERNEL(NS, NAME) \
    {#NAME, [](const char* n, const Geometry& g, void** p, int c) { return launch_kernel(&NS::NAME, n, g, p, c); }},
#define FLINT_EMU_KERNEL_DTYPES(NS, OP) FLINT_EMU_KERNEL(NS, OP##_f32) FLINT_EMU_KERNEL(NS, OP##_f16) FLINT_EMU_KERNEL(NS, OP##_bf16)

const KernelEntry kKernels[] = {
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_layernorm, embedding_layernorm)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_layernorm, layernorm)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_activation, bias_activation)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_attention, attention)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_attention, cached_attention)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_attention, decode_attention)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_pooling, first_token)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_pooling, last_token)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_pooling, mean_pool)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_pooling, max_pool)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_pooling, l2_normalize)
    FLINT_EMU_KERNEL_DTYPES(flint_kernels_sampling, sample_tokens)
    FLINT_EMU_KERNEL(flint_kernels_convert, convert_f32_to_f32)
    FLINT_EMU_KERNEL(flint_kernels_convert, convert_f32_to_f16)
    FLINT_EMU_KERNEL(flint_kernels_convert, convert_f16_to_f32)
    FLINT_EMU_KERNEL(flint_kernels_convert, convert_f32_to_bf16)
    FLINT_EMU_KERNEL(flint_kernels_convert, convert_bf16_to_f32)
    // Test-only kernels of the emulation itself (test_kernels.h).
    FLINT_EMU_KERNEL(flint_kernels_emu_test, emu_test_block_reduce)
    FLINT_EMU_KERNEL(flint_kernels_emu_test, emu_test_warp_ops)
    FLINT_EMU_KERNEL(flint_kernels_emu_test, emu_test_atomic_add)
    FLINT_EMU_KERNEL(flint_kernels_emu_test, emu_test_barrier_deadlock)
    FLINT_EMU_KERNEL(flint_kernels_emu_test, emu_test_warp_mismatch)
    FLINT_EMU_KERNEL(flint_kernels_emu_test, emu_test_math)
};

constexpr int kKernelCount = sizeof(kKernels) / sizeof(kKernels[0]);

}  // namespace

extern "C" {

int flint_emu_kernel_count(void) { return kKernelCount; }

const char* flint_emu_kernel_name(int i) { return i >= 0 && i < kKernelCount ? kKernels[i].name : nullptr; }

static int launch_by_name(const char* name, const Geometry& g, void** params, int param_count) {
    if (name) {
        for (const KernelEntry& k : kKernels) {
            if (strcmp(k.name, name) == 0) return k.launch(k.name, g, params, param_count);
        }
    }
    flint_emu::set_last_error(std::string("unknown kernel '") + (name ? name : "(null)") + "'");
    return FLINT_EMU_ERR_UNKNOWN_KERNEL;
}

int flint_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                     unsigned shared_bytes, void** params, int param_count) {
    return launch_by_name(name, Geometry{gx, gy, gz, bx, by, bz, shared_bytes, false}, params, param_count);
}

int flint_emu_launch_checked(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned shared_bytes, void** params, int param_count) {
    return launch_by_name(name, Geometry{gx, gy, gz, bx, by, bz, shared_bytes, true}, params, param_count);
}

void flint_emu_register_allocation(const void* base, size_t bytes) { flint_emu::register_allocation(base, bytes); }
void flint_emu_unregister_allocation(const void* base) { flint_emu::unregister_allocation(base); }

const char* flint_emu_last_error(void) { return flint_emu::last_error_message(); }

void flint_emu_set_threads(int threads) { flint_emu::set_threads(threads); }

uint16_t flint_emu_float_to_half(float v) { return flint_emu::float_to_half_bits(v); }
float flint_emu_half_to_float(uint16_t h) { return flint_emu::half_bits_to_float(h); }
uint16_t flint_emu_float_to_bfloat16(float v) { return flint_emu::float_to_bfloat16_bits(v); }
float flint_emu_bfloat16_to_float(uint16_t h) { return flint_emu::bfloat16_bits_to_float(h); }

void flint_emu_floats_to_half(const float* src, uint16_t* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = flint_emu::float_to_half_bits(src[i]);
}
void flint_emu_half_to_floats(const uint16_t* src, float* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = flint_emu::half_bits_to_float(src[i]);
}
void flint_emu_floats_to_bfloat16(const float* src, uint16_t* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = flint_emu::float_to_bfloat16_bits(src[i]);
}
void flint_emu_bfloat16_to_floats(const uint16_t* src, float* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = flint_emu::bfloat16_bits_to_float(src[i]);
}

}  // extern "C"
