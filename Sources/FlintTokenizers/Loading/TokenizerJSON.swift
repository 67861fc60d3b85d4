import FlintJSON
/// Reads Hugging Face `tokenizer.json` files.
///
/// Each component is decoded by its `type`; a type Flint does not implement is refused with
/// `TokenizerError.unsupportedComponent` rather than approximated, because a silently different
/// tokenization gives silently wrong model outputs. The file's `padding` and `truncation` sections
/// are ignored on purpose: callers pass truncation per call, and models pad through their own
/// batching.
enum TokenizerJSON {
    static func load(_ path: String) throws(TokenizerError) -> Tokenizer {
        let root = try FileReading.json(path)
        guard case let .object(members) = root else {
            throw .malformedFile(path: path, reason: "top level is \(root.typeName), expected an object")
        }
        // HF refuses a key it does not know here, so a misspelled section ("ad@ed_tokens") is an
        // error rather than a silently missing part of the tokenizer.
        if let unknown = members.first(where: { !topLevelKeys.contains($0.key) }) {
            throw .malformedFile(path: path, reason: "unknown top-level key \(JSONValue.string(String(unknown.key.prefix(64))).serialized)"
                                 + " (tokenizer.json has: \(topLevelKeys.joined(separator: ", ")))")
        }
        let r = Reader(path: path)
        guard let modelJSON = root["model"], case .object = modelJSON else {
            throw .malformedFile(path: path, reason: "missing \"model\" section")
        }
        let addedTokens = try r.addedTokens(root["added_tokens"])
        let normalizer = try r.normalizer(root["normalizer"])
        let preTokenizer = try r.preTokenizer(root["pre_tokenizer"])
        let model = try r.model(modelJSON, preTokenizer: preTokenizer)
        let postProcessor = try r.postProcessor(root["post_processor"], addedTokens: addedTokens, model: model)
        let decoder = try r.decoder(root["decoder"])
        return Tokenizer(normalizer: normalizer, preTokenizer: preTokenizer, model: model, postProcessor: postProcessor,
                         decoder: decoder, addedTokens: addedTokens, source: path)
    }

    /// The sections of HF's `Tokenizer` serialization (tokenizers 0.23.3), the only top-level keys it accepts.
    static let topLevelKeys = ["version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "model",
                               "post_processor", "decoder"]

    /// Typed field access with messages naming the file and the field.
    struct Reader {
        let path: String

        func type(of value: JSONValue, _ component: String) throws(TokenizerError) -> String {
            guard let t = value["type"]?.string else {
                throw .malformedFile(path: path, reason: "\(component) has no \"type\"")
            }
            return t
        }

        func bool(_ value: JSONValue, _ key: String, _ component: String, default fallback: Bool) throws(TokenizerError) -> Bool {
            guard let v = value[key], !v.isNull else { return fallback }
            guard let b = v.bool else {
                throw .malformedFile(path: path, reason: "\(component).\(key) is \(v.typeName), expected a boolean")
            }
            return b
        }

        /// A boolean HF requires (it has no default there): missing is an error, as it is for HF.
        func requiredBool(_ value: JSONValue, _ key: String, _ component: String) throws(TokenizerError) -> Bool {
            guard let v = value[key] else { throw .malformedFile(path: path, reason: "\(component).\(key) is missing") }
            guard let b = v.bool else {
                throw .malformedFile(path: path, reason: "\(component).\(key) is \(v.typeName), expected a boolean")
            }
            return b
        }

        func int(_ value: JSONValue, _ key: String, _ component: String) throws(TokenizerError) -> Int {
            guard let v = value[key] else { throw .malformedFile(path: path, reason: "\(component).\(key) is missing") }
            guard let i = v.int else {
                throw .malformedFile(path: path, reason: "\(component).\(key) is \(v.typeName), expected an integer")
            }
            return i
        }

        func string(_ value: JSONValue, _ key: String, _ component: String) throws(TokenizerError) -> String {
            guard let v = value[key] else { throw .malformedFile(path: path, reason: "\(component).\(key) is missing") }
            guard let s = v.string else {
                throw .malformedFile(path: path, reason: "\(component).\(key) is \(v.typeName), expected a string")
            }
            return s
        }

        func addedTokens(_ value: JSONValue?) throws(TokenizerError) -> [AddedToken] {
            guard let value, !value.isNull else { return [] }
            guard let items = value.array else {
                throw .malformedFile(path: path, reason: "added_tokens is \(value.typeName), expected an array")
            }
            var out: [AddedToken] = []
            for (i, item) in items.enumerated() {
                let where_ = "added_tokens[\(i)]"
                let id = try int(item, "id", where_)
                guard id >= 0, id <= Int(Int32.max) else { throw .malformedFile(path: path, reason: "\(where_).id \(id) is out of range") }
                // Every field is required, as HF requires them: a token without its flags would
                // match text differently from what its author meant.
                out.append(AddedToken(
                    id: Int32(id), content: try string(item, "content", where_), special: try requiredBool(item, "special", where_),
                    normalized: try requiredBool(item, "normalized", where_),
                    lstrip: try requiredBool(item, "lstrip", where_),
                    rstrip: try requiredBool(item, "rstrip", where_),
                    singleWord: try requiredBool(item, "single_word", where_)))
            }
            return out
        }

        func normalizer(_ value: JSONValue?) throws(TokenizerError) -> (any Normalizer)? {
            guard let value, !value.isNull else { return nil }
            let t = try type(of: value, "normalizer")
            switch t {
            case "BertNormalizer":
                var strip: Bool?
                if let s = value["strip_accents"], !s.isNull {
                    guard let b = s.bool else {
                        throw .malformedFile(path: path, reason: "normalizer.strip_accents is \(s.typeName), expected a boolean or null")
                    }
                    strip = b
                }
                // HF requires these three (strip_accents may be absent: null): a misspelled one is refused, not defaulted.
                return BertNormalizer(
                    cleanText: try requiredBool(value, "clean_text", "normalizer"),
                    handleChineseChars: try requiredBool(value, "handle_chinese_chars", "normalizer"),
                    stripAccents: strip,
                    lowercase: try requiredBool(value, "lowercase", "normalizer"))
            case "Sequence":
                guard let items = value["normalizers"]?.array else {
                    throw .malformedFile(path: path, reason: "normalizer.normalizers is missing or not an array")
                }
                var parts: [any Normalizer] = []
                for item in items {
                    if let n = try normalizer(item) { parts.append(n) }
                }
                return SequenceNormalizer(parts)
            case "Precompiled":
                return try PrecompiledNormalizer(base64: try string(value, "precompiled_charsmap", "normalizer"), path: path)
            case "Replace":
                return try replace(value)
            case "Strip":
                return StripNormalizer(left: try bool(value, "strip_left", "normalizer", default: true),
                                       right: try bool(value, "strip_right", "normalizer", default: true))
            case "Lowercase":
                return LowercaseNormalizer()
            default:
                throw .unsupportedComponent(path: path, component: "normalizer", type: t)
            }
        }

        func replace(_ value: JSONValue) throws(TokenizerError) -> ReplaceNormalizer {
            let content = try string(value, "content", "normalizer")
            guard let pattern = value["pattern"] else { throw .malformedFile(path: path, reason: "normalizer.pattern is missing") }
            if let literal = pattern["String"]?.string {
                guard !literal.isEmpty else { throw .malformedFile(path: path, reason: "normalizer.pattern is an empty string") }
                guard let r = ReplaceNormalizer(literal: literal, content: content) else {
                    throw .unsupportedComponent(path: path, component: "normalizer",
                                                type: "Replace with a pattern of \(literal.unicodeScalars.count) characters (at most 256)")
                }
                return r
            }
            guard let regex = pattern["Regex"]?.string else {
                throw .malformedFile(path: path, reason: "normalizer.pattern must be {\"String\": ...} or {\"Regex\": ...}")
            }
            guard let r = ReplaceNormalizer(regex: regex, content: content) else {
                throw .unsupportedComponent(path: path, component: "normalizer", type: "Replace with the regular expression \"\(regex)\"")
            }
            return r
        }

        func metaspace(_ value: JSONValue, _ component: String) throws(TokenizerError) -> (Unicode.Scalar, PrependScheme, Bool) {
            let replacement = try string(value, "replacement", component).unicodeScalars
            guard replacement.count == 1, let r = replacement.first else {
                throw .malformedFile(path: path, reason: "\(component).replacement must be one character")
            }
            var scheme = PrependScheme.always
            if let v = value["prepend_scheme"], !v.isNull {
                guard let name = v.string, let s = PrependScheme(rawValue: name) else {
                    throw .malformedFile(path: path, reason: "\(component).prepend_scheme must be \"first\", \"never\" or \"always\"")
                }
                scheme = s
            }
            // HF refuses add_prefix_space false unless prepend_scheme says never.
            if try bool(value, "add_prefix_space", component, default: true) == false {
                guard scheme == .never else {
                    throw .malformedFile(path: path, reason: "\(component).add_prefix_space does not match declared prepend_scheme")
                }
            }
            return (r, scheme, try bool(value, "split", component, default: true))
        }

        func preTokenizer(_ value: JSONValue?) throws(TokenizerError) -> (any PreTokenizer)? {
            guard let value, !value.isNull else { return nil }
            let t = try type(of: value, "pre_tokenizer")
            switch t {
            case "BertPreTokenizer":
                return BertPreTokenizer()
            case "ByteLevel":
                return ByteLevelPreTokenizer(
                    addPrefixSpace: try bool(value, "add_prefix_space", "pre_tokenizer", default: true),
                    useRegex: try bool(value, "use_regex", "pre_tokenizer", default: true))
            case "Metaspace":
                let (replacement, scheme, split) = try metaspace(value, "pre_tokenizer")
                return MetaspacePreTokenizer(replacement: replacement, prependScheme: scheme, split: split)
            default:
                throw .unsupportedComponent(path: path, component: "pre_tokenizer", type: t)
            }
        }

        func model(_ value: JSONValue, preTokenizer: (any PreTokenizer)?) throws(TokenizerError) -> any TokenizationModel {
            // Old files omit the model's type; the fields tell which it is.
            let t = value["type"]?.string ?? (value["merges"] != nil ? "BPE" : value["max_input_chars_per_word"] != nil ? "WordPiece" : "")
            switch t {
            case "WordPiece":
                guard let vocab = value["vocab"]?.object else {
                    throw .malformedFile(path: path, reason: "model.vocab is missing or not an object")
                }
                var entries: [(String, Int32)] = []
                entries.reserveCapacity(vocab.count)
                for (token, id) in vocab {
                    guard let i = id.int, i >= 0, i <= Int(Int32.max) else {
                        throw .malformedFile(
                            path: path, reason: "model.vocab[\"\(token)\"] is \(id.typeName), expected a non-negative integer id")
                    }
                    entries.append((token, Int32(i)))
                }
                return try WordPiece(
                    vocabulary: entries,
                    unknownToken: try string(value, "unk_token", "model"),
                    continuingSubwordPrefix: value["continuing_subword_prefix"]?.string ?? "##",
                    maxInputCharsPerWord: value["max_input_chars_per_word"]?.int ?? 100,
                    path: path)
            case "BPE":
                guard preTokenizer is ByteLevelPreTokenizer else {
                    throw .unsupportedComponent(path: path, component: "model", type: "BPE without a ByteLevel pre_tokenizer")
                }
                return try BytePairEncoding.fromTokenizerJSON(model: value, path: path)
            case "Unigram":
                return try unigram(value)
            case "":
                throw .malformedFile(path: path, reason: "model has no \"type\"")
            default:
                throw .unsupportedComponent(path: path, component: "model", type: t)
            }
        }

        func unigram(_ value: JSONValue) throws(TokenizerError) -> Unigram {
            guard let items = value["vocab"]?.array else {
                throw .malformedFile(path: path, reason: "model.vocab is missing or not an array")
            }
            var vocabulary: [(String, Double)] = []
            vocabulary.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard let pair = item.array, pair.count == 2, let piece = pair[0].string, case let .number(score) = pair[1] else {
                    throw .malformedFile(path: path, reason: "model.vocab[\(i)] must be [piece, score]")
                }
                vocabulary.append((piece, score))
            }
            var unknownId: Int?
            if let u = value["unk_id"], !u.isNull {
                guard let i = u.int else { throw .malformedFile(path: path, reason: "model.unk_id is \(u.typeName), expected an integer") }
                unknownId = i
            }
            return try Unigram(vocabulary: vocabulary, unknownId: unknownId,
                               byteFallback: try bool(value, "byte_fallback", "model", default: false), path: path)
        }

        func postProcessor(_ value: JSONValue?, addedTokens: [AddedToken], model: any TokenizationModel) throws(TokenizerError) -> (
            any PostProcessor
        )? {
            guard let value, !value.isNull else { return nil }
            let t = try type(of: value, "post_processor")
            switch t {
            case "TemplateProcessing":
                let specials = try specialTokens(value["special_tokens"])
                return TemplateProcessing(single: try template(value["single"], "single", specials),
                                          pair: try template(value["pair"], "pair", specials))
            case "BertProcessing", "RobertaProcessing":
                func tokenId(_ key: String) throws(TokenizerError) -> Int32 {
                    guard let pair = value[key]?.array, pair.count == 2, let id = pair[1].int.flatMap({ Int32(exactly: $0) }), id >= 0
                    else {
                        throw .malformedFile(path: path, reason: "post_processor.\(key) must be [token, id]")
                    }
                    return id
                }
                let (cls, sep) = (try tokenId("cls"), try tokenId("sep"))
                guard t == "RobertaProcessing" else { return TemplateProcessing.bert(cls: cls, sep: sep) }
                return RobertaProcessing(cls: cls, sep: sep, trimOffsets: try bool(value, "trim_offsets", "post_processor", default: true),
                                         addPrefixSpace: try bool(value, "add_prefix_space", "post_processor", default: true))
            case "ByteLevel":
                return ByteLevelProcessor(trimOffsets: try bool(value, "trim_offsets", "post_processor", default: true),
                                          addPrefixSpace: try bool(value, "add_prefix_space", "post_processor", default: true))
            default:
                throw .unsupportedComponent(path: path, component: "post_processor", type: t)
            }
        }

        func specialTokens(_ value: JSONValue?) throws(TokenizerError) -> [String: [Int32]] {
            guard let members = value?.object else { return [:] }
            var out: [String: [Int32]] = [:]
            for (name, spec) in members {
                guard let ids = spec["ids"]?.array else {
                    throw .malformedFile(path: path, reason: "post_processor.special_tokens[\"\(name)\"].ids is missing")
                }
                var list: [Int32] = []
                for id in ids {
                    guard let i = id.int else {
                        throw .malformedFile(path: path, reason: "post_processor.special_tokens[\"\(name)\"].ids holds \(id.typeName)")
                    }
                    list.append(Int32(i))
                }
                out[name] = list
            }
            return out
        }

        func template(_ value: JSONValue?, _ name: String, _ specials: [String: [Int32]]) throws(TokenizerError) -> [TemplateProcessing
            .Piece]
        {
            guard let items = value?.array else {
                throw .malformedFile(path: path, reason: "post_processor.\(name) is missing or not an array")
            }
            var pieces: [TemplateProcessing.Piece] = []
            for item in items {
                if let seq = item["Sequence"] {
                    let id = try string(seq, "id", "post_processor.\(name).Sequence")
                    guard id == "A" || id == "B" else {
                        throw .malformedFile(path: path, reason: "post_processor.\(name): sequence id \"\(id)\" is not A or B")
                    }
                    pieces.append(.sequence(id == "A" ? 0 : 1, typeId: Int32(try int(seq, "type_id", "post_processor.\(name).Sequence"))))
                } else if let special = item["SpecialToken"] {
                    let id = try string(special, "id", "post_processor.\(name).SpecialToken")
                    guard let ids = specials[id] else {
                        throw .malformedFile(
                            path: path, reason: "post_processor.\(name) uses special token \"\(id)\" missing from special_tokens")
                    }
                    pieces.append(.special(ids: ids, typeId: Int32(try int(special, "type_id", "post_processor.\(name).SpecialToken"))))
                } else {
                    throw .malformedFile(
                        path: path, reason: "post_processor.\(name) holds a piece that is neither Sequence nor SpecialToken")
                }
            }
            return pieces
        }

        func decoder(_ value: JSONValue?) throws(TokenizerError) -> (any TokenDecoder)? {
            guard let value, !value.isNull else { return nil }
            let t = try type(of: value, "decoder")
            switch t {
            case "WordPiece":
                return WordPieceDecoder(
                    prefix: value["prefix"]?.string ?? "##", cleanup: try bool(value, "cleanup", "decoder", default: true))
            case "ByteLevel":
                return ByteLevelDecoder()
            case "Metaspace":
                let (replacement, scheme, _) = try metaspace(value, "decoder")
                return MetaspaceDecoder(replacement: replacement, prependScheme: scheme)
            default:
                throw .unsupportedComponent(path: path, component: "decoder", type: t)
            }
        }
    }
}
