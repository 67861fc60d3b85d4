// CFlintCUDAEmulation: the Flint CUDA kernels (Sources/FlintCUDA/Kernels/*.cu, the very files NVRTC
// compiles) built as C++ for the host and run under an emulation of the CUDA execution model.
// Plain C API (for Swift). Not thread-hostile: launches from several threads at once are fine.
#ifndef CFLINT_CUDA_EMULATION_H
#define CFLINT_CUDA_EMULATION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    FLINT_EMU_OK = 0,
    FLINT_EMU_ERR_UNKNOWN_KERNEL = 1,  // no kernel by that name
    FLINT_EMU_ERR_INVALID_CONFIG = 2,  // grid/block/shared-memory outside CUDA's limits or the kernels'
    FLINT_EMU_ERR_SYNC = 3,            // deadlock or misuse of __syncthreads / warp collectives
    FLINT_EMU_ERR_RESOURCES = 4,       // fiber stacks could not be allocated
    FLINT_EMU_ERR_OUT_OF_BOUNDS = 5,   // a checked launch accessed memory outside the allocation
};

/// Kernels known to the emulation (the production kernels, then the emu_test_* kernels).
int flint_emu_kernel_count(void);
/// Name of kernel i (0 <= i < count), or NULL.
const char* flint_emu_kernel_name(int i);

/// Runs kernel `name` on grid (gx, gy, gz) x block (bx, by, bz) like cuLaunchKernel: params[i]
/// points to the value of the kernel's i-th argument. Returns when every block has finished.
/// shared_bytes (dynamic shared memory) must be 0: the kernels use static shared memory only.
/// param_count must equal the kernel's number of parameters (cuLaunchKernel cannot check this; the
/// emulation does, so a host call that drifts from a kernel's signature fails in CI).
/// Returns FLINT_EMU_OK or an error code; the message is in flint_emu_last_error().
int flint_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                     unsigned shared_bytes, void** params, int param_count);

/// flint_emu_launch with every flint_load / flint_store / flint_load_int / flint_copy of the kernel
/// checked: the accessed bytes must lie inside the registered allocation that holds the pointer
/// indexed from (an index that walks into a neighbouring allocation counts as out of bounds). The
/// first violation stops the launch: FLINT_EMU_ERR_OUT_OF_BOUNDS, and flint_emu_last_error() names
/// the kernel, block, thread, the read or write, its address and the allocation.
/// Raw pointer indexing in a kernel (not through those helpers) is not checked.
int flint_emu_launch_checked(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned shared_bytes, void** params, int param_count);

/// Registers [base, base + bytes) as a live device allocation for checked launches (the emulated
/// driver calls this for every allocation; unregister before freeing). Thread-safe.
void flint_emu_register_allocation(const void* base, size_t bytes);
void flint_emu_unregister_allocation(const void* base);

/// Message of the last failed launch on this thread ("" if none).
const char* flint_emu_last_error(void);

/// OS threads a launch may use to run blocks in parallel (each runs whole blocks; 0 = automatic:
/// min(CPUs, 8), or the FLINT_EMU_THREADS environment variable).
void flint_emu_set_threads(int threads);

/// fp16 / bf16 conversions exactly as CUDA's __float2half_rn / __float2bfloat16_rn (round to
/// nearest even; NaN -> 0x7fff) and __half2float / __bfloat162float.
uint16_t flint_emu_float_to_half(float v);
float flint_emu_half_to_float(uint16_t h);
uint16_t flint_emu_float_to_bfloat16(float v);
float flint_emu_bfloat16_to_float(uint16_t h);
void flint_emu_floats_to_half(const float* src, uint16_t* dst, size_t n);
void flint_emu_half_to_floats(const uint16_t* src, float* dst, size_t n);
void flint_emu_floats_to_bfloat16(const float* src, uint16_t* dst, size_t n);
void flint_emu_bfloat16_to_floats(const uint16_t* src, float* dst, size_t n);

#ifdef __cplusplus
}
#endif

#endif
