import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintTokenizers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a `--model PATH` names, and how to open it: the one place that turns a model folder (or a
/// built-in name) into a model ready to plan. `config.json`'s `model_type` decides the family
/// ("gpt2": a decoder; "bert", "distilbert", "roberta", "xlm-roberta": an encoder), `architectures`
/// the head; the config is checked against the checkpoint before anything is planned. Anything
/// else is refused with the supported types named.
public enum ModelFolder {
    public enum Kind: String, Sendable {
        case encoder, decoder
    }

    /// GPT-2 sizes served with seeded random weights (benchmarks, smoke tests) and the GPT-2
    /// tokenizer from the assets folder.
    public static let builtInDecoders: [String: GPT2Config] = [
        "gpt2": .gpt2, "gpt2-medium": .gpt2Medium, "gpt2-large": .gpt2Large, "gpt2-xl": .gpt2XL,
    ]
    /// BERT sizes with seeded random weights (benchmarks; no tokenizer).
    /// `bert-base-qa` is BERT-base with the question-answering head (`BertForQuestionAnswering`), for
    /// the speed of the SQuAD shape (seq 384) without a checkpoint.
    public static let builtInEncoders: [String: EncoderConfig] = [
        "bert-base": .bertBase, "bert-base-qa": .bertBaseQA, "bert-large": .bertLarge, "minilm-l6": .miniLML6,
    ]

    /// Every `model_type` Flint runs, for messages.
    static var supportedTypes: String { EncoderConfig.supportedModelTypes + ", \"gpt2\"" }

    /// Whether `path` is a built-in name, an encoder folder or a GPT-2 folder (by `model_type`).
    public static func kind(of path: String) throws(FlintError) -> Kind {
        if builtInDecoders[path] != nil { return .decoder }
        if builtInEncoders[path] != nil { return .encoder }
        guard access(path, R_OK) == 0 else {
            throw .unreadable(
                path: path,
                reason: "not a model folder nor a built-in model ("
                    + (builtInEncoders.keys.sorted() + builtInDecoders.keys.sorted()).joined(separator: ", ") + ")")
        }
        let configPath = FileSystem.join(path, "config.json")
        let json = try FileSystem.json(configPath)
        guard json.object != nil else { throw .badConfig(path: configPath, reason: "config is \(json.typeName), expected a JSON object") }
        guard let modelType = json["model_type"]?.string else { throw .badConfig(path: configPath, reason: "model_type is missing") }
        if modelType == "gpt2" { return .decoder }
        if EncoderFamily(rawValue: modelType) != nil { return .encoder }
        throw .unsupportedModel(path: configPath, reason: "model_type \"\(modelType)\" is not supported (supported: \(supportedTypes))")
    }

    /// An encoder read from its folder (or built in), config checked against the checkpoint.
    public struct LoadedEncoder: Sendable {
        /// The folder, or the built-in name.
        public let path: String
        /// config.json's path ("built-in bert-base" for built-ins), for messages.
        public let configPath: String
        public let model: Encoder
        /// The checkpoint (DistilBERT's sinusoidal position table made when absent), or seeded
        /// random weights for a built-in.
        public let weights: any WeightSource
        /// Whether the model is a folder (with tokenizer files), not a built-in.
        public let isFolder: Bool

        public var config: EncoderConfig { model.config }

        /// A plan with the folder's configuration path in its error messages (see `Encoder.plan`).
        public func plan(
            outputs: Set<Encoder.Output>, maxTokens: Int, maxSequences: Int, pooling: Plan.Pooling = .mean,
            normalize: Bool = false
        ) throws(FlintError) -> Plan {
            try model.plan(
                outputs: outputs, maxTokens: maxTokens, maxSequences: maxSequences, pooling: pooling, normalize: normalize,
                configPath: configPath)
        }
    }

    /// Reads an encoder folder (`config.json` + safetensors checkpoint) or a built-in encoder name.
    /// Refuses a folder of another `model_type` (a decoder included) or head by name.
    public static func encoder(_ path: String) throws(FlintError) -> LoadedEncoder {
        if let builtIn = builtInEncoders[path] {
            return LoadedEncoder(
                path: path, configPath: "built-in \(path)", model: Encoder(config: builtIn, hasTensor: { _ in false }),
                weights: RandomWeights(seed: 0), isFolder: false)
        }
        if try kind(of: path) == .decoder {
            throw .unsupportedModel(
                path: FileSystem.join(path, "config.json"),
                reason: "a GPT-2 decoder, not an encoder (this command "
                    + "takes model_type " + EncoderConfig.supportedModelTypes + ")")
        }
        let configPath = FileSystem.join(path, "config.json")
        let config = try EncoderConfig.load(path: configPath)
        let checkpoint = try Checkpoint(path: path)
        let model = Encoder(config: config, hasTensor: { checkpoint.contains($0) })
        try model.requireAgreement(with: checkpoint, configPath: configPath)
        let weights: any WeightSource =
            config.sinusoidalPositions && !checkpoint.contains(model.positionTableKey)
            ? SinusoidalPositions(base: checkpoint, key: model.positionTableKey) : checkpoint
        return LoadedEncoder(path: path, configPath: configPath, model: model, weights: weights, isFolder: true)
    }

    /// A GPT-2 read from its folder (or built in), config checked against the checkpoint.
    public struct LoadedDecoder: Sendable {
        public let path: String
        public let configPath: String
        public let model: GPT2
        public let weights: any WeightSource
        /// The tokenizer's folder: the model folder when it has tokenizer files, else the fallback.
        public let tokenizerPath: String?

        public var config: GPT2Config { model.config }
    }

    /// Reads a GPT-2 folder (tokenizer files in the folder, else `tokenizerFallback`) or a built-in
    /// size (seeded random weights; tokenizer from `tokenizerFallback`). Refuses other model types.
    public static func decoder(_ path: String, tokenizerFallback: String?) throws(FlintError) -> LoadedDecoder {
        if let builtIn = builtInDecoders[path] {
            return LoadedDecoder(
                path: path, configPath: "built-in \(path)", model: GPT2(config: builtIn, hasTensor: { _ in false }),
                weights: RandomWeights(seed: 0), tokenizerPath: tokenizerFallback)
        }
        let configPath = FileSystem.join(path, "config.json")
        if try kind(of: path) == .encoder {
            throw .unsupportedModel(path: configPath, reason: "an encoder, not a decoder (this command takes model_type \"gpt2\")")
        }
        let config = try GPT2Config.load(path: configPath)
        let checkpoint = try Checkpoint(path: path)
        let model = GPT2(config: config, hasTensor: { checkpoint.contains($0) })
        try model.requireAgreement(with: checkpoint, configPath: configPath)
        let hasTokenizer = access(path + "/tokenizer.json", R_OK) == 0 || access(path + "/vocab.json", R_OK) == 0
        return LoadedDecoder(
            path: path, configPath: configPath, model: model, weights: checkpoint,
            tokenizerPath: hasTokenizer ? path : tokenizerFallback)
    }

    /// An encoder folder as a sentence-embedding pipeline (pooling and length limit from the folder,
    /// as `flint embed`; `normalize` nil: as the folder says).
    public static func openEncoder(
        _ path: String, backend: any Backend, maxBatchTokens: Int, maxSequences: Int,
        normalize: Bool? = nil
    ) throws(FlintError) -> EncoderPipeline {
        try EncoderPipeline(
            folder: path, backend: backend, outputs: [.sentenceEmbedding], maxBatchTokens: maxBatchTokens,
            maxSequences: maxSequences, normalize: normalize)
    }

    /// A GPT-2 ready to generate, with its tokenizer and configuration.
    public struct Decoder: Sendable {
        public let config: GPT2Config
        public let tokenizer: Tokenizer
        public let generator: TokenGenerator
        /// Prompt log-probabilities (`echo` with `logprobs`): its plan is prepared on first use.
        public let scorer: PromptScorer
    }

    /// Opens a GPT-2 (see `decoder(_:tokenizerFallback:)`). The plan holds `maxSequences` KV slots
    /// of the model's whole context (n_positions) and runs up to `maxTokens` tokens per forward (at
    /// least one full prompt).
    public static func openDecoder(
        _ path: String, backend: any Backend, maxSequences: Int, maxTokens: Int,
        tokenizerFallback: String?, weightProgress: ProgressReport? = nil
    ) throws(FlintError) -> Decoder {
        let loaded = try decoder(path, tokenizerFallback: tokenizerFallback)
        guard let tokenizerPath = loaded.tokenizerPath else {
            throw .unreadable(path: path, reason: "no tokenizer: the folder has no tokenizer.json or vocab.json + merges.txt")
        }
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer.load(tokenizerPath) } catch { throw .unreadable(path: tokenizerPath, reason: "tokenizer: \(error)") }
        let config = loaded.config
        let plan = try loaded.model.plan(
            outputs: [.nextToken], maxTokens: max(maxTokens, config.nPositions, maxSequences),
            maxSequences: maxSequences, maxContext: config.nPositions, configPath: loaded.configPath)
        let weights = weightProgress.map { ReportingWeightSource(loaded.weights, plan: plan, report: $0) } ?? loaded.weights
        let generator = try TokenGenerator(prepared: try backend.prepare(plan, weights: weights), eosTokenIds: config.eosTokenIds)
        let scorer = PromptScorer(model: loaded.model, weights: loaded.weights, backend: backend, configPath: loaded.configPath,
                                  sharingWeightsOf: generator.prepared)
        return Decoder(config: config, tokenizer: tokenizer, generator: generator, scorer: scorer)
    }
}

/// DistilBERT's `sinusoidal_pos_embds` table (transformers' create_sinusoidal_embeddings), for a
/// checkpoint that does not store it: row p, column j is sin(p / 10000^(2⌊j/2⌋/dim)) for even j,
/// cos for odd j.
struct SinusoidalPositions: WeightSource {
    let base: any WeightSource
    let key: String

    func tensor(_ name: String, shape: Shape) throws(FlintError) -> HostTensor {
        guard name == key, shape.rank == 2 else { return try base.tensor(name, shape: shape) }
        let (rows, dim) = (shape[0], shape[1])
        var data = [Float](repeating: 0, count: rows * dim)
        for p in 0..<rows {
            for j in 0..<dim {
                let angle = Double(p) / pow(10000, Double(2 * (j / 2)) / Double(dim))
                data[p * dim + j] = Float(j % 2 == 0 ? sin(angle) : cos(angle))
            }
        }
        return HostTensor(shape: shape, data: data)
    }
}
