// Flint CUDA kernels: next-token selection on the device (logits processing + sampling), so a
// decode step sends back token ids only.
//
// What:   sample_tokens_<T>: for sequence s, with its FlintSampling parameters (the procedure of
//         FlintCore's SamplingParameters; FlintCPU's Sampler is the plain reference):
//         1. the slot's bit set of seen tokens: cleared when the sequence starts at position 0, then
//            the sequence's tokens of this batch are added;
//         2. repetition penalty on seen tokens (x / p if x > 0, else x · p), then the presence and
//            frequency penalties on the slot's generated-token counts (x -= presence · (c > 0) +
//            frequency · c; the counts row is cleared when the sequence starts at position 0 and the
//            chosen token is added at the end); greedy (temperature 0): the largest logit, lowest id
//            on ties;
//         3. otherwise each token weighs w = exp((x - max) / temperature); the top-k and top-p
//            thresholds are found by bisection over the order-preserving 32-bit keys of the logits:
//            top-k keeps keys >= the k-th largest (exact counts), top-p keeps a token when the weight
//            of strictly larger logits is < top_p · Σ w (sums by fixed-order block reductions:
//            reproducible run to run);
//         4. the draw: u = uniform(seed, position of the new token) (24 bits of SplitMix64, as
//            SamplingParameters.uniform), the first kept id whose running sum of w exceeds u · Σ w:
//            a block-wide exclusive scan over contiguous chunks of the vocabulary, so the order is
//            the vocabulary's;
//         5. when the parameters ask for logprobs (>= 0): the raw row's log-softmax (before any
//            penalty or temperature) of the chosen token and of the min(logprobs, k) largest logits
//            (largest first, lowest id on ties: one block argmax per rank); other entries get id -1, 0.
// Layout: logits [sequences, ld] in T (columns 0 ..< vocab used). ids / positions: the packed batch's
//         tokens; starts / lengths / slots: per sequence (int32). seen: [slots, words] uint32 with
//         words = ceil(vocab / 32). counts: [slots, vocab] int32. params: [sequences] FlintSampling
//         (48 bytes). out: [sequences] int32: the chosen id, or -1 when the row holds a NaN or infinite
//         logit (the host raises the error). top_ids: [sequences, k] int32; logprobs: [sequences, k + 1]
//         f32 (the chosen token's, then the top ones').
// Launch: grid (sequences, 1, 1); block (1024, 1, 1) exactly (each thread owns one contiguous chunk
//         of ceil(vocab / 1024) ids); no dynamic shared memory (256 bytes static). Sequences of length
//         0 (bucket padding) exit at once. Cost: one pass for greedy; up to ~70 passes over the row
//         with top-k and top-p (a radix select would cut this when sampling speed matters);
//         logprobs add two passes plus one per top rank asked for.
// Shared helpers (flint_load/store, warp and block sums, INFINITY): common.cuh, prepended.

// SamplingParameters as the host packs them.
struct FlintSampling {
    float temperature;         // 0: greedy
    float top_p;               // 1: off
    float repetition_penalty;  // 1: off
    int top_k;                 // 0: off
    unsigned seed_lo, seed_hi;
    float presence_penalty;    // 0: off
    float frequency_penalty;   // 0: off
    int logprobs;              // -1: none; else how many top tokens
    int unused0, unused1, unused2;
};

#define FLINT_SAMPLE_THREADS 1024

// Order-preserving key: a < b as floats <=> key(a) < key(b) as unsigned (no NaNs here; -0 and +0
// get the same key, as they compare equal).
static __device__ __forceinline__ unsigned flint_key(float x) {
    unsigned b = __float_as_uint(x);
    if (b == 0x80000000u) b = 0u;
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

static __device__ __forceinline__ unsigned long long flint_splitmix64(unsigned long long x) {
    unsigned long long z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Block-wide reductions over all 1024 threads, result in every thread. red: 32 slots of shared memory.
template <typename V, typename Op>
static __device__ __forceinline__ V flint_block_reduce(V v, V* red, Op op) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();  // red may still be read by the previous reduction
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = red[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

struct FlintAdd {
    template <typename V>
    __device__ __forceinline__ V operator()(V a, V b) const { return a + b; }
};
struct FlintMax {
    template <typename V>
    __device__ __forceinline__ V operator()(V a, V b) const { return a > b ? a : b; }
};
struct FlintMin {
    template <typename V>
    __device__ __forceinline__ V operator()(V a, V b) const { return a < b ? a : b; }
};

// Exclusive prefix sum of v over the block, in thread order (fixed order: deterministic).
static __device__ __forceinline__ float flint_block_exclusive_scan(float v, float* red, float* total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float inclusive = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const float n = __shfl_up_sync(0xffffffffu, inclusive, o);
        if (lane >= o) inclusive += n;
    }
    __syncthreads();
    if (lane == 31) red[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        float w = red[lane];
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const float n = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += n;
        }
        red[lane] = w;  // inclusive scan of the warp totals
    }
    __syncthreads();
    *total = red[31];
    return (warp > 0 ? red[warp - 1] : 0.0f) + inclusive - v;
}

// One sequence's logits after the penalties (the temperature only enters the weights).
template <typename T>
struct FlintLogits {
    const T* row;
    const unsigned* seen;
    const int* counts;
    float penalty, presence, frequency;
    __device__ __forceinline__ float penalized(int v, float x) const {
        if (penalty != 1.0f && (seen[v >> 5] >> (v & 31)) & 1u) x = x > 0.0f ? x / penalty : x * penalty;
        if (presence != 0.0f || frequency != 0.0f) {
            const int c = counts[v];
            if (c > 0) x -= fmaf(frequency, (float)c, presence);  // fused, as the CPU's addingProduct
        }
        return x;
    }
    __device__ __forceinline__ float operator()(int v) const { return penalized(v, flint_load(row, v)); }
};

// Steps 3-4 for a sampled (not greedy) row: the top-k and top-p threshold, then the draw at
// `position` (the new token's). m: the largest penalized logit. Every thread gets the chosen id.
template <typename T>
static __device__ __forceinline__ int flint_draw(const FlintLogits<T>& x, int vocab, int v0, int v1, float m,
                                                 const FlintSampling& p, int position_of_new, float* red_f, int* red_i) {
    const unsigned position = (unsigned)position_of_new;
    const float t = p.temperature;
    // Top-k: the largest key T with count(key >= T) >= k.
    unsigned threshold = 0u;
    if (p.top_k > 0 && p.top_k < vocab) {
        unsigned lo = 0u, hi = 0xffffffffu;
        while (lo < hi) {
            const unsigned mid = lo + (unsigned)(((unsigned long long)hi - lo + 1ull) >> 1);
            int count = 0;
            for (int v = v0; v < v1; ++v) count += flint_key(x(v)) >= mid;
            if (flint_block_reduce(count, red_i, FlintAdd()) >= p.top_k) lo = mid;
            else hi = mid - 1u;
        }
        threshold = lo;
    }
    // Top-p: the smallest key T whose mass strictly above is < top_p of the kept mass.
    if (p.top_p < 1.0f) {
        float kept = 0.0f;
        for (int v = v0; v < v1; ++v) {
            const float xv = x(v);
            if (flint_key(xv) >= threshold) kept += expf((xv - m) / t);
        }
        const float limit = p.top_p * flint_block_reduce(kept, red_f, FlintAdd());
        unsigned lo = 0u, hi = 0xffffffffu;
        while (lo < hi) {
            const unsigned mid = lo + ((hi - lo) >> 1);
            float above = 0.0f;
            for (int v = v0; v < v1; ++v) {
                const float xv = x(v);
                const unsigned k = flint_key(xv);
                if (k >= threshold && k > mid) above += expf((xv - m) / t);
            }
            if (flint_block_reduce(above, red_f, FlintAdd()) < limit) hi = mid;
            else lo = mid + 1u;
        }
        threshold = lo > threshold ? lo : threshold;
    }

    // The draw, in vocabulary order.
    float mine = 0.0f;
    for (int v = v0; v < v1; ++v) {
        const float xv = x(v);
        if (flint_key(xv) >= threshold) mine += expf((xv - m) / t);
    }
    float total;
    const float before = flint_block_exclusive_scan(mine, red_f, &total);
    const unsigned long long seed = ((unsigned long long)p.seed_hi << 32) | p.seed_lo;
    const unsigned long long bits64 = flint_splitmix64(seed ^ flint_splitmix64((unsigned long long)position));
    const float target = (float)(unsigned)(bits64 >> 40) * (1.0f / 16777216.0f) * total;
    // The first chunk whose end passes the target claims it. (Testing `before <= target` as well would
    // leave gaps: the next chunk's `before` is computed differently and can round above this end.)
    int pick = 0x7fffffff, last_kept = -1;
    if (mine > 0.0f && target < before + mine) {
        float running = before;
        for (int v = v0; v < v1; ++v) {
            const float xv = x(v);
            if (flint_key(xv) < threshold) continue;
            running += expf((xv - m) / t);
            last_kept = v;
            if (running > target) {
                pick = v;
                break;
            }
        }
        if (pick == 0x7fffffff) pick = last_kept;  // rounding inside the chunk
    }
    for (int v = v1 - 1; v >= v0 && last_kept < 0; --v)
        if (flint_key(x(v)) >= threshold) last_kept = v;
    pick = flint_block_reduce(pick, red_i, FlintMin());
    if (pick == 0x7fffffff) pick = flint_block_reduce(last_kept, red_i, FlintMax());  // rounding at the very end
    return pick;
}

// Step 5: the raw row's log-softmax for the chosen token and the top min(n, k) tokens (n < 0: none).
// m_raw: the row's largest raw logit. Ranks are found one at a time: the largest logit strictly
// after the previous rank in (logit descending, id ascending) order.
template <typename T>
static __device__ __forceinline__ void flint_write_logprobs(const T* row, int v0, int v1, int pick, float m_raw, int n, int k,
                                                           int* top_ids, float* logprobs, float* red_f, int* red_i) {
    const int tid = threadIdx.x;
    if (n < 0) {
        for (int j = tid; j < k; j += blockDim.x) top_ids[j] = -1;
        for (int j = tid; j <= k; j += blockDim.x) logprobs[j] = 0.0f;
        return;  // n is the sequence's: uniform over the block
    }
    float sum = 0.0f;
    for (int v = v0; v < v1; ++v) sum += expf(flint_load(row, v) - m_raw);
    const float log_sum = m_raw + logf(flint_block_reduce(sum, red_f, FlintAdd()));
    if (tid == 0) logprobs[0] = flint_load(row, pick) - log_sum;
    const int count = n < k ? n : k;
    float prev = INFINITY;
    int prev_id = -1;
    for (int j = 0; j < k; ++j) {
        if (j >= count) {
            if (tid == 0) {
                top_ids[j] = -1;
                logprobs[1 + j] = 0.0f;
            }
            continue;
        }
        float best = -INFINITY;
        int best_id = 0x7fffffff;
        for (int v = v0; v < v1; ++v) {
            const float xv = flint_load(row, v);
            const bool after = xv < prev || (xv == prev && v > prev_id);
            if (after && (xv > best || best_id == 0x7fffffff)) {
                best = xv;
                best_id = v;
            }
        }
        const float top = flint_block_reduce(best_id == 0x7fffffff ? -INFINITY : best, red_f, FlintMax());
        const int id = flint_block_reduce(best_id != 0x7fffffff && best == top ? best_id : 0x7fffffff, red_i, FlintMin());
        if (tid == 0) {  // fewer tokens than ranks: the rest as unrequested
            top_ids[j] = id == 0x7fffffff ? -1 : id;
            logprobs[1 + j] = id == 0x7fffffff ? 0.0f : top - log_sum;
        }
        prev = top;
        prev_id = id;
    }
}

template <typename T>
static __device__ __forceinline__ void flint_sample_tokens(const T* logits, int ld, int vocab, const int* ids,
                                                            const int* starts, const int* lengths, const int* positions,
                                                            const int* slots, unsigned* seen, int words, int* counts,
                                                            const FlintSampling* params, int* out, int* top_ids, int k,
                                                            float* logprobs) {
    __shared__ float red_f[32];
    __shared__ int red_i[32];
    const int s = blockIdx.x;
    const int len = lengths[s];
    if (len <= 0) return;  // whole block: before any barrier
    const int tid = threadIdx.x, nt = blockDim.x;
    const int first = starts[s];
    unsigned* bits = seen + (long)slots[s] * words;
    int* generated = counts + (long)slots[s] * vocab;
    if (positions[first] == 0) {
        for (int i = tid; i < words; i += nt) bits[i] = 0u;
        for (int i = tid; i < vocab; i += nt) generated[i] = 0;
    }
    __syncthreads();
    for (int i = tid; i < len; i += nt) {
        const int id = ids[first + i];
        atomicOr(&bits[id >> 5], 1u << (id & 31));
    }
    __syncthreads();

    const FlintSampling p = params[s];
    const bool greedy = p.temperature == 0.0f;
    FlintLogits<T> x;
    x.row = logits + (long)s * ld;
    x.seen = bits;
    x.counts = generated;
    x.penalty = p.repetition_penalty;
    x.presence = p.presence_penalty;
    x.frequency = p.frequency_penalty;

    const int chunk = (vocab + nt - 1) / nt;
    const int v0 = tid * chunk < vocab ? tid * chunk : vocab;
    const int v1 = v0 + chunk < vocab ? v0 + chunk : vocab;

    // Largest logit; greedy: the lowest id holding it. A NaN or infinite logit (all exponent bits
    // set) makes the row's id -1, which the host turns into FlintError.nonFinite naming the step.
    float best = -INFINITY, best_raw = -INFINITY;
    int best_id = 0x7fffffff;
    int non_finite = 0;
    for (int v = v0; v < v1; ++v) {
        const float raw = flint_load(x.row, v);
        non_finite |= (__float_as_uint(raw) & 0x7f800000u) == 0x7f800000u;
        best_raw = raw > best_raw ? raw : best_raw;
        const float xv = x.penalized(v, raw);
        if (xv > best) {
            best = xv;
            best_id = v;
        }
    }
    if (flint_block_reduce(non_finite, red_i, FlintMax())) {
        if (tid == 0) out[s] = -1;
        return;  // every thread: the reduction's result is the block's
    }
    const float m = flint_block_reduce(best, red_f, FlintMax());
    int pick;
    if (greedy) {
        const int id = flint_block_reduce(best == m ? best_id : 0x7fffffff, red_i, FlintMin());
        pick = id == 0x7fffffff ? 0 : id;  // an all -inf row: id 0, as the CPU
    } else {
        pick = flint_draw(x, vocab, v0, v1, m, p, positions[first + len - 1] + 1, red_f, red_i);
    }
    if (tid == 0) {
        out[s] = pick;
        if (pick >= 0) generated[pick] += 1;
    }
    flint_write_logprobs(x.row, v0, v1, pick, flint_block_reduce(best_raw, red_f, FlintMax()), p.logprobs, k,
                         top_ids + (long)s * k, logprobs + (long)s * (k + 1), red_f, red_i);
}


// __launch_bounds__: 1024 threads per block leave at most 64 registers per thread.
#define FLINT_SAMPLING_KERNELS(SUFFIX, T)                                                                          \
    extern "C" __global__ void __launch_bounds__(FLINT_SAMPLE_THREADS) sample_tokens_##SUFFIX(                    \
        const T* logits, int ld, int vocab, const int* ids, const int* starts, const int* lengths,               \
        const int* positions, const int* slots, unsigned* seen, int words, int* counts, const FlintSampling* params, \
        int* out, int* top_ids, int k, float* logprobs) {                                                         \
        flint_sample_tokens<T>(logits, ld, vocab, ids, starts, lengths, positions, slots, seen, words, counts, params, \
                               out, top_ids, k, logprobs);                                                        \
    }

FLINT_SAMPLING_KERNELS(f32, float)
FLINT_SAMPLING_KERNELS(f16, __half)
FLINT_SAMPLING_KERNELS(bf16, __nv_bfloat16)
