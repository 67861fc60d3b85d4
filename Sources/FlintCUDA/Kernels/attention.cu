// Flint CUDA kernels: fused multi-head self-attention over a packed (padding-free) batch.
//
// What:   attention_<T>: for sequence s, head h and query row i of that sequence,
//         out[starts[s] + i, h*head_dim + d] = sum_j softmax_j(scale · q_i·k_j) · v_j[d]
//         over keys j < lengths[s] (causal != 0: j <= i). Scale, mask, softmax and P·V are fused:
//         online softmax (running max and sum, rescaled per key tile), all in fp32.
//         cached_attention_<T> (GPT-2): the same, causal, through a KV cache. Sequence s's tokens sit at
//         positions p0 = positions[starts[s]], p0 + 1, ...; query i (position p0 + i) sees the keys at
//         positions 0 ... p0 + i: those before p0 from the cache (row slots[s]·max_context + position),
//         the batch's own from its qkv rows. Each block also stores the K and V of its own query rows
//         into the cache for later steps (no block of the launch reads cache rows >= p0, so no race).
//         T = float (f32) / __half (f16) / __nv_bfloat16 (bf16): storage only, math in fp32.
// Layout: qkv is a packed batch [tokens, row_stride]; each row is [Q | K | V], hidden = heads·head_dim
//         elements each (row_stride >= 3·hidden); head h is columns h·head_dim ..< (h+1)·head_dim of each
//         part. Sequence s is rows starts[s] ..< starts[s] + lengths[s] (int32 arrays in device memory).
//         out: [tokens, out_stride], head h of token row r at out + r·out_stride + h·head_dim.
//         key_cache, value_cache: [slots · max_context, heads·head_dim], head h at column h·head_dim.
//         head_dim: 1 ... 128 (larger: the kernel writes nothing; the host must reject it).
//         Sequence length: any (keys stream through shared memory in tiles of 32).
// Launch: grid (capacity, heads, 1) (both kernels); block x takes the pair query_blocks[2x] =
//         sequence, query_blocks[2x + 1] = query block of 16 rows in it; pairs with sequence -1
//         (and past the list) exit at once. The host lists every (sequence, block) of the batch:
//         sum over s of ceil(lengths[s] / 16) <= tokens / 16 + sequences = capacity, so a graph
//         captured for a bucket launches about as many blocks as do work, however the tokens are
//         spread over its sequences (a grid of max_len / 16 per sequence left 99% of the blocks
//         idle at 128 sequences of which one is long).
//         block (128, 1, 1) exactly (4 warps; each warp owns 4 of the block's 16 query rows);
//         no dynamic shared memory (about 41 KB static: Q tile 16x128, K tile 32x129, V tile 32x128
//         floats, 4x32 probabilities).
//         decode_attention_<T>: cached_attention for batches in which every sequence brings one
//         token (decode steps), same arguments; launch grid (heads, sequences, 1), block (128, 1, 1)
//         exactly, ~2.6 KB static shared memory. Its 4 warps take the key tiles of 32 round-robin (a
//         block of cached_attention would leave 3 of its 4 warps idle on a single query): per key the
//         lanes split the head dims and a warp sum gives the score; each warp keeps its own running
//         max, sum and P·V, and the 4 partial states are merged at the end.
// Method: per key tile of 32: the block stages K and V (as fp32) in shared memory; for each of its
//         query rows a warp computes 32 scores at once (lane j: q·k_j), the tile max by warp shuffles,
//         p_j = exp(s_j - m), rescales its accumulators (lane owns dims lane, lane+32, ...), and
//         accumulates p·V from shared memory. Simple and exact; no tensor cores.
// Shared helpers (flint_load/store, warp and block sums, INFINITY): common.cuh, prepended.

#define FLINT_ATT_QB 16                                  // query rows per block
#define FLINT_ATT_KB 32                                  // keys per tile (one per lane)
#define FLINT_ATT_WARPS 4                                // block = 128 threads
#define FLINT_ATT_ROWS (FLINT_ATT_QB / FLINT_ATT_WARPS)  // query rows per warp
#define FLINT_ATT_MAX_HD 128
#define FLINT_ATT_DPL (FLINT_ATT_MAX_HD / 32)            // head dims per lane

// The cache, for cached_attention (all null / 0 for attention).
template <typename T>
struct FlintKVCache {
    const int* positions;
    const int* slots;
    T* keys;
    T* values;
    int max_context;
};

template <typename T>
static __device__ __forceinline__ void flint_attention(const T* qkv, int row_stride, const int* starts,
                                                        const int* lengths, int heads, int head_dim, float scale,
                                                        int causal, T* out, int out_stride, FlintKVCache<T> cache,
                                                        const int* query_blocks) {
    __shared__ float q_s[FLINT_ATT_QB][FLINT_ATT_MAX_HD];
    __shared__ float k_s[FLINT_ATT_KB][FLINT_ATT_MAX_HD + 1];  // +1: lane j reads row j without bank conflicts
    __shared__ float v_s[FLINT_ATT_KB][FLINT_ATT_MAX_HD];
    __shared__ float p_s[FLINT_ATT_WARPS][FLINT_ATT_KB];

    const int seq = flint_load_int(query_blocks, 2L * blockIdx.x);
    if (seq < 0) return;  // whole block: before any barrier
    const int head = blockIdx.y;
    const int len = lengths[seq];
    const int q0 = flint_load_int(query_blocks, 2L * blockIdx.x + 1) * FLINT_ATT_QB;
    if (q0 >= len || head_dim <= 0 || head_dim > FLINT_ATT_MAX_HD) return;  // whole block: before any barrier

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int nt = blockDim.x;
    const long first = starts[seq];
    const long hidden = (long)heads * head_dim;
    const T* q_base = qkv + first * row_stride + (long)head * head_dim;
    const T* k_base = q_base + hidden;
    const T* v_base = q_base + 2 * hidden;
    // Keys at positions < p0 come from the cache, the rest from the batch's own rows.
    const int p0 = cache.keys ? cache.positions[first] : 0;
    const long cache_row0 = cache.keys ? (long)cache.slots[seq] * cache.max_context : 0;
    T* k_cache = cache.keys ? cache.keys + cache_row0 * hidden + (long)head * head_dim : (T*)0;
    T* v_cache = cache.keys ? cache.values + cache_row0 * hidden + (long)head * head_dim : (T*)0;

    for (int i = tid; i < FLINT_ATT_QB * head_dim; i += nt) {
        const int r = i / head_dim;
        const int d = i - r * head_dim;
        q_s[r][d] = q0 + r < len ? flint_load(q_base, (long)(q0 + r) * row_stride + d) * scale : 0.0f;
    }

    float m[FLINT_ATT_ROWS], l[FLINT_ATT_ROWS], acc[FLINT_ATT_ROWS][FLINT_ATT_DPL];
#pragma unroll
    for (int r = 0; r < FLINT_ATT_ROWS; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int i = 0; i < FLINT_ATT_DPL; ++i) acc[r][i] = 0.0f;
    }

    const int q_end = q0 + FLINT_ATT_QB < len ? q0 + FLINT_ATT_QB : len;
    if (k_cache) {  // this block's rows into the cache, for later steps
        for (int i = tid; i < (q_end - q0) * head_dim; i += nt) {
            const int r = q0 + i / head_dim;
            const int d = i - (i / head_dim) * head_dim;
            const long dst = (long)(p0 + r) * hidden + d;
            flint_copy(k_cache, dst, k_base, (long)r * row_stride + d);
            flint_copy(v_cache, dst, v_base, (long)r * row_stride + d);
        }
    }
    const int kv_end = causal ? p0 + q_end : len;  // keys (positions) the block can see
    for (int k0 = 0; k0 < kv_end; k0 += FLINT_ATT_KB) {
        __syncthreads();  // the previous tile is consumed (first tile: Q is staged)
        for (int i = tid; i < FLINT_ATT_KB * head_dim; i += nt) {
            const int j = i / head_dim;
            const int d = i - j * head_dim;
            const int key = k0 + j;
            float kv = 0.0f, vv = 0.0f;
            if (key < p0) {
                kv = flint_load(k_cache, (long)key * hidden + d);
                vv = flint_load(v_cache, (long)key * hidden + d);
            } else if (key < kv_end) {
                kv = flint_load(k_base, (long)(key - p0) * row_stride + d);
                vv = flint_load(v_base, (long)(key - p0) * row_stride + d);
            }
            k_s[j][d] = kv;
            v_s[j][d] = vv;
        }
        __syncthreads();
        const int tile = kv_end - k0 < FLINT_ATT_KB ? kv_end - k0 : FLINT_ATT_KB;

#pragma unroll
        for (int r = 0; r < FLINT_ATT_ROWS; ++r) {
            const int qr = warp * FLINT_ATT_ROWS + r;
            const int qi = q0 + qr;
            if (qi >= len) continue;                 // warp-uniform
            if (causal && k0 > p0 + qi) continue;    // warp-uniform: the whole tile is masked for this row
            const int key = k0 + lane;
            float s = -INFINITY;
            if (key < kv_end && (!causal || key <= p0 + qi)) {
                float dot = 0.0f;
                for (int d = 0; d < head_dim; ++d) dot += q_s[qr][d] * k_s[lane][d];
                s = dot;
            }
            // Key k0 is unmasked for this row (k0 < kv_end, and k0 <= p0 + qi when causal): m_new is finite.
            const float m_new = fmaxf(m[r], flint_warp_max(s));
            const float corr = expf(m[r] - m_new);  // 0 on the first tile (m = -inf)
            const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
            l[r] = l[r] * corr + p;  // per-lane partial sum, reduced at the end
            m[r] = m_new;
            p_s[warp][lane] = p;
            __syncwarp();
#pragma unroll
            for (int i = 0; i < FLINT_ATT_DPL; ++i) acc[r][i] *= corr;
            for (int j = 0; j < tile; ++j) {
                const float pj = p_s[warp][j];
#pragma unroll
                for (int i = 0; i < FLINT_ATT_DPL; ++i) {
                    const int d = lane + 32 * i;
                    if (d < head_dim) acc[r][i] += pj * v_s[j][d];
                }
            }
            __syncwarp();  // p_s is rewritten by the next row
        }
    }

#pragma unroll
    for (int r = 0; r < FLINT_ATT_ROWS; ++r) {
        const int qi = q0 + warp * FLINT_ATT_ROWS + r;
        if (qi >= len) continue;  // warp-uniform
        const float inv = 1.0f / flint_warp_sum(l[r]);
        T* o = out + (first + qi) * out_stride + (long)head * head_dim;
#pragma unroll
        for (int i = 0; i < FLINT_ATT_DPL; ++i) {
            const int d = lane + 32 * i;
            if (d < head_dim) flint_store(o, d, acc[r][i] * inv);
        }
    }
}

template <typename T>
static __device__ __forceinline__ void flint_decode_attention(const T* qkv, int row_stride, const int* starts,
                                                               const int* lengths, const int* positions, const int* slots,
                                                               int heads, int head_dim, float scale, T* key_cache,
                                                               T* value_cache, int max_context, T* out, int out_stride) {
    __shared__ float q_s[FLINT_ATT_MAX_HD];
    __shared__ float acc_s[FLINT_ATT_WARPS][FLINT_ATT_MAX_HD];
    __shared__ float m_s[FLINT_ATT_WARPS], l_s[FLINT_ATT_WARPS];
    const int head = blockIdx.x;
    const int seq = blockIdx.y;
    if (lengths[seq] <= 0 || head_dim <= 0 || head_dim > FLINT_ATT_MAX_HD) return;  // whole block: before any barrier

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const long row = starts[seq];  // the sequence's one token
    const int p = positions[row];  // its position: it sees keys 0 ... p
    const long hidden = (long)heads * head_dim;
    const T* q = qkv + row * row_stride + (long)head * head_dim;
    const T* k_new = q + hidden;
    const T* v_new = q + 2 * hidden;
    T* k_cache = key_cache + (long)slots[seq] * max_context * hidden + (long)head * head_dim;
    T* v_cache = value_cache + (long)slots[seq] * max_context * hidden + (long)head * head_dim;
    for (int d = tid; d < head_dim; d += blockDim.x) {
        flint_copy(k_cache, (long)p * hidden + d, k_new, d);  // for later steps; key p itself is read from k_new below
        flint_copy(v_cache, (long)p * hidden + d, v_new, d);
        q_s[d] = flint_load(q, d) * scale;
    }
    __syncthreads();

    float m = -INFINITY, l = 0.0f, acc[FLINT_ATT_DPL];
#pragma unroll
    for (int i = 0; i < FLINT_ATT_DPL; ++i) acc[i] = 0.0f;
    for (int k0 = warp * FLINT_ATT_KB; k0 <= p; k0 += FLINT_ATT_WARPS * FLINT_ATT_KB) {  // warp-uniform
        const int tile = p + 1 - k0 < FLINT_ATT_KB ? p + 1 - k0 : FLINT_ATT_KB;
        float s = -INFINITY;  // lane j: the score of key k0 + j
        for (int j = 0; j < tile; ++j) {
            const int key = k0 + j;
            const T* k_row = key < p ? k_cache + (long)key * hidden : k_new;
            float partial = 0.0f;
#pragma unroll
            for (int i = 0; i < FLINT_ATT_DPL; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) partial += q_s[d] * flint_load(k_row, d);
            }
            const float dot = flint_warp_sum(partial);
            if (lane == j) s = dot;
        }
        const float m_new = fmaxf(m, flint_warp_max(s));  // key k0 <= p exists: finite
        const float corr = expf(m - m_new);
        const float pj = s == -INFINITY ? 0.0f : expf(s - m_new);
        l = l * corr + pj;
        m = m_new;
#pragma unroll
        for (int i = 0; i < FLINT_ATT_DPL; ++i) acc[i] *= corr;
        for (int j = 0; j < tile; ++j) {
            const float w = __shfl_sync(0xffffffffu, pj, j);
            const int key = k0 + j;
            const T* v_row = key < p ? v_cache + (long)key * hidden : v_new;
#pragma unroll
            for (int i = 0; i < FLINT_ATT_DPL; ++i) {
                const int d = lane + 32 * i;
                if (d < head_dim) acc[i] += w * flint_load(v_row, d);
            }
        }
    }
    // Merge the warps' partial states (a warp without keys has m = -inf and weighs 0).
    l = flint_warp_sum(l);
#pragma unroll
    for (int i = 0; i < FLINT_ATT_DPL; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) acc_s[warp][d] = acc[i];
    }
    if (lane == 0) {
        m_s[warp] = m;
        l_s[warp] = l;
    }
    __syncthreads();
    if (warp == 0) {
        float mx = -INFINITY;
        for (int w = 0; w < FLINT_ATT_WARPS; ++w) mx = fmaxf(mx, m_s[w]);
        float weight[FLINT_ATT_WARPS], total = 0.0f;
        for (int w = 0; w < FLINT_ATT_WARPS; ++w) {
            weight[w] = m_s[w] == -INFINITY ? 0.0f : expf(m_s[w] - mx);
            total += weight[w] * l_s[w];
        }
        T* o = out + row * out_stride + (long)head * head_dim;
        for (int d = lane; d < head_dim; d += 32) {
            float v = 0.0f;
            for (int w = 0; w < FLINT_ATT_WARPS; ++w) v += weight[w] * acc_s[w][d];
            flint_store(o, d, v / total);
        }
    }
}

#define FLINT_ATTENTION_KERNELS(SUFFIX, T)                                                                         \
    extern "C" __global__ void attention_##SUFFIX(const T* qkv, int row_stride, const int* starts,                \
                                                  const int* lengths, int heads, int head_dim, float scale,       \
                                                  int causal, T* out, int out_stride, const int* query_blocks) {  \
        FlintKVCache<T> none = {(const int*)0, (const int*)0, (T*)0, (T*)0, 0};                                   \
        flint_attention<T>(qkv, row_stride, starts, lengths, heads, head_dim, scale, causal, out, out_stride,     \
                           none, query_blocks);                                                                   \
    }                                                                                                             \
    extern "C" __global__ void cached_attention_##SUFFIX(                                                         \
        const T* qkv, int row_stride, const int* starts, const int* lengths, const int* positions,               \
        const int* slots, int heads, int head_dim, float scale, T* key_cache, T* value_cache, int max_context,    \
        T* out, int out_stride, const int* query_blocks) {                                                        \
        FlintKVCache<T> cache = {positions, slots, key_cache, value_cache, max_context};                          \
        flint_attention<T>(qkv, row_stride, starts, lengths, heads, head_dim, scale, 1, out, out_stride, cache,   \
                           query_blocks);                                                                         \
    }                                                                                                             \
    extern "C" __global__ void decode_attention_##SUFFIX(                                                         \
        const T* qkv, int row_stride, const int* starts, const int* lengths, const int* positions,               \
        const int* slots, int heads, int head_dim, float scale, T* key_cache, T* value_cache, int max_context,    \
        T* out, int out_stride) {                                                                                 \
        flint_decode_attention<T>(qkv, row_stride, starts, lengths, positions, slots, heads, head_dim, scale,     \
                                  key_cache, value_cache, max_context, out, out_stride);                         \
    }

FLINT_ATTENTION_KERNELS(f32, float)
FLINT_ATTENTION_KERNELS(f16, __half)
FLINT_ATTENTION_KERNELS(bf16, __nv_bfloat16)
