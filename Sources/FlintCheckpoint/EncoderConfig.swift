import FlintCore
import FlintJSON

/// The encoder families Flint runs, by config.json's `model_type`. They share one layer (post-LN
/// self-attention + feed-forward); what differs is the checkpoint's key layout, the positions and
/// the token types (see `EncoderLayout` in FlintModels).
public enum EncoderFamily: String, Sendable, CaseIterable {
    case bert
    case distilBert = "distilbert"
    case roberta
    case xlmRoberta = "xlm-roberta"

    /// The prefix of the family's class names in `architectures` ("Bert" in "BertForQuestionAnswering").
    public var classPrefix: String {
        switch self {
        case .bert: "Bert"
        case .distilBert: "DistilBert"
        case .roberta: "Roberta"
        case .xlmRoberta: "XLMRoberta"
        }
    }
}

/// Which head a checkpoint carries, from the first entry of `architectures` in config.json: the
/// family's class prefix followed by the raw value ("Bert" + "ForQuestionAnswering").
public enum EncoderHead: String, Sendable, CaseIterable {
    case model = "Model"
    case maskedLM = "ForMaskedLM"
    case sequenceClassification = "ForSequenceClassification"
    case tokenClassification = "ForTokenClassification"
    case questionAnswering = "ForQuestionAnswering"

    /// The heads a family's checkpoints may carry (the masked-LM head only for BERT).
    public static func supported(by family: EncoderFamily) -> [EncoderHead] {
        family == .bert ? allCases : allCases.filter { $0 != .maskedLM }
    }
}

/// An encoder's `config.json` (BERT, DistilBERT, RoBERTa, XLM-RoBERTa), decoded by hand so every
/// problem names the field.
///
/// BERT, RoBERTa and XLM-RoBERTa read `vocab_size`, `hidden_size`, `num_hidden_layers`,
/// `num_attention_heads`, `intermediate_size`, `max_position_embeddings` (required) and
/// `hidden_act` ("gelu"), `type_vocab_size` (2), `layer_norm_eps` (1e-12), `position_embedding_type`
/// (must be "absolute"), `pad_token_id` (RoBERTa's position offset; 1) with transformers' defaults.
/// DistilBERT reads `dim`, `n_layers`, `n_heads`, `hidden_dim`, `vocab_size`,
/// `max_position_embeddings` (512), `activation` ("gelu"), `sinusoidal_pos_embds` (false); it has no
/// token types and a fixed LayerNorm epsilon of 1e-12. All: `architectures` (the base model), labels
/// (`id2label` wins over `num_labels`, as in transformers; default 2).
public struct EncoderConfig: Sendable, Equatable {
    public var family: EncoderFamily
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    /// As written ("gelu", "gelu_new", "relu"...); the model decides which it implements.
    public var hiddenAct: String
    /// Rows of the checkpoint's position table.
    public var maxPositionEmbeddings: Int
    /// 0: no token types (DistilBERT).
    public var typeVocabSize: Int
    public var layerNormEps: Double
    /// The position of a sequence's first token in the position table: RoBERTa's
    /// `padding_idx + 1` (HF's create_position_ids_from_input_ids on unpadded input), else 0.
    public var positionOffset: Int
    /// DistilBERT's `sinusoidal_pos_embds`: the position table is the fixed sinusoid (used when
    /// the checkpoint does not store it).
    public var sinusoidalPositions: Bool
    /// The `architectures` list as written (empty when absent).
    public var architectures: [String]
    public var head: EncoderHead
    public var numLabels: Int
    /// Label names by class index (empty when config.json has none).
    public var id2label: [Int: String]
    /// `problem_type` ("single_label_classification", "multi_label_classification", "regression"),
    /// which picks the classification pipeline's score function; nil when absent.
    public var problemType: String?

    public init(
        family: EncoderFamily = .bert, vocabSize: Int, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
        intermediateSize: Int, hiddenAct: String = "gelu", maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2,
        layerNormEps: Double = 1e-12, positionOffset: Int = 0, head: EncoderHead = .model, numLabels: Int = 2,
        id2label: [Int: String] = [:]
    ) {
        self.family = family
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.hiddenAct = hiddenAct
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.positionOffset = positionOffset
        self.sinusoidalPositions = false
        self.architectures = [family.classPrefix + head.rawValue]
        self.head = head
        self.numLabels = numLabels
        self.id2label = id2label
        self.problemType = nil
    }

    /// bert-base-uncased.
    public static let bertBase = EncoderConfig(
        vocabSize: 30522, hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12,
        intermediateSize: 3072)
    /// bert-base-uncased with the question-answering head (`BertForQuestionAnswering`).
    public static let bertBaseQA = EncoderConfig(
        vocabSize: 30522, hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12,
        intermediateSize: 3072, head: .questionAnswering)
    /// bert-large-uncased.
    public static let bertLarge = EncoderConfig(
        vocabSize: 30522, hiddenSize: 1024, numHiddenLayers: 24, numAttentionHeads: 16,
        intermediateSize: 4096)
    /// sentence-transformers/all-MiniLM-L6-v2.
    public static let miniLML6 = EncoderConfig(
        vocabSize: 30522, hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12,
        intermediateSize: 1536)

    /// Width of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// Tokens one sequence may have: the position table's rows past the offset.
    public var maxSequenceLength: Int { max(maxPositionEmbeddings - positionOffset, 0) }

    /// The name of class `index`: `id2label`'s entry, else transformers' default `LABEL_<index>`.
    public func label(_ index: Int) -> String { id2label[index] ?? "LABEL_\(index)" }

    /// Reads and decodes `path` (a config.json).
    public static func load(path: String) throws(FlintError) -> EncoderConfig {
        try EncoderConfig(json: try FileSystem.json(path), path: path)
    }

    /// The encoder `model_type`s, for messages.
    public static var supportedModelTypes: String { EncoderFamily.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") }

    /// Decodes a parsed config.json; `path` is used in error messages.
    public init(json: JSONValue, path: String) throws(FlintError) {
        let config = try ConfigReader(json: json, path: path)
        func bad(_ reason: String) -> FlintError { config.bad(reason) }
        guard let modelType = try config.string("model_type") else { throw bad("model_type is missing") }
        guard let family = EncoderFamily(rawValue: modelType) else {
            throw .unsupportedModel(
                path: path,
                reason: "model_type \"\(modelType)\" is not an encoder Flint runs (supported: "
                    + Self.supportedModelTypes + ")")
        }
        self.family = family
        let position = try config.string("position_embedding_type", default: "absolute")!
        guard position == "absolute" else {
            throw .unsupportedModel(path: path, reason: "position_embedding_type \"\(position)\" is not implemented (only \"absolute\")")
        }

        vocabSize = try config.int("vocab_size")
        sinusoidalPositions = false
        if family == .distilBert {
            hiddenSize = try config.int("dim")
            numHiddenLayers = try config.int("n_layers", maximum: ConfigReader.maxLayers)
            numAttentionHeads = try config.int("n_heads")
            intermediateSize = try config.int("hidden_dim")
            maxPositionEmbeddings = try config.int("max_position_embeddings", default: 512)
            hiddenAct = try config.string("activation", default: "gelu")!
            sinusoidalPositions = try config.bool("sinusoidal_pos_embds", default: false)
            typeVocabSize = 0
            layerNormEps = 1e-12  // nn.LayerNorm(dim, eps=1e-12) in modeling_distilbert.py
            positionOffset = 0
        } else {
            hiddenSize = try config.int("hidden_size")
            numHiddenLayers = try config.int("num_hidden_layers", maximum: ConfigReader.maxLayers)
            numAttentionHeads = try config.int("num_attention_heads")
            intermediateSize = try config.int("intermediate_size")
            maxPositionEmbeddings = try config.int("max_position_embeddings")
            typeVocabSize = try config.int("type_vocab_size", default: 2, minimum: 0)
            hiddenAct = try config.string("hidden_act", default: "gelu")!
            layerNormEps = try config.epsilon("layer_norm_eps", default: 1e-12)
            if family == .bert {
                positionOffset = 0
            } else {
                positionOffset = try config.int("pad_token_id", default: 1, minimum: 0) + 1
                guard positionOffset < maxPositionEmbeddings else {
                    throw bad("pad_token_id \(positionOffset - 1) leaves no positions in max_position_embeddings \(maxPositionEmbeddings)")
                }
            }
        }
        let heads = family == .distilBert ? "n_heads" : "num_attention_heads", width = family == .distilBert ? "dim" : "hidden_size"
        guard hiddenSize % numAttentionHeads == 0 else {
            throw bad("\(width) \(hiddenSize) is not divisible by \(heads) \(numAttentionHeads)")
        }

        architectures = try config.strings("architectures")
        if let first = architectures.first {
            let supported = EncoderHead.supported(by: family)
            guard first.hasPrefix(family.classPrefix),
                let h = EncoderHead(rawValue: String(first.dropFirst(family.classPrefix.count))), supported.contains(h)
            else {
                throw .unsupportedModel(
                    path: path,
                    reason: "architecture \"\(first)\" is not supported for model_type \"\(modelType)\" "
                        + "(supported: " + supported.map { family.classPrefix + $0.rawValue }.joined(separator: ", ") + ")")
            }
            head = h
        } else {
            head = .model
        }

        var labels: [Int: String] = [:]
        if let v = config.value("id2label") {
            guard let members = v.object else { throw bad("id2label is \(v.typeName), expected an object") }
            for (key, value) in members {
                guard let index = Int(key), index >= 0 else { throw bad("id2label key \"\(key)\" is not a class index") }
                guard let name = value.string else { throw bad("id2label[\"\(key)\"] is \(value.typeName), expected a string") }
                guard labels[index] == nil else { throw bad("id2label lists class \(index) twice") }
                labels[index] = name
            }
        }
        id2label = labels
        problemType = try config.string("problem_type")
        if !labels.isEmpty {
            numLabels = labels.count
        } else {
            numLabels = try config.int("num_labels", default: 2)
        }
    }
}
