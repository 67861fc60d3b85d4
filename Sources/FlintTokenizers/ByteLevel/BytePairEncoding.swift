/// Byte-level Byte-Pair Encoding (Hugging Face `models::bpe::BPE` as GPT-2 uses it).
///
/// Vocabulary tokens are written in the byte-level alphabet ("Ġthe" is the bytes " the"), but the
/// model never builds such strings while tokenizing: a word's UTF-8 bytes start as one symbol
/// each (the id of that byte's single-scalar token), and merges are applied to ids, lowest rank
/// first and leftmost first among equals, which is the order HF's `Word::merge_all` produces.
///
/// Short words are merged by rescanning an array of pair ranks (no allocation, cache friendly);
/// long ones with a linked list and a binary min-heap keyed (rank, position) like HF, so the
/// cost stays O(n log n). Results of words up to 255 bytes are memoized in a shared, bounded
/// cache, as HF does.
public final class BytePairEncoding: TokenizationModel, Sendable {
    /// Byte-level token string (UTF-8 bytes) -> id.
    let vocab: ByteStringTable
    /// id -> token string, for `token(forId:)`.
    private let tokensById: TokensById
    /// `byteIds[b]`: id of the token that is byte `b` alone.
    let byteIds: [Int32]
    let merges: MergeTable
    private let cache: WordCache?

    public var vocabularySize: Int { vocab.count }

    /// Words with more bytes than this are merged with the heap instead of by rescanning.
    static let scanLimit = 128

    /// Builds the model from vocabulary entries (token in the byte-level alphabet, id) and the
    /// merges in rank order. `path` names the source in error messages.
    ///
    /// Throws `.malformedFile` when an id is negative, when one of the 256 single-byte tokens is
    /// missing, or when a merge names a token (or produces one) that is not in the vocabulary.
    /// A token listed twice keeps its last id; a merge listed twice keeps its last rank (as HF).
    public init(
        vocab entries: [(String, Int32)], merges: [(String, String)], path: String,
        cacheCapacity: Int = 10_000
    ) throws(TokenizerError) {
        var table = ByteStringTable(capacity: entries.count)
        for (token, id) in entries {
            guard id >= 0 else {
                throw .malformedFile(path: path, reason: "token \(Self.quoted(token)) has negative id \(id)")
            }
            table.insert(token, value: id)
        }
        var byteIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let symbol = String(ByteLevelAlphabet.scalar(for: UInt8(b)))
            guard let id = table.lookup(symbol) else {
                throw .malformedFile(
                    path: path,
                    reason: "the vocabulary has no token for byte "
                        + "0x\(String(b, radix: 16, uppercase: true)) (\(Self.quoted(symbol))); "
                        + "byte-level BPE needs all 256 single-byte tokens")
            }
            byteIds[b] = id
        }
        var triples: [(left: Int32, right: Int32, merged: Int32)] = []
        triples.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            func missing(_ t: String) -> TokenizerError {
                .malformedFile(
                    path: path,
                    reason: "merge \(rank + 1) (\(Self.quoted(a + " " + b))): "
                        + "token \(Self.quoted(t)) is not in the vocabulary")
            }
            guard let left = table.lookup(a) else { throw missing(a) }
            guard let right = table.lookup(b) else { throw missing(b) }
            guard let merged = table.lookup(a + b) else { throw missing(a + b) }
            triples.append((left, right, merged))
        }
        self.vocab = table
        self.byteIds = byteIds
        self.merges = MergeTable(triples)
        self.tokensById = TokensById(table.entries)
        self.cache = cacheCapacity > 0 ? WordCache(capacity: cacheCapacity) : nil
    }

    /// `s` in quotes for a message, escaped; a long string is cut to its first 64 characters (a
    /// hostile file's line must not be copied whole into an error).
    static func quoted(_ s: String) -> String {
        let limit = 64
        let shown = s.unicodeScalars.prefix(limit).map { $0.escaped(asASCII: false) }.joined()
        if s.unicodeScalars.count <= limit { return "\"" + shown + "\"" }
        return "\"" + shown + "\"... (\(s.utf8.count) bytes in all)"
    }

    public func id(forToken token: String) -> Int32? { vocab.lookup(token) }

    public func token(forId id: Int32) -> String? { tokensById[id] }

    // MARK: - Tokenizing

    public func tokenize(
        _ text: NormalizedText, word: Range<Int>, into tokens: inout [ModelToken],
        scratch: inout ModelScratch
    ) {
        if word.isEmpty { return }
        // UTF-8 bytes of the word, and for each byte the index (in the word) of its scalar.
        let maxBytes = word.count * 4
        if scratch.bytes.count < maxBytes {
            scratch.bytes = [UInt8](repeating: 0, count: max(maxBytes, 2 * scratch.bytes.count))
            scratch.positions = [Int32](repeating: 0, count: scratch.bytes.count)
        }
        let n = text.scalars.withUnsafeBufferPointer { scalars in
            scratch.bytes.withUnsafeMutableBufferPointer { bytes in
                scratch.positions.withUnsafeMutableBufferPointer { positions in
                    Self.encodeUTF8(scalars, word, bytes.baseAddress!, positions.baseAddress!)
                }
            }
        }
        let base = Int32(word.lowerBound)
        if n == 1 {
            tokens.append(ModelToken(id: byteIds[Int(scratch.bytes[0])], start: base, end: base + 1))
            return
        }
        let useCache = cache != nil && n < WordCache.maxWordBytes
        var m = -1
        if useCache {
            m =
                scratch.bytes.withUnsafeBufferPointer { bytes in
                    cache!.lookup(UnsafeBufferPointer(rebasing: bytes[0..<n]), ids: &scratch.symbols, ends: &scratch.links)
                } ?? -1
        }
        if m < 0 {
            m = merge(count: n, scratch: &scratch)
            if useCache {
                scratch.bytes.withUnsafeBufferPointer { bytes in
                    scratch.symbols.withUnsafeBufferPointer { ids in
                        scratch.links.withUnsafeBufferPointer { ends in
                            cache!.insert(
                                UnsafeBufferPointer(rebasing: bytes[0..<n]),
                                ids: UnsafeBufferPointer(rebasing: ids[0..<m]),
                                ends: UnsafeBufferPointer(rebasing: ends[0..<m]))
                        }
                    }
                }
            }
        }
        // Emit: a token's span runs from the scalar of its first byte to that of its last.
        scratch.positions.withUnsafeBufferPointer { positions in
            scratch.symbols.withUnsafeBufferPointer { ids in
                scratch.links.withUnsafeBufferPointer { ends in
                    var startByte = 0
                    for k in 0..<m {
                        let endByte = Int(ends[k])
                        tokens.append(
                            ModelToken(
                                id: ids[k], start: base + positions[startByte],
                                end: base + positions[endByte - 1] + 1))
                        startByte = endByte
                    }
                }
            }
        }
    }

    /// Writes the UTF-8 encoding of `scalars[word]`; returns the byte count.
    @inline(__always)
    static func encodeUTF8(
        _ scalars: UnsafeBufferPointer<Unicode.Scalar>, _ word: Range<Int>,
        _ bytes: UnsafeMutablePointer<UInt8>, _ positions: UnsafeMutablePointer<Int32>
    ) -> Int {
        var n = 0
        var index: Int32 = 0
        for k in word {
            let v = scalars[k].value
            if v < 0x80 {
                bytes[n] = UInt8(v)
                positions[n] = index
                n += 1
            } else if v < 0x800 {
                bytes[n] = UInt8(0xC0 | (v >> 6))
                bytes[n + 1] = UInt8(0x80 | (v & 0x3F))
                positions[n] = index
                positions[n + 1] = index
                n += 2
            } else if v < 0x10000 {
                bytes[n] = UInt8(0xE0 | (v >> 12))
                bytes[n + 1] = UInt8(0x80 | ((v >> 6) & 0x3F))
                bytes[n + 2] = UInt8(0x80 | (v & 0x3F))
                positions[n] = index
                positions[n + 1] = index
                positions[n + 2] = index
                n += 3
            } else {
                bytes[n] = UInt8(0xF0 | (v >> 18))
                bytes[n + 1] = UInt8(0x80 | ((v >> 12) & 0x3F))
                bytes[n + 2] = UInt8(0x80 | ((v >> 6) & 0x3F))
                bytes[n + 3] = UInt8(0x80 | (v & 0x3F))
                positions[n] = index
                positions[n + 1] = index
                positions[n + 2] = index
                positions[n + 3] = index
                n += 4
            }
            index += 1
        }
        return n
    }

    /// Merges the `n` bytes in `scratch.bytes`; leaves the token ids in `scratch.symbols` and
    /// their end bytes in `scratch.links` and returns the token count.
    func merge(count n: Int, scratch: inout ModelScratch, forceHeap: Bool = false) -> Int {
        if scratch.symbols.count < n {
            scratch.symbols = [Int32](repeating: 0, count: max(n, 2 * scratch.symbols.count))
        }
        if scratch.links.count < 2 * n {
            scratch.links = [Int32](repeating: 0, count: max(2 * n, 2 * scratch.links.count))
        }
        return scratch.bytes.withUnsafeBufferPointer { bytes in
            scratch.symbols.withUnsafeMutableBufferPointer { ids in
                scratch.links.withUnsafeMutableBufferPointer { links in
                    byteIds.withUnsafeBufferPointer { byteIds in
                        for i in 0..<n { ids[i] = byteIds[Int(bytes[i])] }
                    }
                    if n <= Self.scanLimit && !forceHeap {
                        return mergeByScanning(
                            n, ids.baseAddress!, ends: links.baseAddress!,
                            ranks: links.baseAddress! + n)
                    }
                    return mergeWithHeap(n, ids.baseAddress!, ends: links.baseAddress!)
                }
            }
        }
    }

    /// The (id, end byte) tokens of `bytes`, bypassing the cache (for tests of both merge paths).
    func mergeBytes(_ bytes: [UInt8], forceHeap: Bool) -> [(id: Int32, end: Int32)] {
        guard !bytes.isEmpty else { return [] }
        var scratch = ModelScratch()
        scratch.bytes = bytes
        let m = merge(count: bytes.count, scratch: &scratch, forceHeap: forceHeap)
        return (0..<m).map { (scratch.symbols[$0], scratch.links[$0]) }
    }

    /// Repeatedly merges the leftmost lowest-rank pair, keeping one rank per adjacent pair.
    @inline(__always)
    private func mergeByScanning(
        _ n: Int, _ ids: UnsafeMutablePointer<Int32>, ends: UnsafeMutablePointer<Int32>,
        ranks: UnsafeMutablePointer<Int32>
    ) -> Int {
        let merges = self.merges
        var m = n
        for i in 0..<n { ends[i] = Int32(i + 1) }
        for i in 0..<(n - 1) { ranks[i] = merges.rank(ids[i], ids[i + 1]) }
        merges.newIds.withUnsafeBufferPointer { newIds in
            while m > 1 {
                var best = MergeTable.none
                var at = 0
                for i in 0..<(m - 1) where ranks[i] < best {
                    best = ranks[i]
                    at = i
                }
                if best == MergeTable.none { break }
                ids[at] = newIds[Int(best)]
                ends[at] = ends[at + 1]
                // Drop symbol at + 1 (and the rank of pair (at, at + 1)).
                var k = at + 1
                while k < m - 1 {
                    ids[k] = ids[k + 1]
                    ends[k] = ends[k + 1]
                    k += 1
                }
                k = at + 1
                while k < m - 2 {
                    ranks[k] = ranks[k + 1]
                    k += 1
                }
                m -= 1
                if at > 0 { ranks[at - 1] = merges.rank(ids[at - 1], ids[at]) }
                if at < m - 1 { ranks[at] = merges.rank(ids[at], ids[at + 1]) }
            }
        }
        return m
    }

    /// HF's `Word::merge_all`: a linked list of symbols and a min-heap of candidate merges keyed
    /// (rank, position); stale entries are skipped when popped. Writes the result compacted into
    /// `ids` / `ends`.
    private func mergeWithHeap(_ n: Int, _ ids: UnsafeMutablePointer<Int32>, ends: UnsafeMutablePointer<Int32>) -> Int {
        let merges = self.merges
        // Symbols live at their first byte's index; `length` 0 marks one merged away.
        var length = [Int32](repeating: 1, count: n)
        var prev = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = Int32(i - 1) }
            count = n
        }
        var next = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = i + 1 < n ? Int32(i + 1) : -1 }
            count = n
        }
        var heap = MinHeap(capacity: n)
        for i in 0..<(n - 1) {
            let r = merges.rank(ids[i], ids[i + 1])
            if r != MergeTable.none { heap.push(rank: r, position: Int32(i)) }
        }
        merges.newIds.withUnsafeBufferPointer { newIds in
            while let top = heap.pop() {
                let pos = Int(top.position)
                if length[pos] == 0 { continue }
                let right = Int(next[pos])
                if right < 0 { continue }
                // Skip entries made stale by an earlier merge (HF compares the merged id).
                let current = merges.rank(ids[pos], ids[right])
                if current == MergeTable.none || newIds[Int(current)] != newIds[Int(top.rank)] { continue }
                ids[pos] = newIds[Int(top.rank)]
                length[pos] += length[right]
                length[right] = 0
                let after = next[right]
                next[pos] = after
                if after >= 0 { prev[Int(after)] = Int32(pos) }
                let before = prev[pos]
                if before >= 0 {
                    let r = merges.rank(ids[Int(before)], ids[pos])
                    if r != MergeTable.none { heap.push(rank: r, position: before) }
                }
                if after >= 0 {
                    let r = merges.rank(ids[pos], ids[Int(after)])
                    if r != MergeTable.none { heap.push(rank: r, position: Int32(pos)) }
                }
            }
        }
        var m = 0
        var i = 0
        while i >= 0 {
            ids[m] = ids[i]
            ends[m] = Int32(i) + length[i]
            m += 1
            i = Int(next[i])
        }
        return m
    }
}

/// A binary min-heap of (rank, position) pairs packed into one `UInt64`, so that comparing two
/// entries orders by rank, then position, like HF's `Merge` ordering.
struct MinHeap {
    private var items: [UInt64]

    init(capacity: Int) {
        items = []
        items.reserveCapacity(capacity)
    }

    mutating func push(rank: Int32, position: Int32) {
        var i = items.count
        let v = UInt64(UInt32(rank)) << 32 | UInt64(UInt32(position))
        items.append(v)
        items.withUnsafeMutableBufferPointer { h in
            while i > 0 {
                let parent = (i - 1) >> 1
                if h[parent] <= v { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = v
        }
    }

    mutating func pop() -> (rank: Int32, position: Int32)? {
        guard let last = items.popLast() else { return nil }
        if items.isEmpty { return (Int32(last >> 32), Int32(truncatingIfNeeded: last)) }
        let top = items[0]
        items.withUnsafeMutableBufferPointer { h in
            let count = h.count
            var i = 0
            while true {
                var child = 2 * i + 1
                if child >= count { break }
                if child + 1 < count && h[child + 1] < h[child] { child += 1 }
                if h[child] >= last { break }
                h[i] = h[child]
                i = child
            }
            h[i] = last
        }
        return (Int32(top >> 32), Int32(truncatingIfNeeded: top))
    }
}

/// id -> token string: a flat array when ids are dense (the usual case), a dictionary otherwise.
private enum TokensById: Sendable {
    case dense([String?])
    case sparse([Int32: String])

    init(_ entries: [(key: String, value: Int32)]) {
        let maxId = entries.map { Int($0.value) }.max() ?? -1
        if maxId < 2 * entries.count + 1024 {
            var array = [String?](repeating: nil, count: maxId + 1)
            for (token, id) in entries { array[Int(id)] = token }
            self = .dense(array)
        } else {
            var dict: [Int32: String] = [:]
            for (token, id) in entries { dict[id] = token }
            self = .sparse(dict)
        }
    }

    subscript(id: Int32) -> String? {
        switch self {
        case let .dense(array): return id >= 0 && Int(id) < array.count ? array[Int(id)] : nil
        case let .sparse(dict): return dict[id]
        }
    }
}
