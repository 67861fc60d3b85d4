/// Launch geometry of the kernels in Kernels/*.cu, in one place: the host launches exactly what
/// each kernel file's header comment documents.
enum KernelGeometry {
    struct Launch: Equatable {
        var grid: (UInt32, UInt32, UInt32)
        var block: (UInt32, UInt32, UInt32)
        var shared: UInt32

        static func == (a: Launch, b: Launch) -> Bool {
            a.grid == b.grid && a.block == b.block && a.shared == b.shared
        }
    }

    /// Row kernels (embedding/LayerNorm, bias+activation, pooling, normalize): one block of 256
    /// threads per row, reductions in static shared memory.
    static func rows(_ rows: Int) -> Launch {
        Launch(grid: (UInt32(max(rows, 1)), 1, 1), block: (256, 1, 1), shared: 0)
    }

    /// Attention (attention.cu): blocks of 16 queries (4 warps, exactly 128 threads) per head, one
    /// per entry of the (sequence, query block) work list. Head dims above `maxHeadDim` are not
    /// supported by the kernel.
    static let queriesPerBlock = 16
    static let maxHeadDim = 128
    static func attention(queryBlocks: Int, heads: Int) -> Launch {
        Launch(grid: (UInt32(max(queryBlocks, 1)), UInt32(heads), 1), block: (128, 1, 1), shared: 0)
    }

    /// Entries of attention's work list a bucket needs: a sequence of length l has ceil(l / 16)
    /// query blocks <= l / 16 + 1, so any batch of the bucket fits in tokens / 16 + sequences.
    static func queryBlockCapacity(tokens: Int, sequences: Int) -> Int {
        (tokens + queriesPerBlock - 1) / queriesPerBlock + sequences
    }

    /// attention.cu's work list for sequences of `lengths`: (sequence, query block) pairs, then
    /// (-1, 0) pairs up to `capacity` (blocks that exit at once).
    static func queryBlocks(lengths: [Int32], capacity: Int) -> [Int32] {
        var list: [Int32] = []
        list.reserveCapacity(2 * capacity)
        for (s, length) in lengths.enumerated() {
            for block in 0..<((Int(length) + queriesPerBlock - 1) / queriesPerBlock) { list += [Int32(s), Int32(block)] }
        }
        while list.count < 2 * capacity { list += [-1, 0] }
        return list
    }

    /// Decode attention (attention.cu): one block of exactly 128 threads (4 warps) per head and sequence.
    static func decodeAttention(heads: Int, sequences: Int) -> Launch {
        Launch(grid: (UInt32(heads), UInt32(max(sequences, 1)), 1), block: (128, 1, 1), shared: 0)
    }

    /// Sampling (sampling.cu): one block of exactly 1024 threads per sequence.
    static func sampling(sequences: Int) -> Launch {
        Launch(grid: (UInt32(max(sequences, 1)), 1, 1), block: (1024, 1, 1), shared: 0)
    }
}
