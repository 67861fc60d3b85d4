/// WordPiece (HF `models::wordpiece`): greedy longest-match-first over each word.
///
/// The first piece is looked up as is, later pieces with the continuation prefix ("##"). If some
/// position has no match, or the word is longer than `maxInputCharsPerWord` scalars, the whole
/// word becomes the unknown token. Candidates are probed as raw UTF-8 byte slices of the word in
/// two byte-keyed tables (whole-word pieces, and continuations with the prefix removed), so the
/// search never builds a string.
public struct WordPiece: TokenizationModel {
    public let unknownToken: String
    public let continuingSubwordPrefix: String
    public let maxInputCharsPerWord: Int
    let vocabulary: ByteStringTable
    let continuations: ByteStringTable
    let tokensById: [String]
    let unknownId: Int32

    /// - Parameters:
    ///   - vocabulary: token -> id, ids need not be dense but must be >= 0.
    ///   - path: the file the vocabulary came from, for error messages.
    public init(vocabulary entries: [(String, Int32)], unknownToken: String = "[UNK]", continuingSubwordPrefix: String = "##",
                maxInputCharsPerWord: Int = 100, path: String) throws(TokenizerError) {
        var vocab = ByteStringTable(capacity: entries.count)
        var cont = ByteStringTable(capacity: entries.count / 4)
        var maxId: Int32 = -1
        for (token, id) in entries {
            guard id >= 0 else { throw .malformedFile(path: path, reason: "token \"\(token)\" has negative id \(id)") }
            vocab.insert(token, value: id)
            if !continuingSubwordPrefix.isEmpty, token.utf8.starts(with: continuingSubwordPrefix.utf8) {
                let rest = String(decoding: token.utf8.dropFirst(continuingSubwordPrefix.utf8.count), as: UTF8.self)
                cont.insert(rest, value: id)
            }
            maxId = max(maxId, id)
        }
        guard let unk = vocab.lookup(unknownToken) else {
            throw .malformedFile(path: path, reason: "unknown token \"\(unknownToken)\" is not in the vocabulary")
        }
        var byId = [String](repeating: "", count: Int(maxId) + 1)
        for (token, id) in entries { byId[Int(id)] = token }
        self.vocabulary = vocab
        self.continuations = cont
        self.tokensById = byId
        self.unknownId = unk
        self.unknownToken = unknownToken
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    public var vocabularySize: Int { vocabulary.count }
    public func id(forToken token: String) -> Int32? { vocabulary.lookup(token) }
    public func token(forId id: Int32) -> String? {
        id >= 0 && Int(id) < tokensById.count && !tokensById[Int(id)].isEmpty ? tokensById[Int(id)] : nil
    }

    public func tokenize(_ text: NormalizedText, word: Range<Int>, into tokens: inout [ModelToken], scratch: inout ModelScratch) {
        let n = word.count
        if n > maxInputCharsPerWord {
            tokens.append(ModelToken(id: unknownId, start: Int32(word.lowerBound), end: Int32(word.upperBound)))
            return
        }
        // UTF-8 bytes of the word, and the byte offset where each scalar starts (n + 1 entries).
        scratch.bytes.removeAll(keepingCapacity: true)
        scratch.positions.removeAll(keepingCapacity: true)
        for i in word {
            scratch.positions.append(Int32(scratch.bytes.count))
            let v = text.scalars[i].value
            if v < 0x80 {
                scratch.bytes.append(UInt8(v))
            } else {
                scratch.bytes.append(contentsOf: UTF8.encode(text.scalars[i])!)
            }
        }
        scratch.positions.append(Int32(scratch.bytes.count))
        let firstToken = tokens.count
        let matched: Bool = scratch.bytes.withUnsafeBufferPointer { bytes in
            scratch.positions.withUnsafeBufferPointer { pos in
                var start = 0
                while start < n {
                    let table = start == 0 ? vocabulary : continuations
                    let limit = table.maxKeyLength
                    var end = n
                    var found: Int32 = -1
                    while end > start {
                        let length = Int(pos[end] - pos[start])
                        if length <= limit,
                           let id = table.lookup(UnsafeBufferPointer(rebasing: bytes[Int(pos[start])..<Int(pos[end])]))
                        {
                            found = id
                            break
                        }
                        end -= 1
                    }
                    if found < 0 { return false }
                    tokens.append(ModelToken(id: found, start: Int32(word.lowerBound + start), end: Int32(word.lowerBound + end)))
                    start = end
                }
                return true
            }
        }
        if !matched {
            tokens.removeSubrange(firstToken...)
            tokens.append(ModelToken(id: unknownId, start: Int32(word.lowerBound), end: Int32(word.upperBound)))
        }
    }
}

/// WordPiece's decoder (HF `decoders::WordPiece`): join pieces, gluing continuations to the piece
/// before them, then optionally undo BERT's spacing around punctuation and contractions.
public struct WordPieceDecoder: TokenDecoder {
    public var prefix: String
    public var cleanup: Bool

    public init(prefix: String = "##", cleanup: Bool = true) {
        self.prefix = prefix
        self.cleanup = cleanup
    }

    public func decode(_ tokens: [String]) -> String {
        var out = ""
        for (i, token) in tokens.enumerated() {
            var piece = token
            if i != 0 {
                if !prefix.isEmpty, piece.utf8.starts(with: prefix.utf8) {
                    piece = String(decoding: piece.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
                } else {
                    piece = " " + piece
                }
            }
            if cleanup { piece = Self.cleanUpTokenization(piece) }
            out += piece
        }
        return out
    }

    /// HF's `clean_up_tokenization`, applied per piece as HF does.
    static func cleanUpTokenization(_ s: String) -> String {
        var r = s
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                           (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
        {
            r = r.replacingAll(from, with: to)
        }
        return r
    }
}

extension String {
    /// Byte-exact replacement of every occurrence (no canonical-equivalence matching).
    func replacingAll(_ target: String, with replacement: String) -> String {
        let t = Array(target.utf8)
        let bytes = Array(utf8)
        guard !t.isEmpty, bytes.count >= t.count else { return self }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        var changed = false
        while i < bytes.count {
            if i + t.count <= bytes.count, bytes[i] == t[0], bytes[i..<(i + t.count)].elementsEqual(t) {
                out.append(contentsOf: replacement.utf8)
                i += t.count
                changed = true
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : self
    }
}
