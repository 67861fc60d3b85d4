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

    /// Attention (attention.cu): blocks of 16 queries (4 warps, exactly 128 threads), per head, per
    /// sequence; blocks past a sequence's length exit at once, so the grid covers the bucket's
    /// longest possible sequence. Head dims above `maxHeadDim` are not supported by the kernel.
    static let queriesPerBlock = 16
    static let maxHeadDim = 128
    static func attention(maxLength: Int, heads: Int, sequences: Int, headDim: Int) -> Launch {
        let blocks = (max(maxLength, 1) + queriesPerBlock - 1) / queriesPerBlock
        return Launch(grid: (UInt32(blocks), UInt32(heads), UInt32(max(sequences, 1))), block: (128, 1, 1), shared: 0)
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
