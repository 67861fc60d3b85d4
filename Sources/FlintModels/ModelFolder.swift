import FlintCheckpoint
import FlintCore
import FlintTokenizers
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a `--model PATH` names, and how to open it: the one place that turns a model folder (or a
/// built-in GPT-2 name) into a ready pipeline. `config.json`'s `model_type` decides: "gpt2" is a
/// decoder, "bert" an encoder; anything else is refused with the supported types named.
public enum ModelFolder {
    public enum Kind: String, Sendable {
        case encoder, decoder
    }

    /// GPT-2 sizes served with seeded random weights (benchmarks, smoke tests) and the GPT-2
    /// tokenizer from the assets folder.
    public static let builtInDecoders: [String: GPT2Config] = [
        "gpt2": .gpt2, "gpt2-medium": .gpt2Medium, "gpt2-large": .gpt2Large, "gpt2-xl": .gpt2XL,
    ]

    /// Whether `path` is a built-in name, a GPT-2 folder or a BERT folder.
    public static func kind(of path: String) throws(FlintError) -> Kind {
        if builtInDecoders[path] != nil { return .decoder }
        guard access(path, R_OK) == 0 else {
            throw .unreadable(path: path, reason: "not a model folder nor a built-in model ("
                + builtInDecoders.keys.sorted().joined(separator: ", ") + ")")
        }
        if GPT2Config.describes(folder: path) { return .decoder }
        do {
            _ = try BertConfig.load(path: path + "/config.json")
            return .encoder
        } catch let .unsupportedModel(configPath, reason) {
            throw .unsupportedModel(path: configPath, reason: reason + "; flint serves \"bert\" encoders and \"gpt2\" decoders")
        }
    }

    /// A BERT folder as a sentence-embedding pipeline (pooling and length limit from the folder,
    /// as `flint embed`; `normalize` nil: as the folder says).
    public static func openEncoder(_ path: String, backend: any Backend, maxBatchTokens: Int, maxSequences: Int,
                                   normalize: Bool? = nil) throws(FlintError) -> BertPipeline
    {
        try BertPipeline(folder: path, backend: backend, outputs: [.sentenceEmbedding], maxBatchTokens: maxBatchTokens,
                         maxSequences: maxSequences, normalize: normalize)
    }

    /// A GPT-2 ready to generate, with its tokenizer and configuration.
    public struct Decoder: Sendable {
        public let config: GPT2Config
        public let tokenizer: Tokenizer
        public let generator: TokenGenerator
    }

    /// Opens a GPT-2 folder (tokenizer files in the folder, else `tokenizerFallback`) or a
    /// built-in size (random weights; tokenizer from `tokenizerFallback`). The plan holds
    /// `maxSequences` KV slots of the model's whole context (n_positions) and runs up to
    /// `maxTokens` tokens per forward (at least one full prompt).
    public static func openDecoder(_ path: String, backend: any Backend, maxSequences: Int, maxTokens: Int,
                                   tokenizerFallback: String?) throws(FlintError) -> Decoder
    {
        let config: GPT2Config
        let configPath: String
        let weights: any WeightSource
        let hasTensor: (String) -> Bool
        var tokenizerPath = tokenizerFallback
        if let builtIn = builtInDecoders[path] {
            (config, configPath, weights, hasTensor) = (builtIn, "built-in \(path)", RandomWeights(seed: 0), { _ in false })
        } else {
            configPath = path + "/config.json"
            config = try GPT2Config.load(path: configPath)
            let checkpoint = try Checkpoint(path: path)
            (weights, hasTensor) = (checkpoint, { checkpoint.contains($0) })
            if access(path + "/tokenizer.json", R_OK) == 0 || access(path + "/vocab.json", R_OK) == 0 { tokenizerPath = path }
        }
        guard let tokenizerPath else {
            throw .unreadable(path: path, reason: "no tokenizer: the folder has no tokenizer.json or vocab.json + merges.txt")
        }
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer.load(tokenizerPath) } catch { throw .unreadable(path: tokenizerPath, reason: "tokenizer: \(error)") }
        let model = GPT2(config: config, hasTensor: hasTensor)
        let plan = try model.plan(outputs: [.nextToken], maxTokens: max(maxTokens, config.nPositions, maxSequences),
                                  maxSequences: maxSequences, maxContext: config.nPositions, configPath: configPath)
        let generator = try TokenGenerator(prepared: try backend.prepare(plan, weights: weights), eosTokenIds: config.eosTokenIds)
        return Decoder(config: config, tokenizer: tokenizer, generator: generator)
    }
}
