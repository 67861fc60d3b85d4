import FlintCheckpoint

/// Where one encoder family keeps its weights: the checkpoint's names, relative to the base model's
/// prefix (`bert.`, `distilbert.`, `roberta.` in task-head checkpoints, none in base-model ones).
/// Every name is a module: `<name>.weight` and `<name>.bias` (a LayerNorm's gamma and beta).
/// The layer itself is the same for every family (`Encoder.plan`).
public struct EncoderLayout: Sendable, Equatable {
    /// The base model's attribute in task-head checkpoints, with its dot.
    public var basePrefix: String
    public var wordEmbeddings: String
    public var positionEmbeddings: String
    /// nil: the family has no token types (DistilBERT).
    public var tokenTypeEmbeddings: String?
    public var embeddingNorm: String
    /// Layer `N`'s modules are under `<layers>N.`.
    public var layers: String
    public var query: String
    public var key: String
    public var value: String
    public var attentionOutput: String
    public var attentionNorm: String
    public var intermediate: String
    public var output: String
    public var outputNorm: String
    /// tanh(W · h[CLS] + b) of the base model; nil when the family has none.
    public var pooler: String?
    /// What sequence classification puts between the encoder and `classifier`.
    public var sequenceClassifier: SequenceClassifier

    /// The sequence-classification head: `classifier(pool(x))`.
    public enum SequenceClassifier: Sendable, Equatable {
        /// BERT: the base model's pooler, then `classifier`.
        case pooler(classifier: String)
        /// RoBERTa (`dense` + tanh) and DistilBERT (`pre_classifier` + ReLU) on the first token's
        /// state, then `classifier`.
        case firstTokenDense(dense: String, activation: String, classifier: String)

        public var usesPooler: Bool { if case .pooler = self { true } else { false } }

        public var classifier: String {
            switch self {
            case let .pooler(c), let .firstTokenDense(_, _, c): c
            }
        }
    }

    /// BertModel and its heads (modeling_bert.py).
    public static let bert = EncoderLayout(
        basePrefix: "bert.", wordEmbeddings: "embeddings.word_embeddings", positionEmbeddings: "embeddings.position_embeddings",
        tokenTypeEmbeddings: "embeddings.token_type_embeddings", embeddingNorm: "embeddings.LayerNorm", layers: "encoder.layer.",
        query: "attention.self.query", key: "attention.self.key", value: "attention.self.value",
        attentionOutput: "attention.output.dense", attentionNorm: "attention.output.LayerNorm", intermediate: "intermediate.dense",
        output: "output.dense", outputNorm: "output.LayerNorm", pooler: "pooler.dense",
        sequenceClassifier: .pooler(classifier: "classifier"))

    /// RobertaModel and XLMRobertaModel (BERT's names under `roberta.`; the classification head is
    /// RobertaClassificationHead).
    public static let roberta: EncoderLayout = {
        var layout = bert
        layout.basePrefix = "roberta."
        layout.sequenceClassifier = .firstTokenDense(dense: "classifier.dense", activation: "tanh", classifier: "classifier.out_proj")
        return layout
    }()

    /// DistilBertModel (modeling_distilbert.py): `transformer.layer.N` with q_lin/k_lin/v_lin.
    public static let distilBert = EncoderLayout(
        basePrefix: "distilbert.", wordEmbeddings: "embeddings.word_embeddings", positionEmbeddings: "embeddings.position_embeddings",
        tokenTypeEmbeddings: nil, embeddingNorm: "embeddings.LayerNorm", layers: "transformer.layer.",
        query: "attention.q_lin", key: "attention.k_lin", value: "attention.v_lin", attentionOutput: "attention.out_lin",
        attentionNorm: "sa_layer_norm", intermediate: "ffn.lin1", output: "ffn.lin2", outputNorm: "output_layer_norm", pooler: nil,
        sequenceClassifier: .firstTokenDense(dense: "pre_classifier", activation: "relu", classifier: "classifier"))

    public static func of(_ family: EncoderFamily) -> EncoderLayout {
        switch family {
        case .bert: bert
        case .roberta, .xlmRoberta: roberta
        case .distilBert: distilBert
        }
    }
}
