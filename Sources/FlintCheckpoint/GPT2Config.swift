import FlintCore
import FlintJSON

/// Which GPT-2 class a checkpoint was saved from (the first entry of `architectures`).
public enum GPT2Architecture: String, Sendable, CaseIterable {
    /// The bare decoder: keys without the `transformer.` prefix, no LM head of its own (Flint ties
    /// it to the token embeddings, as GPT2LMHeadModel does).
    case model = "GPT2Model"
    case lmHead = "GPT2LMHeadModel"
}

/// A GPT-2 `config.json`, decoded by hand so every problem names the field.
///
/// Required: `model_type` ("gpt2"). Optional with transformers' `GPT2Config` defaults: `vocab_size`
/// (50257), `n_positions` (1024), `n_embd` (768), `n_layer` (12), `n_head` (12), `n_inner`
/// (null: 4·n_embd), `activation_function` ("gelu_new"), `layer_norm_epsilon` (1e-5),
/// `scale_attn_weights` (true), `scale_attn_by_inverse_layer_idx` (false), `tie_word_embeddings`
/// (true), `bos_token_id` / `eos_token_id` (50256; an int, a list or null). Refused:
/// `add_cross_attention: true` and architectures other than GPT2Model / GPT2LMHeadModel.
/// `reorder_and_upcast_attn` only changes PyTorch's precision: Flint's attention is fp32 anyway.
public struct GPT2Config: Sendable, Equatable {
    public var vocabSize: Int
    /// The context length: `max_position_embeddings` (n_positions).
    public var nPositions: Int
    public var nEmbd: Int
    public var nLayer: Int
    public var nHead: Int
    /// MLP width (n_inner, default 4·n_embd).
    public var nInner: Int
    /// As written ("gelu_new"...); the model decides which it implements.
    public var activationFunction: String
    public var layerNormEpsilon: Double
    public var scaleAttnWeights: Bool
    public var scaleAttnByInverseLayerIdx: Bool
    public var tieWordEmbeddings: Bool
    public var bosTokenId: Int?
    /// Tokens that end a generation (empty: none).
    public var eosTokenIds: [Int]
    public var architecture: GPT2Architecture

    public init(vocabSize: Int = 50257, nPositions: Int = 1024, nEmbd: Int = 768, nLayer: Int = 12, nHead: Int = 12,
                nInner: Int? = nil, activationFunction: String = "gelu_new", layerNormEpsilon: Double = 1e-5,
                architecture: GPT2Architecture = .lmHead)
    {
        self.vocabSize = vocabSize
        self.nPositions = nPositions
        self.nEmbd = nEmbd
        self.nLayer = nLayer
        self.nHead = nHead
        self.nInner = nInner ?? 4 * nEmbd
        self.activationFunction = activationFunction
        self.layerNormEpsilon = layerNormEpsilon
        scaleAttnWeights = true
        scaleAttnByInverseLayerIdx = false
        tieWordEmbeddings = true
        bosTokenId = 50256
        eosTokenIds = [50256]
        self.architecture = architecture
    }

    /// The released GPT-2 sizes (OpenAI's 124M, 355M, 774M and 1.5B).
    public static let gpt2 = GPT2Config()
    public static let gpt2Medium = GPT2Config(nEmbd: 1024, nLayer: 24, nHead: 16)
    public static let gpt2Large = GPT2Config(nEmbd: 1280, nLayer: 36, nHead: 20)
    public static let gpt2XL = GPT2Config(nEmbd: 1600, nLayer: 48, nHead: 25)

    /// Width of one attention head.
    public var headSize: Int { nEmbd / nHead }

    /// Reads and decodes `path` (a config.json).
    public static func load(path: String) throws(FlintError) -> GPT2Config {
        try GPT2Config(json: try FileSystem.json(path), path: path)
    }

    /// Decodes a parsed config.json; `path` is used in error messages.
    public init(json: JSONValue, path: String) throws(FlintError) {
        let config = try ConfigReader(json: json, path: path)
        try config.requireModelType("gpt2")
        vocabSize = try config.int("vocab_size", default: 50257)
        nPositions = try config.int("n_positions", default: 1024)
        nEmbd = try config.int("n_embd", default: 768)
        nLayer = try config.int("n_layer", default: 12, maximum: ConfigReader.maxLayers)
        nHead = try config.int("n_head", default: 12)
        nInner = try config.int("n_inner", default: 4 * nEmbd)
        guard nEmbd % nHead == 0 else { throw config.bad("n_embd \(nEmbd) is not divisible by n_head \(nHead)") }
        activationFunction = try config.string("activation_function", default: "gelu_new")!
        layerNormEpsilon = try config.epsilon("layer_norm_epsilon", default: 1e-5)
        scaleAttnWeights = try config.bool("scale_attn_weights", default: true)
        scaleAttnByInverseLayerIdx = try config.bool("scale_attn_by_inverse_layer_idx", default: false)
        tieWordEmbeddings = try config.bool("tie_word_embeddings", default: true)
        if try config.bool("add_cross_attention", default: false) {
            throw .unsupportedModel(path: path, reason: "add_cross_attention (an encoder-decoder GPT-2) is not implemented")
        }
        // Absent: transformers' default 50256; null: none.
        if json["bos_token_id"] == nil {
            bosTokenId = 50256
        } else {
            bosTokenId = config.value("bos_token_id") == nil ? nil : try config.tokenId("bos_token_id")
        }
        if json["eos_token_id"] == nil {
            eosTokenIds = [50256]
        } else if let v = config.value("eos_token_id"), let list = v.array {
            var ids: [Int] = []
            for item in list {
                guard let i = item.int, i >= 0, i <= Int(Int32.max) else {
                    throw config.bad("eos_token_id contains \(item.serialized), expected token ids")
                }
                ids.append(i)
            }
            eosTokenIds = ids
        } else {
            eosTokenIds = try config.value("eos_token_id") == nil ? [] : [config.tokenId("eos_token_id")]
        }
        let architectures = try config.strings("architectures")
        if let first = architectures.first {
            guard let a = GPT2Architecture(rawValue: first) else {
                throw .unsupportedModel(path: path, reason: "architecture \"\(first)\" is not supported (supported: "
                    + GPT2Architecture.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            architecture = a
        } else {
            architecture = .lmHead
        }
    }
}
