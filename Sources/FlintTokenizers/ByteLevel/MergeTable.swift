/// BPE merge ranks keyed by the pair of ids they join: `(left, right) -> rank`.
///
/// The inner loop of `BytePairEncoding` asks this table for every adjacent pair of a word, so it
/// is a flat open-addressing table (linear probing, load factor <= 0.5, Fibonacci hashing) over
/// manually allocated storage rather than a `Dictionary` (whose SipHash costs more than the
/// probe itself). Immutable once built, hence safe to share between threads.
final class MergeTable: @unchecked Sendable {
    /// Rank returned for a pair that has no merge; larger than every real rank.
    static let none = Int32.max
    private static let empty = UInt64.max

    private let keys: UnsafeMutablePointer<UInt64>
    private let ranks: UnsafeMutablePointer<Int32>
    private let mask: Int
    private let shift: UInt64
    /// `newIds[rank]` is the id of the token merge `rank` produces.
    let newIds: [Int32]
    let count: Int

    /// `merges[rank]` = (left id, right id, merged id). A pair listed twice keeps its last rank,
    /// as in HF (its merge map is built by inserting in order).
    init(_ merges: [(left: Int32, right: Int32, merged: Int32)]) {
        var size = 16
        var bits: UInt64 = 4
        while size < merges.count * 2 {
            size <<= 1
            bits += 1
        }
        mask = size - 1
        shift = 64 - bits
        keys = .allocate(capacity: size)
        keys.initialize(repeating: Self.empty, count: size)
        ranks = .allocate(capacity: size)
        ranks.initialize(repeating: Self.none, count: size)
        var n = 0
        for (rank, m) in merges.enumerated() {
            let key = Self.key(m.left, m.right)
            var slot = Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
            while keys[slot] != Self.empty && keys[slot] != key { slot = (slot + 1) & mask }
            if keys[slot] == Self.empty { n += 1 }
            keys[slot] = key
            ranks[slot] = Int32(rank)
        }
        count = n
        newIds = merges.map(\.merged)
    }

    deinit {
        keys.deallocate()
        ranks.deallocate()
    }

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// The rank of merging `a` then `b`, or `MergeTable.none`.
    @inline(__always)
    func rank(_ a: Int32, _ b: Int32) -> Int32 {
        let key = Self.key(a, b)
        var slot = Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while true {
            let k = keys[slot]
            if k == key { return ranks[slot] }
            if k == Self.empty { return Self.none }
            slot = (slot + 1) & mask
        }
    }
}
