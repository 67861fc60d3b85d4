// Test-only kernels for the emulation itself (CUDA C++, included by kernels.cpp like the .cu files;
// not part of the product). Launched by Tests/FlintCUDAEmulationTests.

static __device__ __forceinline__ unsigned emu_linear_tid() {
    return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// Per block: sum of in[block * threads + t] two ways. out[3b] = shared-memory + __shfl_xor_sync block
// reduction (as seen by the block's LAST thread), out[3b+1] = warp sums by __shfl_down_sync
// combined by thread 0, out[3b+2] = number of threads whose xor result differs from thread 0's.
// Block: any multiple of 32 threads up to 1024, in 1-3 dimensions.
extern "C" __global__ void emu_test_block_reduce(const float* in, float* out) {
    __shared__ float warp_sums[32];
    __shared__ float down_sums[32];
    __shared__ float total;
    __shared__ int mismatches;
    const unsigned tid = emu_linear_tid();
    const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned lane = tid & 31, warp = tid >> 5;
    const float v = in[(unsigned long)block * threads + tid];
    if (tid == 0) mismatches = 0;
    float x = v;
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    float d = v;
    for (int o = 16; o > 0; o >>= 1) d += __shfl_down_sync(0xffffffffu, d, o);
    if (lane == 0) {
        warp_sums[warp] = x;
        down_sums[warp] = d;
    }
    __syncthreads();
    float t = lane < threads / 32 ? warp_sums[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    if (tid == 0) {
        float s = 0.0f;
        for (unsigned w = 0; w < threads / 32; ++w) s += down_sums[w];
        out[3 * block + 1] = s;
        total = t;
    }
    __syncthreads();
    if (t != total) atomicAdd(&mismatches, 1);
    __syncthreads();
    if (tid == threads - 1) {
        out[3 * block] = t;
        out[3 * block + 2] = (float)mismatches;
    }
}

// Per thread (linear tid, 1 block of any multiple of 32 threads), 8 ints:
// shfl from lane 3, shfl_up by 1, shfl_down by 1 within width 16, shfl_xor 5, ballot(lane odd),
// any(lane == 7), all(lane < 32), __shfl_sync with width 8 from lane 2 of each segment.
extern "C" __global__ void emu_test_warp_ops(int* out) {
    const unsigned tid = emu_linear_tid();
    const int lane = (int)(tid & 31);
    const int v = (int)tid * 10;
    int* o = out + 8 * tid;
    o[0] = __shfl_sync(0xffffffffu, v, 3);
    o[1] = __shfl_up_sync(0xffffffffu, v, 1);
    o[2] = __shfl_down_sync(0xffffffffu, v, 1, 16);
    o[3] = __shfl_xor_sync(0xffffffffu, v, 5);
    o[4] = (int)__ballot_sync(0xffffffffu, lane & 1);
    o[5] = __any_sync(0xffffffffu, lane == 7);
    __syncwarp();
    o[6] = __all_sync(0xffffffffu, lane < 32);
    o[7] = __shfl_sync(0xffffffffu, v, 2, 8);
}

// Every thread of every block adds 1 to *sum and *count (blocks run on several OS threads).
extern "C" __global__ void emu_test_atomic_add(float* sum, int* count) {
    atomicAdd(sum, 1.0f);
    atomicAdd(count, 1);
}

// Broken on purpose: threads >= 16 exit, the others wait at a barrier that can never complete.
extern "C" __global__ void emu_test_barrier_deadlock(int* out) {
    if (threadIdx.x >= 16) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

// Broken on purpose: half a warp at __syncwarp, the other half in a shuffle.
extern "C" __global__ void emu_test_warp_mismatch(int* out) {
    if ((threadIdx.x & 31) < 16) {
        __syncwarp();
    } else {
        out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
    }
}

// The emulation's device math: for each in[i], out[7i ...] = rsqrtf, expf, __expf, tanhf, erff,
// __logf, __fdividef(in[i], 3). Grid-stride: any geometry.
extern "C" __global__ void emu_test_math(const float* in, float* out, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float x = in[i];
        float* o = out + 7L * i;
        o[0] = rsqrtf(x);
        o[1] = expf(x);
        o[2] = __expf(x);
        o[3] = tanhf(x);
        o[4] = erff(x);
        o[5] = __logf(x);
        o[6] = __fdividef(x, 3.0f);
    }
}
