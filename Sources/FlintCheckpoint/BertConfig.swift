import FlintCore
import FlintJSON

/// Which BERT head a checkpoint carries, from the first entry of `architectures` in config.json.
public enum BertArchitecture: String, Sendable, CaseIterable {
    case model = "BertModel"
    case maskedLM = "BertForMaskedLM"
    case sequenceClassification = "BertForSequenceClassification"
    case tokenClassification = "BertForTokenClassification"
    case questionAnswering = "BertForQuestionAnswering"
}

/// A BERT `config.json`, decoded by hand so every problem names the field.
///
/// Required: `model_type` ("bert"), `vocab_size`, `hidden_size`, `num_hidden_layers`,
/// `num_attention_heads`, `intermediate_size`, `max_position_embeddings`. Optional with
/// transformers' `BertConfig` defaults: `hidden_act` ("gelu"), `type_vocab_size` (2),
/// `layer_norm_eps` (1e-12), `position_embedding_type` (must be "absolute"), `architectures`
/// (BertModel), labels (`id2label` wins over `num_labels`, as in transformers; default 2).
public struct BertConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    /// As written ("gelu", "gelu_new", "relu"...); the model decides which it implements.
    public var hiddenAct: String
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var layerNormEps: Double
    /// The `architectures` list as written (empty when absent).
    public var architectures: [String]
    public var architecture: BertArchitecture
    public var numLabels: Int
    /// Label names by class index (empty when config.json has none).
    public var id2label: [Int: String]

    public init(vocabSize: Int, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
                hiddenAct: String = "gelu", maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2,
                layerNormEps: Double = 1e-12, architecture: BertArchitecture = .model, numLabels: Int = 2,
                id2label: [Int: String] = [:])
    {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.hiddenAct = hiddenAct
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.architectures = [architecture.rawValue]
        self.architecture = architecture
        self.numLabels = numLabels
        self.id2label = id2label
    }

    /// bert-base-uncased.
    public static let bertBase = BertConfig(vocabSize: 30522, hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12,
                                            intermediateSize: 3072)
    /// bert-large-uncased.
    public static let bertLarge = BertConfig(vocabSize: 30522, hiddenSize: 1024, numHiddenLayers: 24, numAttentionHeads: 16,
                                             intermediateSize: 4096)
    /// sentence-transformers/all-MiniLM-L6-v2.
    public static let miniLML6 = BertConfig(vocabSize: 30522, hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12,
                                            intermediateSize: 1536)

    /// Width of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// The name of class `index`: `id2label`'s entry, else transformers' default `LABEL_<index>`.
    public func label(_ index: Int) -> String { id2label[index] ?? "LABEL_\(index)" }

    /// Reads and decodes `path` (a config.json).
    public static func load(path: String) throws(FlintError) -> BertConfig {
        try BertConfig(json: try FileSystem.json(path), path: path)
    }

    /// Decodes a parsed config.json; `path` is used in error messages.
    public init(json: JSONValue, path: String) throws(FlintError) {
        let config = try ConfigReader(json: json, path: path)
        func bad(_ reason: String) -> FlintError { config.bad(reason) }
        try config.requireModelType("bert")
        let position = try config.string("position_embedding_type", default: "absolute")!
        guard position == "absolute" else {
            throw .unsupportedModel(path: path, reason: "position_embedding_type \"\(position)\" is not implemented (only \"absolute\")")
        }

        vocabSize = try config.int("vocab_size")
        hiddenSize = try config.int("hidden_size")
        numHiddenLayers = try config.int("num_hidden_layers", maximum: ConfigReader.maxLayers)
        numAttentionHeads = try config.int("num_attention_heads")
        intermediateSize = try config.int("intermediate_size")
        maxPositionEmbeddings = try config.int("max_position_embeddings")
        typeVocabSize = try config.int("type_vocab_size", default: 2, minimum: 0)
        hiddenAct = try config.string("hidden_act", default: "gelu")!
        guard hiddenSize % numAttentionHeads == 0 else {
            throw bad("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        layerNormEps = try config.epsilon("layer_norm_eps", default: 1e-12)

        architectures = try config.strings("architectures")
        if let first = architectures.first {
            guard let a = BertArchitecture(rawValue: first) else {
                throw .unsupportedModel(path: path, reason: "architecture \"\(first)\" is not supported (supported: "
                    + BertArchitecture.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            architecture = a
        } else {
            architecture = .model
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
        if !labels.isEmpty {
            numLabels = labels.count
        } else {
            numLabels = try config.int("num_labels", default: 2)
        }
    }
}
