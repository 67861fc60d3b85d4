import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintModels
import FlintTokenizers
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The fuzz targets: every reader of untrusted input, each given arbitrary bytes. A reader may
/// refuse its input with its typed error; anything else (a trap, an ASan report, a hang, a leak)
/// is a finding. Where a result comes back, the checks below hold it to what its API promises,
/// and a broken promise traps so libFuzzer records the input.
enum FuzzTarget: String, CaseIterable {
    /// `JSONParser` (every JSON file Flint reads): a parsed value serializes and parses back equal.
    case json
    /// `JSONLines` (`--jsonl` inputs): line numbers rise within the file.
    case jsonl
    /// `SafetensorsFile` on a whole file image; a valid file's float tensors convert.
    case safetensors
    /// `Checkpoint` from a `model.safetensors.index.json` next to two small shards.
    case index
    /// `EncoderConfig` and `GPT2Config` from config.json bytes, then checked against small checkpoints
    /// and planned (bounded sizes must keep planning cheap).
    case config
    /// `Tokenizer.load` of a `tokenizer.json`, then encoding a few texts with it.
    case tokenizerJSON = "tokenizer-json"
    /// `vocab.txt` (+ `tokenizer_config.json`) or `vocab.json` + `merges.txt`: the first byte picks,
    /// a zero byte separates the two files.
    case vocabMerges = "vocab-merges"
    /// The real BERT and GPT-2 tokenizers on arbitrary text, pairs and truncation settings.
    case tokenizers
    /// FlintServe's request decoding of every route (ServeTarget.swift).
    case serve

    /// The target named by FLINT_FUZZ_TARGET (read once).
    static let selected: FuzzTarget = {
        let names = allCases.map(\.rawValue).joined(separator: ", ")
        guard let name = getenv("FLINT_FUZZ_TARGET").map({ String(cString: $0) }) else {
            fatalError("flint-fuzz: set FLINT_FUZZ_TARGET to one of \(names)")
        }
        guard let target = FuzzTarget(rawValue: name) else { fatalError("flint-fuzz: unknown target \(name); targets: \(names)") }
        return target
    }()

    func run(_ bytes: [UInt8]) {
        switch self {
        case .json: Self.json(bytes)
        case .jsonl: Self.jsonl(bytes)
        case .safetensors: Self.safetensors(bytes)
        case .index: Self.index(bytes)
        case .config: Self.config(bytes)
        case .tokenizerJSON: Self.tokenizerJSON(bytes)
        case .vocabMerges: Self.vocabMerges(bytes)
        case .tokenizers: Self.tokenizers(bytes)
        case .serve: ServeTarget.run(bytes)
        }
    }

    /// Traps with `message` when a promise is broken (libFuzzer then saves the input).
    static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fatalError("flint-fuzz: " + message()) }
    }

    static func json(_ bytes: [UInt8]) {
        guard let value = try? JSONParser.parse(bytes) else { return }
        let text = value.serialized
        guard let again = try? JSONParser.parse(text) else { return check(false, "serialized JSON does not parse: \(text.prefix(200))") }
        check(again == value, "JSON changed through serialization: \(text.prefix(200))")
    }

    static func jsonl(_ bytes: [UInt8]) {
        guard let lines = try? JSONLines.parse(bytes) else { return }
        let total = bytes.count { $0 == UInt8(ascii: "\n") } + 1
        var previous = 0
        for (line, _) in lines {
            check(line > previous && line <= total, "line \(line) after \(previous) of \(total)")
            previous = line
        }
    }

    static func safetensors(_ bytes: [UInt8]) {
        let valid = bytes.withUnsafeBytes { (image) -> Bool in
            (try? SafetensorsFile.validate(image: image, path: "fuzz.safetensors")) != nil
        }
        guard valid else { return }
        guard let file = try? SafetensorsFile(path: Scratch.save(bytes, as: "fuzz.safetensors")) else {
            return check(false, "a valid image did not open as a file")
        }
        for name in file.tensorNames {
            let info = file.info(name)!
            check(file.rawBytes(name)!.count == info.shape.count * info.dtype.byteSize, "\(name): byte count")
            if info.dtype.isFloatingPoint, let t = try? file.floatTensor(name) {
                check(t.data.count == info.shape.count && t.data.allSatisfy(\.isFinite), "\(name): conversion")
            }
        }
    }

    /// Two shards the index can name: `a.safetensors` (x [2] F32, y [1] F16), `b.safetensors` (z [3] BF16).
    static let shards: Void = {
        func image(_ header: String, _ data: [UInt8]) -> [UInt8] {
            withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8) + data
        }
        Scratch.save(image(#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}"#,
                            [0, 0, 128, 63, 0, 0, 0, 64, 0, 60]), as: "a.safetensors")
        Scratch.save(image(#"{"z":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}"#, [128, 63, 0, 64, 64, 64]), as: "b.safetensors")
    }()

    static func index(_ bytes: [UInt8]) {
        _ = shards
        guard let checkpoint = try? Checkpoint(path: Scratch.save(bytes, as: "model.safetensors.index.json")) else { return }
        for name in checkpoint.names {
            check(checkpoint.contains(name) && checkpoint.info(name) != nil, "\(name) listed but not found")
            _ = try? checkpoint.tensor(name)
        }
    }

    /// Small checkpoints for the config target's agreement checks: a 1-layer BERT (vocab 8, hidden
    /// 4, intermediate 8, 16 positions, 2 token types) and a 1-layer GPT-2 of the same sizes.
    static let checkpoints: (bert: Checkpoint, gpt2: Checkpoint) = {
        func write(_ tensors: [(String, [Int])], as name: String) -> Checkpoint {
            var header = "{"
            var offset = 0
            for (i, (tensor, shape)) in tensors.enumerated() {
                let bytes = shape.reduce(4, *)
                header += (i > 0 ? "," : "") + "\"\(tensor)\":{\"dtype\":\"F32\",\"shape\":\(shape),"
                    + "\"data_offsets\":[\(offset),\(offset + bytes)]}"
                offset += bytes
            }
            header += "}"
            let image = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
                + [UInt8](repeating: 0, count: offset)
            guard let checkpoint = try? Checkpoint(path: Scratch.save(image, as: name)) else {
                fatalError("flint-fuzz: bad scratch checkpoint")
            }
            return checkpoint
        }
        let bert = write([("embeddings.word_embeddings.weight", [8, 4]), ("embeddings.position_embeddings.weight", [16, 4]),
                          ("embeddings.token_type_embeddings.weight", [2, 4]), ("encoder.layer.0.intermediate.dense.weight", [8, 4])],
                         as: "bert.safetensors")
        let gpt2 = write([("wte.weight", [8, 4]), ("wpe.weight", [16, 4]), ("h.0.mlp.c_fc.weight", [4, 8])], as: "gpt2.safetensors")
        return (bert, gpt2)
    }()

    static func config(_ bytes: [UInt8]) {
        guard let json = try? JSONParser.parse(bytes) else { return }
        if let config = try? EncoderConfig(json: json, path: "config.json") {
            check(config.hiddenSize % config.numAttentionHeads == 0 && config.numHiddenLayers <= 4096, "encoder config bounds")
            let bert = Encoder(config: config, hasTensor: { checkpoints.bert.contains($0) })
            _ = try? bert.requireAgreement(with: checkpoints.bert, configPath: "config.json")
            let outputs = Set(bert.availableOutputs + [.sentenceEmbedding])
            if let plan = try? bert.plan(outputs: outputs, maxTokens: 64, maxSequences: 4) { _ = plan.arenaLayout() }
        }
        if let config = try? GPT2Config(json: json, path: "config.json") {
            check(config.nEmbd % config.nHead == 0 && config.nLayer <= 4096, "GPT-2 config bounds")
            let gpt2 = GPT2(config: config, hasTensor: { checkpoints.gpt2.contains($0) })
            _ = try? gpt2.requireAgreement(with: checkpoints.gpt2, configPath: "config.json")
            let context = min(64, config.nPositions)
            if let plan = try? gpt2.plan(outputs: [.nextToken, .logits], maxTokens: 64, maxSequences: 4, maxContext: context) {
                _ = plan.arenaLayout()
            }
        }
    }

    static let sampleTexts = ["Hello, world! Flint's tokenizer.", "  héllo\twörld 你好 🙂\u{301}", "",
                              "a b c d e f g h i j k l m n o p"]

    /// Encodes a few texts with `tokenizer` (alone, as pairs, truncated) and checks the results.
    static func exercise(_ tokenizer: Tokenizer, texts: [String] = sampleTexts, truncation: Truncation? = nil) {
        for (i, text) in texts.enumerated() {
            let pair: String? = i % 2 == 1 ? texts[(i + 1) % texts.count] : nil
            for special in [true, false] {
                guard let e = try? tokenizer.encode(text, pair: pair, addSpecialTokens: special, truncation: truncation) else { continue }
                checkEncoding(e, tokenizer, text: text, pair: pair, special: special, truncation: truncation)
                _ = tokenizer.decode(e.ids)
                _ = tokenizer.decode(e.ids, skipSpecialTokens: false)
            }
        }
    }

    /// Array lengths agree, offsets lie inside the text, truncation holds. Overflowing windows are
    /// bounded only for a single text with room left for it: with none (max length = the special
    /// tokens), HF moves the whole text into one window, and so does Flint.
    static func checkEncoding(_ e: Encoding, _ tokenizer: Tokenizer, text: String, pair: String?, special: Bool, truncation: Truncation?) {
        check(e.typeIds.count == e.count && e.offsets.count == e.count && e.specialTokensMask.count == e.count, "encoding arrays disagree")
        let longest = max(text.unicodeScalars.count, pair?.unicodeScalars.count ?? 0)
        for span in e.offsets { check(span.start >= 0 && span.start <= span.end && span.end <= longest, "offset \(span) outside the text") }
        // A template that names an input twice repeats its tokens after truncation budgeted them once, so
        // HF (tokenizers 0.23.3) returns more than the maximum length there too: Tests/Fixtures/tokenizers/
        // template_repeat_truncation.json holds its answers, which Flint matches; the limit cannot hold.
        if let truncation, (tokenizer.postProcessor as? TemplateProcessing)?.repeatsSequence(isPair: pair != nil) != true {
            check(e.count <= truncation.maxLength, "\(e.count) tokens after truncation to \(truncation.maxLength)")
            // Pairs are exempt: when one side keeps no tokens, HF (tokenizers 0.23.3) also returns
            // windows longer than the limit (e.g. GPT-2, max 1, a 5- and a 1-token text: windows of 2).
            let added = special ? tokenizer.specialTokenCount(isPair: false) : 0
            if pair == nil, truncation.maxLength > added {
                for o in e.overflowing { check(o.count <= truncation.maxLength, "an overflowing window is too long") }
            }
        }
    }

    static func tokenizerJSON(_ bytes: [UInt8]) {
        guard let tokenizer = try? Tokenizer.load(Scratch.save(bytes, as: "tokenizer.json")) else { return }
        exercise(tokenizer)
        exercise(tokenizer, truncation: Truncation(maxLength: 5, strategy: .longestFirst, stride: 1))
    }

    static func vocabMerges(_ bytes: [UInt8]) {
        guard let mode = bytes.first else { return }
        let rest = bytes.dropFirst()
        let cut = rest.firstIndex(of: 0) ?? rest.endIndex
        let first = Array(rest[..<cut]), second = cut < rest.endIndex ? Array(rest[(cut + 1)...]) : []
        let tokenizer: Tokenizer?
        if mode & 1 == 0 {
            Scratch.save(first, as: "vocab.txt")
            if second.isEmpty { Scratch.remove("tokenizer_config.json") } else { Scratch.save(second, as: "tokenizer_config.json") }
            tokenizer = try? Tokenizer.load(Scratch.folder + "/vocab.txt")
        } else {
            let vocab = Scratch.save(first, as: "vocab.json"), merges = Scratch.save(second, as: "merges.txt")
            tokenizer = try? Tokenizer.loadGPT2(vocab: vocab, merges: merges)
        }
        if let tokenizer { exercise(tokenizer) }
    }

    /// The released tokenizers from the test assets (scripts/fetch-assets), loaded once.
    static let released: [Tokenizer] = {
        let assets = getenv("FLINT_ASSETS").map { String(cString: $0) } ?? ".cache/assets"
        let paths = ["all-MiniLM-L6-v2/tokenizer.json", "all-MiniLM-L6-v2/vocab.txt", "gpt2-hf/tokenizer.json", "gpt2-hf/vocab.json",
                     "xlmr-unigram/tokenizer.json"]
        return paths.map { path in
            do {
                return try Tokenizer.load(assets + "/" + path)
            } catch {
                fatalError("flint-fuzz: the tokenizers target needs the test assets (scripts/fetch-assets): \(error)")
            }
        }
    }()

    /// First byte: flags (bit 0 pair, bit 1 special tokens, bit 2 truncation, bits 3-4 strategy,
    /// bit 5 left truncation); second: max length; third: stride; then the text ("\t" splits a pair).
    static func tokenizers(_ bytes: [UInt8]) {
        guard bytes.count >= 3 else { return }
        let flags = bytes[0], maxLength = Int(bytes[1]) % 64, stride = Int(bytes[2]) % 8
        let body = Array(bytes[3...])
        let text = String(decoding: body, as: UTF8.self)
        var pair: String?
        var first = text
        if flags & 1 != 0, let tab = text.firstIndex(of: "\t") {
            first = String(text[..<tab])
            pair = String(text[text.index(after: tab)...])
        }
        let strategies = Truncation.Strategy.allCases
        let truncation = flags & 4 == 0 ? nil : Truncation(maxLength: maxLength, strategy: strategies[Int(flags >> 3) % strategies.count],
                                                         stride: stride, direction: flags & 32 == 0 ? .right : .left)
        for tokenizer in released {
            let special = flags & 2 != 0
            if let e = try? tokenizer.encode(first, pair: pair, addSpecialTokens: special, truncation: truncation) {
                checkEncoding(e, tokenizer, text: first, pair: pair, special: special, truncation: truncation)
                let vocabulary = e.ids.allSatisfy { tokenizer.token(forId: $0) != nil }
                check(vocabulary, "an id outside the vocabulary")
                _ = tokenizer.decode(e.ids)
            }
            // Raw bytes: invalid UTF-8 must be a typed error, never a guess.
            let utf8 = try? tokenizer.encode(utf8: body)
            check((utf8 == nil) == (String(validating: body, as: UTF8.self) == nil), "UTF-8 validation")
        }
    }
}
