/// Planned memory: every intermediate buffer of a plan gets a fixed offset in one allocation.
///
/// Buffers whose lifetimes (first and last step that touch them) do not overlap share memory.
/// Placement is greedy by decreasing size into the lowest offset that is free for the buffer's
/// whole lifetime (the classic offline "interval colouring" heuristic used by TFLite and
/// TensorRT planners); it is optimal for the chain-like graphs of transformers in practice and
/// always correct. Offsets are aligned to `alignment` bytes (256: enough for AVX-512 and CUDA).
public struct ArenaLayout: Sendable, Equatable {
    public struct Request: Sendable, Equatable {
        public var bytes: Int
        public var firstStep: Int
        public var lastStep: Int
        public init(bytes: Int, firstStep: Int, lastStep: Int) {
            self.bytes = bytes
            self.firstStep = firstStep
            self.lastStep = lastStep
        }
    }

    /// Byte offset of each request, in request order.
    public private(set) var offsets: [Int]
    /// Bytes the arena needs.
    public private(set) var totalBytes: Int
    public static let alignment = 256
    /// Sizes and offsets saturate here (2^61 bytes, far beyond any memory).
    static let limit = 1 << 61

    public init(_ requests: [Request]) {
        func align(_ n: Int) -> Int { (min(n, Self.limit) + Self.alignment - 1) / Self.alignment * Self.alignment }
        // Sums saturate at `limit`: an absurd request must end in an allocation error, not an overflow.
        func add(_ a: Int, _ b: Int) -> Int { min(a, Self.limit) + min(b, Self.limit) }
        var offsets = [Int](repeating: 0, count: requests.count)
        var placed: [(offset: Int, end: Int, first: Int, last: Int)] = []
        let order = requests.indices.sorted {
            requests[$0].bytes > requests[$1].bytes || (requests[$0].bytes == requests[$1].bytes && $0 < $1)
        }
        var total = 0
        for i in order {
            let r = requests[i]
            let size = align(max(r.bytes, 1))
            // Blocks alive at the same time as this request, by offset.
            let conflicts = placed.filter { $0.first <= r.lastStep && r.firstStep <= $0.last }.sorted { $0.offset < $1.offset }
            var candidate = 0
            for c in conflicts {
                if add(candidate, size) <= c.offset { break }
                candidate = max(candidate, c.end)
            }
            offsets[i] = candidate
            placed.append((candidate, min(add(candidate, size), Self.limit), r.firstStep, r.lastStep))
            total = min(max(total, add(candidate, size)), Self.limit)
        }
        self.offsets = offsets
        self.totalBytes = total
    }
}
