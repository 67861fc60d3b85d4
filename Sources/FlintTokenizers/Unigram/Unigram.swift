/// SentencePiece's unigram language model as Hugging Face `tokenizers`' `Unigram` runs it
/// (XLM-RoBERTa, T5, ALBERT...): the most likely segmentation of each word under the pieces'
/// log-probabilities (Viterbi), with unknown characters scored `min score - 10`.
///
/// Matches HF's `encode_optimized` decision for decision: candidates ending at a position are
/// compared in order of their start and, for one start, from shortest to longest, and a later
/// candidate replaces an earlier one only when strictly better. Consecutive unknown characters are
/// fused into one token (HF's `fuse_unk`, always on); a fused run that happens to be a piece gets
/// that piece's id, else with `byte_fallback` its UTF-8 bytes as `<0xXX>` pieces (all spanning the
/// run), else `unk_id`.
public struct Unigram: TokenizationModel {
    public let pieces: [String]
    let scores: [Double]
    let ids: [String: Int32]
    let trie: ScalarTrie
    public let unknownId: Int32
    let unknownScore: Double
    public let byteFallback: Bool
    /// `byteIds[b]` is the id of the piece `<0xXX>` for byte `b`, or -1.
    let byteIds: [Int32]

    /// Refuses what HF would refuse when loading, and a missing `unk_id`: HF loads such a file but
    /// fails on the first character outside the vocabulary, which Flint reports up front instead.
    public init(vocabulary: [(String, Double)], unknownId: Int?, byteFallback: Bool, path: String) throws(TokenizerError) {
        guard !vocabulary.isEmpty else {
            throw .malformedFile(path: path, reason: "model.vocab is empty; a Unigram model needs at least <unk>")
        }
        guard let unknownId else {
            throw .malformedFile(path: path, reason: "model.unk_id is null; Flint needs the id of the unknown piece "
                                     + "(Hugging Face fails on the first character outside the vocabulary)")
        }
        guard unknownId >= 0, unknownId < vocabulary.count else {
            throw .malformedFile(path: path, reason: "model.unk_id \(unknownId) is outside the vocabulary of \(vocabulary.count) pieces")
        }
        guard vocabulary.count <= Int(Int32.max) else { throw .malformedFile(path: path, reason: "model.vocab has too many pieces") }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(vocabulary.count)
        var minScore = Double.infinity
        for (i, (piece, score)) in vocabulary.enumerated() {
            ids[piece] = Int32(i)
            minScore = min(minScore, score)
        }
        var trie = ScalarTrie()
        // A duplicated piece resolves to its last id, as HF's token map does.
        for (piece, id) in ids { trie.insert(piece, id: id) }
        var byteIds = [Int32](repeating: -1, count: 256)
        if byteFallback {
            for b in 0..<256 { byteIds[b] = ids[Self.bytePiece(UInt8(b))] ?? -1 }
        }
        pieces = vocabulary.map(\.0)
        scores = vocabulary.map(\.1)
        self.ids = ids
        self.trie = trie
        self.unknownId = Int32(unknownId)
        unknownScore = minScore - 10
        self.byteFallback = byteFallback
        self.byteIds = byteIds
    }

    static func bytePiece(_ b: UInt8) -> String {
        let hex = Array("0123456789ABCDEF")
        return "<0x" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)]) + ">"
    }

    public var vocabularySize: Int { pieces.count }
    public func id(forToken token: String) -> Int32? { ids[token] }
    public func token(forId id: Int32) -> String? { id >= 0 && Int(id) < pieces.count ? pieces[Int(id)] : nil }

    public func tokenize(_ text: NormalizedText, word: Range<Int>, into tokens: inout [ModelToken], scratch: inout ModelScratch) {
        let n = word.count
        guard n > 0 else { return }
        let base = word.lowerBound
        // best[i]: score of the best path over scalars 0..<i; from[i]: its last piece's start (-1 none); piece[i]: its id.
        scratch.scores.removeAll(keepingCapacity: true)
        scratch.scores.append(contentsOf: repeatElement(0, count: n + 1))
        scratch.positions.removeAll(keepingCapacity: true)
        scratch.positions.append(contentsOf: repeatElement(-1, count: n + 1))
        scratch.symbols.removeAll(keepingCapacity: true)
        scratch.symbols.append(contentsOf: repeatElement(0, count: n + 1))
        text.scalars.withUnsafeBufferPointer { all in
            scratch.scores.withUnsafeMutableBufferPointer { best in
                scratch.positions.withUnsafeMutableBufferPointer { from in
                    scratch.symbols.withUnsafeMutableBufferPointer { piece in
                        @inline(__always) func offer(_ end: Int, _ start: Int, _ id: Int32, _ score: Double) {
                            if from[end] < 0 || score > best[end] {
                                best[end] = score
                                from[end] = Int32(start)
                                piece[end] = id
                            }
                        }
                        for start in 0..<n {
                            let reached = best[start]
                            var node = ScalarTrie.root
                            var hasSingle = false
                            var k = start
                            while k < n, let child = trie.child(node, all[base + k]) {
                                node = child
                                k += 1
                                let id = trie.pieceId(node)
                                guard id >= 0 else { continue }
                                offer(k, start, id, scores[Int(id)] + reached)
                                if k - start == 1 { hasSingle = true }
                            }
                            if !hasSingle { offer(start + 1, start, unknownId, unknownScore + reached) }
                        }
                    }
                }
            }
        }
        // Walk back from the end; `links` collects (start, end, id) triples in reverse.
        scratch.links.removeAll(keepingCapacity: true)
        var end = n
        while end > 0 {
            let start = Int(scratch.positions[end])
            let id = scratch.symbols[end]
            let count = scratch.links.count
            if id == unknownId, count >= 3, scratch.links[count - 1] == unknownId {
                scratch.links[count - 3] = Int32(start)  // fuse with the unknown run after it
            } else {
                scratch.links.append(contentsOf: [Int32(start), Int32(end), id])
            }
            end = start
        }
        var t = scratch.links.count - 3
        while t >= 0 {
            let start = Int(scratch.links[t]), stop = Int(scratch.links[t + 1]), id = scratch.links[t + 2]
            let s = Int32(base + start), e = Int32(base + stop)
            if id == unknownId {
                appendUnknownRun(text.scalars[(base + start)..<(base + stop)], s, e, into: &tokens)
            } else {
                tokens.append(ModelToken(id: id, start: s, end: e))
            }
            t -= 3
        }
    }

    private func appendUnknownRun(_ run: ArraySlice<Unicode.Scalar>, _ start: Int32, _ end: Int32, into tokens: inout [ModelToken]) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: run)
        let string = String(view)
        if let id = ids[string] {
            tokens.append(ModelToken(id: id, start: start, end: end))
            return
        }
        if byteFallback {
            let bytes = Array(string.utf8)
            if bytes.allSatisfy({ byteIds[Int($0)] >= 0 }) {
                for b in bytes { tokens.append(ModelToken(id: byteIds[Int(b)], start: start, end: end)) }
                return
            }
        }
        tokens.append(ModelToken(id: unknownId, start: start, end: end))
    }
}

/// A trie over Unicode scalars: children in one hash table keyed by (node, scalar).
struct ScalarTrie: Sendable {
    static let root: Int32 = 0
    private var edges: [UInt64: Int32] = [:]
    /// The piece id that ends at each node, or -1.
    private var ends: [Int32] = [-1]

    mutating func insert(_ piece: String, id: Int32) {
        var node = Self.root
        for s in piece.unicodeScalars {
            let key = UInt64(UInt32(node)) << 32 | UInt64(s.value)
            if let next = edges[key] {
                node = next
            } else {
                let next = Int32(ends.count)
                ends.append(-1)
                edges[key] = next
                node = next
            }
        }
        if node != Self.root { ends[Int(node)] = id }
    }

    @inline(__always) func child(_ node: Int32, _ s: Unicode.Scalar) -> Int32? {
        edges[UInt64(UInt32(node)) << 32 | UInt64(s.value)]
    }

    @inline(__always) func pieceId(_ node: Int32) -> Int32 { ends[Int(node)] }
}
