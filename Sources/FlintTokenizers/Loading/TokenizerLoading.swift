import FlintJSON
/// Finding and reading tokenizer files: `tokenizer.json`, BERT's `vocab.txt`
/// (+ `tokenizer_config.json`), GPT-2's `vocab.json` + `merges.txt`, OpenAI's `encoder.json` +
/// `vocab.bpe`, or a model folder holding any of them (in that order of preference).
extension Tokenizer {
    public static func load(_ path: String) throws(TokenizerError) -> Tokenizer {
        guard FileReading.exists(path) else { throw .unreadableFile(path: path, reason: "no such file or folder") }
        if FileReading.isDirectory(path) { return try loadFolder(path) }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let folder = parent(of: path)
        switch name {
        case _ where name.hasSuffix(".txt") && name != "merges.txt":
            return try loadWordPieceVocab(path, config: join(folder, "tokenizer_config.json"))
        case "vocab.json", "encoder.json":
            return try loadGPT2(vocab: path, merges: join(folder, name == "vocab.json" ? "merges.txt" : "vocab.bpe"))
        case "merges.txt", "vocab.bpe":
            return try loadGPT2(vocab: join(folder, name == "merges.txt" ? "vocab.json" : "encoder.json"), merges: path)
        default:
            return try TokenizerJSON.load(path)
        }
    }

    static func loadFolder(_ folder: String) throws(TokenizerError) -> Tokenizer {
        let candidates = ["tokenizer.json", "vocab.txt", "vocab.json", "encoder.json"]
        for c in candidates where FileReading.exists(join(folder, c)) {
            return try load(join(folder, c))
        }
        throw .unreadableFile(path: folder, reason: "no tokenizer files in this folder (looked for \(candidates.joined(separator: ", ")))")
    }

    /// BERT from `vocab.txt`: one token per line, id = line number, as HF's
    /// `BertWordPieceTokenizer`. Lowercasing, accent stripping and CJK handling come from
    /// `tokenizer_config.json` when it exists (`do_lower_case`, `strip_accents`,
    /// `tokenize_chinese_chars`), else BERT's uncased defaults.
    public static func loadWordPieceVocab(_ path: String, config configPath: String? = nil,
                                          lowercase: Bool? = nil, stripAccents: Bool?? = nil) throws(TokenizerError) -> Tokenizer
    {
        let text = try FileReading.text(path)
        var entries: [(String, Int32)] = []
        var line = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard raw.utf8.count <= GPT2Files.maxLineBytes else {
                throw .malformedFile(path: path, reason: "line \(line + 1) is \(raw.utf8.count) bytes long, "
                                         + "more than the \(GPT2Files.maxLineBytes) a token may be")
            }
            // Rust's `lines()` drops the final empty line and a trailing "\r"; `trim_end` drops trailing whitespace.
            var token = Substring(raw)
            while let last = token.unicodeScalars.last, last.properties.isWhitespace { token = token.dropLast() }
            entries.append((String(token), Int32(line)))
            line += 1
        }
        if text.hasSuffix("\n") { entries.removeLast() }
        guard !entries.isEmpty else { throw .malformedFile(path: path, reason: "vocabulary is empty") }

        var doLower = true
        var strip: Bool?
        var chinese = true
        var specials = (unk: "[UNK]", sep: "[SEP]", cls: "[CLS]", pad: "[PAD]", mask: "[MASK]")
        if let configPath, FileReading.exists(configPath) {
            let config = try FileReading.json(configPath)
            let r = TokenizerJSON.Reader(path: configPath)
            doLower = try r.bool(config, "do_lower_case", "tokenizer_config", default: true)
            chinese = try r.bool(config, "tokenize_chinese_chars", "tokenizer_config", default: true)
            if let s = config["strip_accents"], !s.isNull { strip = s.bool }
            specials.unk = config["unk_token"]?.string ?? specials.unk
            specials.sep = config["sep_token"]?.string ?? specials.sep
            specials.cls = config["cls_token"]?.string ?? specials.cls
            specials.pad = config["pad_token"]?.string ?? specials.pad
            specials.mask = config["mask_token"]?.string ?? specials.mask
        }
        if let lowercase { doLower = lowercase }
        if let stripAccents { strip = stripAccents }

        let model = try WordPiece(vocabulary: entries, unknownToken: specials.unk, path: path)
        var added: [AddedToken] = []
        var nextId = Int32(entries.count)
        for name in [specials.unk, specials.sep, specials.cls, specials.pad, specials.mask]
        where !added.contains(where: { $0.content == name }) {
            let id: Int32
            if let existing = model.id(forToken: name) {
                id = existing
            } else {
                id = nextId
                nextId += 1
            }
            added.append(AddedToken(id: id, content: name, special: true))
        }
        guard let cls = model.id(forToken: specials.cls), let sep = model.id(forToken: specials.sep) else {
            throw .malformedFile(path: path, reason: "vocabulary lacks \(specials.cls) or \(specials.sep)")
        }
        return Tokenizer(
            normalizer: BertNormalizer(cleanText: true, handleChineseChars: chinese, stripAccents: strip, lowercase: doLower),
            preTokenizer: BertPreTokenizer(), model: model, postProcessor: TemplateProcessing.bert(cls: cls, sep: sep),
            decoder: WordPieceDecoder(), addedTokens: added, source: path)
    }

    /// GPT-2 from its vocabulary and merges files, set up as HF's GPT-2 tokenizer:
    /// byte-level pre-tokenizer without prefix space, untrimmed offsets, `<|endoftext|>` special.
    public static func loadGPT2(vocab: String, merges: String) throws(TokenizerError) -> Tokenizer {
        let model = try BytePairEncoding.load(vocabPath: vocab, mergesPath: merges)
        var added: [AddedToken] = []
        if let eos = model.id(forToken: "<|endoftext|>") {
            added.append(AddedToken(id: eos, content: "<|endoftext|>", special: true))
        }
        return Tokenizer(
            normalizer: nil, preTokenizer: ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true), model: model,
            postProcessor: ByteLevelProcessor(trimOffsets: false, addPrefixSpace: false), decoder: ByteLevelDecoder(),
            addedTokens: added, source: vocab)
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}
