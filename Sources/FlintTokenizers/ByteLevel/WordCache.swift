import Synchronization

/// A thread-safe memo of BPE results: word bytes -> [(token id, end byte)].
///
/// Like HF's BPE cache it holds at most `capacity` words and simply stops inserting when full
/// (no eviction), and only words shorter than `maxWordBytes` are kept. It is split into shards,
/// each behind its own lock, so that threads tokenizing different words rarely wait for each
/// other.
final class WordCache: Sendable {
    /// HF's `MAX_LENGTH`: longer words are not cached.
    static let maxWordBytes = 256
    static let shardCount = 16

    private struct State {
        var table = ByteStringTable(capacity: 64)
        /// Per entry, at the offset stored in `table`: the token count, then (id, end) pairs.
        var arena: [Int32] = []
    }

    private final class Shard: Sendable {
        let state = Mutex(State())
    }

    private let shards: [Shard]
    private let capacityPerShard: Int

    init(capacity: Int) {
        shards = (0..<Self.shardCount).map { _ in Shard() }
        capacityPerShard = (capacity + Self.shardCount - 1) / Self.shardCount
    }

    @inline(__always)
    private func shard(_ key: UnsafeBufferPointer<UInt8>) -> Shard {
        // Cheap mix of length and edge bytes; the table hashes the whole key itself.
        var h = UInt32(key.count) &* 0x9E37_79B9
        h ^= UInt32(key[0]) &* 0x85EB_CA6B
        h ^= UInt32(key[key.count - 1]) &* 0xC2B2_AE35
        if key.count > 2 { h ^= UInt32(key[key.count >> 1]) &* 0x27D4_EB2F }
        return shards[Int((h ^ (h >> 15)) & UInt32(Self.shardCount - 1))]
    }

    /// Copies the cached tokens of `key` into `ids` / `ends` and returns their count, or nil.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>, ids: inout [Int32], ends: inout [Int32]) -> Int? {
        shard(key).state.withLock { state -> Int? in
            guard let offset = state.table.lookup(key) else { return nil }
            let o = Int(offset)
            let n = Int(state.arena[o])
            if ids.count < n { ids.append(contentsOf: repeatElement(0, count: n - ids.count)) }
            if ends.count < n { ends.append(contentsOf: repeatElement(0, count: n - ends.count)) }
            for k in 0..<n {
                ids[k] = state.arena[o + 1 + 2 * k]
                ends[k] = state.arena[o + 2 + 2 * k]
            }
            return n
        }
    }

    /// Remembers the tokens of `key` unless the shard is full.
    func insert(_ key: UnsafeBufferPointer<UInt8>, ids: UnsafeBufferPointer<Int32>, ends: UnsafeBufferPointer<Int32>) {
        shard(key).state.withLock { state in
            guard state.table.count < capacityPerShard, state.table.lookup(key) == nil else { return }
            state.table.insert(bytes: key, value: Int32(state.arena.count))
            state.arena.append(Int32(ids.count))
            for k in 0..<ids.count {
                state.arena.append(ids[k])
                state.arena.append(ends[k])
            }
        }
    }
}
