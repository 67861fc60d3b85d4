import FlintJSON
/// Loading byte-level BPE models: GPT-2's plain files (`vocab.json` + `merges.txt`, or OpenAI's
/// `encoder.json` + `vocab.bpe`, which have the same formats) and the "model" object of a
/// `tokenizer.json`.
public enum GPT2Files {
    /// Reads a vocabulary (a JSON object token -> id) and a merges file ("left right" per line,
    /// in rank order; lines starting with "#version" and blank lines are skipped).
    /// `cacheCapacity` bounds the word cache (0 disables it).
    public static func loadVocabAndMerges(
        vocabPath: String, mergesPath: String,
        cacheCapacity: Int = 10_000
    ) throws(TokenizerError) -> BytePairEncoding {
        let vocab = try parseVocab(FileReading.json(vocabPath), path: vocabPath, context: "")
        let merges = try parseMergesFile(FileReading.bytes(mergesPath), path: mergesPath)
        return try BytePairEncoding(vocab: vocab, merges: merges, path: vocabPath, cacheCapacity: cacheCapacity)
    }

    /// The (token, id) entries of a vocabulary object, in file order.
    static func parseVocab(_ json: JSONValue, path: String, context: String) throws(TokenizerError) -> [(String, Int32)] {
        guard let members = json.object else {
            throw .malformedFile(path: path, reason: "\(context)vocabulary must be a JSON object (token -> id), found \(json.typeName)")
        }
        var entries: [(String, Int32)] = []
        entries.reserveCapacity(members.count)
        for (token, value) in members {
            guard let id = value.int, id >= 0, id <= Int(Int32.max) else {
                throw .malformedFile(
                    path: path,
                    reason: "\(context)vocabulary entry \(BytePairEncoding.quoted(token)): "
                        + "id must be a non-negative integer below 2^31, found \(describe(value))")
            }
            entries.append((token, Int32(id)))
        }
        return entries
    }

    /// The longest line accepted in a merges file or `vocab.txt`: real lines are a few dozen bytes,
    /// and bounding them bounds the time and memory a hostile file can cost.
    public static let maxLineBytes = 1 << 16

    /// Parses a merges file: one "left right" pair per line.
    static func parseMergesFile(_ bytes: [UInt8], path: String) throws(TokenizerError) -> [(String, String)] {
        var merges: [(String, String)] = []
        merges.reserveCapacity(bytes.count / 8)
        // Validate once; only a file that fails is checked line by line, to name the line.
        let valid = String(validating: bytes, as: UTF8.self) != nil
        var lineNumber = 0
        var lineStart = 0
        while lineStart < bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd + 1
            if lineEnd > lineStart && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            defer { lineStart = next }
            guard lineEnd - lineStart <= maxLineBytes else {
                throw .malformedFile(path: path, reason: "line \(lineNumber) is \(lineEnd - lineStart) bytes long, "
                                         + "more than the \(maxLineBytes) a merge may be")
            }
            let line = bytes[lineStart..<lineEnd]
            if line.isEmpty || line.starts(with: "#version".utf8) { continue }
            if !valid && String(validating: line, as: UTF8.self) == nil {
                throw .malformedFile(path: path, reason: "line \(lineNumber): not valid UTF-8")
            }
            let text = String(decoding: line, as: UTF8.self)
            guard let pair = splitMerge(text) else {
                throw .malformedFile(
                    path: path,
                    reason: "line \(lineNumber): expected two tokens separated by one space, "
                        + "found \(BytePairEncoding.quoted(text))")
            }
            merges.append(pair)
        }
        return merges
    }

    /// "a b" -> ("a", "b"); nil unless there are exactly two parts separated by one U+0020
    /// (HF splits on ' ' and requires exactly two parts, so empty parts count).
    static func splitMerge(_ text: String) -> (String, String)? {
        let parts = text.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self))
    }

    static func describe(_ value: JSONValue) -> String {
        switch value {
        case let .number(d): return "\(d)"
        case let .string(s): return BytePairEncoding.quoted(s)
        case let .bool(b): return "\(b)"
        default: return value.typeName
        }
    }
}

extension BytePairEncoding {
    /// Loads GPT-2's plain files: `vocab.json` + `merges.txt`, or `encoder.json` + `vocab.bpe`.
    public static func load(vocabPath: String, mergesPath: String, cacheCapacity: Int = 10_000) throws(TokenizerError) -> BytePairEncoding {
        try GPT2Files.loadVocabAndMerges(vocabPath: vocabPath, mergesPath: mergesPath, cacheCapacity: cacheCapacity)
    }

    /// Builds the model from a `tokenizer.json` "model" object of type "BPE".
    ///
    /// Refuses the options Flint does not implement: a non-zero `dropout`, `unk_token` together
    /// with `byte_fallback`, a non-empty `continuing_subword_prefix` or `end_of_word_suffix`, and
    /// `ignore_merges`. Merges may be "a b" strings (older files) or ["a", "b"] pairs.
    public static func fromTokenizerJSON(model: JSONValue, path: String) throws(TokenizerError) -> BytePairEncoding {
        guard model.object != nil else {
            throw .malformedFile(path: path, reason: "model must be an object, found \(model.typeName)")
        }
        if let type = model["type"] {
            guard let name = type.string else {
                throw .malformedFile(path: path, reason: "model.type must be a string, found \(type.typeName)")
            }
            guard name == "BPE" else { throw .unsupportedComponent(path: path, component: "model", type: name) }
        }
        func unsupported(_ what: String) -> TokenizerError {
            .unsupportedComponent(path: path, component: "model", type: "BPE with \(what)")
        }
        func optionalString(_ key: String) throws(TokenizerError) -> String? {
            guard let v = model[key], !v.isNull else { return nil }
            guard let s = v.string else {
                throw .malformedFile(path: path, reason: "model.\(key) must be a string or null, found \(v.typeName)")
            }
            return s
        }
        func flag(_ key: String) throws(TokenizerError) -> Bool {
            guard let v = model[key], !v.isNull else { return false }
            guard let b = v.bool else {
                throw .malformedFile(path: path, reason: "model.\(key) must be a boolean, found \(v.typeName)")
            }
            return b
        }
        if let dropout = model["dropout"], !dropout.isNull {
            guard case let .number(p) = dropout else {
                throw .malformedFile(path: path, reason: "model.dropout must be a number or null, found \(dropout.typeName)")
            }
            if p != 0 { throw unsupported("dropout \(p)") }
        }
        if let unk = try optionalString("unk_token"), try flag("byte_fallback") {
            throw unsupported("unk_token \(quoted(unk)) and byte_fallback")
        }
        if let prefix = try optionalString("continuing_subword_prefix"), !prefix.isEmpty {
            throw unsupported("continuing_subword_prefix \(quoted(prefix))")
        }
        if let suffix = try optionalString("end_of_word_suffix"), !suffix.isEmpty {
            throw unsupported("end_of_word_suffix \(quoted(suffix))")
        }
        if try flag("ignore_merges") { throw unsupported("ignore_merges") }

        guard let vocabJSON = model["vocab"] else {
            throw .malformedFile(path: path, reason: "model.vocab is missing")
        }
        let vocab = try GPT2Files.parseVocab(vocabJSON, path: path, context: "model.")
        guard let mergesJSON = model["merges"] else {
            throw .malformedFile(path: path, reason: "model.merges is missing")
        }
        guard let items = mergesJSON.array else {
            throw .malformedFile(path: path, reason: "model.merges must be an array, found \(mergesJSON.typeName)")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            switch item {
            case let .string(s):
                if s.utf8.starts(with: "#version".utf8) { continue }
                guard let pair = GPT2Files.splitMerge(s) else {
                    throw .malformedFile(
                        path: path,
                        reason: "model.merges[\(i)]: expected two tokens separated by one space, "
                            + "found \(quoted(s))")
                }
                merges.append(pair)
            case let .array(pair):
                guard pair.count == 2, let a = pair[0].string, let b = pair[1].string else {
                    throw .malformedFile(path: path, reason: "model.merges[\(i)]: expected a pair of strings")
                }
                merges.append((a, b))
            default:
                throw .malformedFile(
                    path: path,
                    reason: "model.merges[\(i)]: expected a string or a pair of strings, "
                        + "found \(item.typeName)")
            }
        }
        return try BytePairEncoding(vocab: vocab, merges: merges, path: path)
    }
}
