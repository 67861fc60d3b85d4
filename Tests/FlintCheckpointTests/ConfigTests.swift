#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FlintCheckpoint
import FlintCore
import FlintJSON
import FlintTestSupport
import Testing

@Suite("config.json and sentence-transformers files")
struct ConfigTests {
    static let base: [(String, String)] = [
        ("architectures", #"["BertForSequenceClassification"]"#), ("model_type", #""bert""#), ("vocab_size", "1000"),
        ("hidden_size", "64"), ("num_hidden_layers", "2"), ("num_attention_heads", "4"), ("intermediate_size", "128"),
        ("hidden_act", #""gelu_new""#), ("max_position_embeddings", "128"), ("type_vocab_size", "2"), ("layer_norm_eps", "1e-05"),
        ("position_embedding_type", #""absolute""#), ("id2label", #"{"0": "NEGATIVE", "1": "POSITIVE", "2": "NEUTRAL"}"#),
    ]

    /// Writes config.json with `base` changed by `changes` (nil value removes the field).
    static func write(_ changes: [String: String?] = [:]) -> String {
        var fields = base.filter { changes[$0.0] == nil }.map { "\"\($0.0)\": \($0.1)" }
        for (k, v) in changes.sorted(by: { $0.key < $1.key }) { if let v { fields.append("\"\(k)\": \(v)") } }
        let path = TestPaths.temporaryFolder() + "/config.json"
        TestPaths.write("{" + fields.joined(separator: ", ") + "}", to: path)
        return path
    }

    @Test func decodesAllFields() throws {
        let c = try EncoderConfig.load(path: Self.write())
        #expect(c.vocabSize == 1000 && c.hiddenSize == 64 && c.numHiddenLayers == 2 && c.numAttentionHeads == 4)
        #expect(c.intermediateSize == 128 && c.maxPositionEmbeddings == 128 && c.typeVocabSize == 2)
        #expect(c.hiddenAct == "gelu_new")
        #expect(c.layerNormEps == 1e-5)
        #expect(c.head == .sequenceClassification && c.family == .bert && c.positionOffset == 0)
        #expect(c.numLabels == 3)
        #expect(c.id2label == [0: "NEGATIVE", 1: "POSITIVE", 2: "NEUTRAL"])
        #expect(c.label(1) == "POSITIVE")
        #expect(c.headSize == 16)
    }

    @Test func defaultsFollowTransformers() throws {
        let c = try EncoderConfig.load(path: Self.write(["architectures": nil, "id2label": nil, "hidden_act": nil, "layer_norm_eps": nil,
                                                      "type_vocab_size": nil, "position_embedding_type": nil]))
        #expect(c.head == .model && c.architectures.isEmpty)
        #expect(c.numLabels == 2 && c.label(1) == "LABEL_1")
        #expect(c.hiddenAct == "gelu" && c.layerNormEps == 1e-12 && c.typeVocabSize == 2)
        #expect(try EncoderConfig.load(path: Self.write(["id2label": nil, "num_labels": "5"])).numLabels == 5)
    }

    @Test func architectures() throws {
        for a in EncoderHead.allCases {
            #expect(try EncoderConfig.load(path: Self.write(["architectures": "[\"Bert\(a.rawValue)\"]"])).head == a)
        }
        let path = Self.write(["architectures": #"["BertForPreTraining"]"#])
        expectFlintError("unsupportedModel", [path, "\"BertForPreTraining\"", "BertModel, BertForMaskedLM, BertForSequenceClassification"])
        {
            () throws(FlintError) in _ = try EncoderConfig.load(path: path)
        }
    }

    @Test func missingField() {
        let path = Self.write(["hidden_size": nil])
        expectFlintError("badConfig", [path, "hidden_size is missing"]) { () throws(FlintError) in _ = try EncoderConfig.load(path: path) }
        expectFlintError("badConfig", ["model_type is missing"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["model_type": nil]))
        }
    }

    @Test func wrongTypes() {
        expectFlintError("badConfig", ["hidden_size is a string, expected an integer"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["hidden_size": #""64""#]))
        }
        expectFlintError("badConfig", ["num_hidden_layers is 2.5, expected an integer"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["num_hidden_layers": "2.5"]))
        }
        expectFlintError("badConfig", ["vocab_size is 0, expected at least 1"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["vocab_size": "0"]))
        }
        expectFlintError("badConfig", ["layer_norm_eps is a string"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["layer_norm_eps": #""1e-12""#]))
        }
        expectFlintError("badConfig", ["architectures is a string"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["architectures": #""BertModel""#]))
        }
        expectFlintError("badConfig", ["id2label key \"x\" is not a class index"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["id2label": #"{"x": "A"}"#]))
        }
        expectFlintError("badConfig", ["id2label[\"0\"] is a number"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["id2label": #"{"0": 1}"#]))
        }
    }

    @Test func otherModelTypes() {
        let path = Self.write(["model_type": #""t5""#])
        expectFlintError("unsupportedModel", [path, "model_type \"t5\"", "\"bert\", \"distilbert\", \"roberta\", \"xlm-roberta\""]) {
            () throws(FlintError) in _ = try EncoderConfig.load(path: path)
        }
        // A head of another family, and RoBERTa's masked-LM head (not implemented), are refused by name.
        let mixed = Self.write(["model_type": #""roberta""#, "architectures": #"["BertForQuestionAnswering"]"#])
        expectFlintError(
            "unsupportedModel", [mixed, "\"BertForQuestionAnswering\"", "model_type \"roberta\"", "RobertaForQuestionAnswering"]
        ) {
            () throws(FlintError) in _ = try EncoderConfig.load(path: mixed)
        }
        let mlm = Self.write(["model_type": #""xlm-roberta""#, "architectures": #"["XLMRobertaForMaskedLM"]"#])
        expectFlintError("unsupportedModel", [mlm, "\"XLMRobertaForMaskedLM\"", "XLMRobertaModel"]) {
            () throws(FlintError) in _ = try EncoderConfig.load(path: mlm)
        }
    }

    @Test func familiesReadTheirOwnFields() throws {
        let roberta = try EncoderConfig.load(
            path: Self.write([
                "model_type": #""roberta""#, "pad_token_id": "1", "max_position_embeddings": "130",
                "architectures": #"["RobertaForTokenClassification"]"#,
            ]))
        #expect(roberta.family == .roberta && roberta.positionOffset == 2 && roberta.maxSequenceLength == 128)
        #expect(roberta.head == .tokenClassification)
        let folder = TestPaths.temporaryFolder()
        TestPaths.write(#"{"model_type": "distilbert", "vocab_size": 50, "dim": 48, "n_layers": 3, "n_heads": 6, "hidden_dim": 96, "#
                        + #""activation": "relu", "sinusoidal_pos_embds": true, "architectures": ["DistilBertForQuestionAnswering"]}"#,
                        to: folder + "/config.json")
        let distil = try EncoderConfig.load(path: folder + "/config.json")
        #expect(distil.family == .distilBert && distil.hiddenSize == 48 && distil.numHiddenLayers == 3 && distil.numAttentionHeads == 6)
        #expect(distil.intermediateSize == 96 && distil.hiddenAct == "relu" && distil.sinusoidalPositions && distil.typeVocabSize == 0)
        #expect(distil.maxPositionEmbeddings == 512 && distil.positionOffset == 0 && distil.head == .questionAnswering)
        TestPaths.write(#"{"model_type": "distilbert", "vocab_size": 50, "dim": 48, "n_layers": 3, "n_heads": 5, "hidden_dim": 96}"#,
                        to: folder + "/config.json")
        expectFlintError("badConfig", ["dim 48 is not divisible by n_heads 5"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: folder + "/config.json")
        }
    }

    @Test func nonAbsolutePositions() {
        expectFlintError("unsupportedModel", ["position_embedding_type \"relative_key\" is not implemented"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["position_embedding_type": #""relative_key""#]))
        }
    }

    @Test func hiddenNotDivisibleByHeads() {
        expectFlintError("badConfig", ["hidden_size 64 is not divisible by num_attention_heads 6"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: Self.write(["num_attention_heads": "6"]))
        }
    }

    @Test func unreadableAndInvalidJSON() {
        let folder = TestPaths.temporaryFolder()
        expectFlintError("unreadable", [folder + "/config.json", "no such file"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: folder + "/config.json")
        }
        TestPaths.write("{\"vocab_size\": ", to: folder + "/config.json")
        expectFlintError("badConfig", [folder + "/config.json", "invalid JSON"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: folder + "/config.json")
        }
        TestPaths.write("[]", to: folder + "/config.json")
        expectFlintError("badConfig", ["config is an array"]) { () throws(FlintError) in
            _ = try EncoderConfig.load(path: folder + "/config.json")
        }
    }

    @Test func presets() {
        #expect(
            EncoderConfig.bertBase.hiddenSize == 768 && EncoderConfig.bertBase.numHiddenLayers == 12
                && EncoderConfig.bertBase.intermediateSize == 3072)
        #expect(
            EncoderConfig.bertLarge.hiddenSize == 1024 && EncoderConfig.bertLarge.numHiddenLayers == 24
                && EncoderConfig.bertLarge.numAttentionHeads == 16)
        #expect(EncoderConfig.bertLarge.intermediateSize == 4096 && EncoderConfig.bertLarge.vocabSize == 30522)
        #expect(
            EncoderConfig.miniLML6.hiddenSize == 384 && EncoderConfig.miniLML6.numHiddenLayers == 6 && EncoderConfig.miniLML6.headSize == 32
        )
        for c in [EncoderConfig.bertBase, .bertLarge, .miniLML6] {
            #expect(c.maxPositionEmbeddings == 512 && c.typeVocabSize == 2 && c.layerNormEps == 1e-12 && c.hiddenAct == "gelu")
        }
    }

    // MARK: sentence-transformers

    /// A sentence-transformers folder with the given modules and pooling config.
    static func sentenceFolder(modules: [String], pooling: String, sbert: String? = #"{"max_seq_length": 128, "do_lower_case": true}"#)
        -> String
    {
        let folder = TestPaths.temporaryFolder()
        let items = modules.enumerated().map { i, type in
            let path = type == "Transformer" ? "" : "\(i)_\(type)"
            return #"{"idx": \#(i), "name": "\#(i)", "path": "\#(path)", "type": "sentence_transformers.models.\#(type)"}"#
        }
        TestPaths.write("[" + items.joined(separator: ", ") + "]", to: folder + "/modules.json")
        mkdir(folder + "/1_Pooling", 0o755)
        TestPaths.write(pooling, to: folder + "/1_Pooling/config.json")
        if let sbert { TestPaths.write(sbert, to: folder + "/sentence_bert_config.json") }
        return folder
    }

    static func poolingConfig(mean: Bool = false, cls: Bool = false, max: Bool = false, sqrt: Bool = false) -> String {
        #"{"word_embedding_dimension": 64, "pooling_mode_cls_token": \#(cls), "pooling_mode_mean_tokens": \#(mean), "pooling_mode_max_tokens": \#(max), "pooling_mode_mean_sqrt_len_tokens": \#(sqrt)}"#
    }

    @Test func noModulesJSONMeansNil() throws {
        #expect(try SentenceTransformersConfig.load(folder: TestPaths.temporaryFolder()) == nil)
    }

    @Test func sentenceConfigs() throws {
        let c = try #require(
            try SentenceTransformersConfig.load(
                folder: Self.sentenceFolder(modules: ["Transformer", "Pooling"], pooling: Self.poolingConfig(cls: true))))
        #expect(
            c
                == SentenceTransformersConfig(
                    pooling: .cls, normalize: false, maxSeqLength: 128, doLowerCase: true, wordEmbeddingDimension: 64))
        let m = try #require(
            try SentenceTransformersConfig.load(
                folder: Self.sentenceFolder(
                    modules: ["Transformer", "Pooling", "Normalize"],
                    pooling: Self.poolingConfig(max: true), sbert: nil)))
        #expect(m.pooling == .max && m.normalize && m.maxSeqLength == nil && !m.doLowerCase)
    }

    @Test func poolingModesMustBeExactlyOneImplemented() {
        let two = Self.sentenceFolder(modules: ["Transformer", "Pooling"], pooling: Self.poolingConfig(mean: true, cls: true))
        expectFlintError(
            "unsupportedModel", [two + "/1_Pooling/config.json", "pooling modes set: pooling_mode_cls_token, pooling_mode_mean_tokens"]
        ) {
            () throws(FlintError) in _ = try SentenceTransformersConfig.load(folder: two)
        }
        let none = Self.sentenceFolder(modules: ["Transformer", "Pooling"], pooling: Self.poolingConfig())
        expectFlintError("unsupportedModel", ["no pooling mode is set"]) { () throws(FlintError) in
            _ = try SentenceTransformersConfig.load(folder: none)
        }
        let sqrt = Self.sentenceFolder(modules: ["Transformer", "Pooling"], pooling: Self.poolingConfig(sqrt: true))
        expectFlintError("unsupportedModel", ["pooling_mode_mean_sqrt_len_tokens"]) { () throws(FlintError) in
            _ = try SentenceTransformersConfig.load(folder: sqrt)
        }
    }

    @Test func unknownModulesAreRefused() {
        let folder = Self.sentenceFolder(modules: ["Transformer", "Pooling", "Dense"], pooling: Self.poolingConfig(mean: true))
        expectFlintError("unsupportedModel", [folder + "/modules.json", "sentence_transformers.models.Dense"]) { () throws(FlintError) in
            _ = try SentenceTransformersConfig.load(folder: folder)
        }
        let noPooling = Self.sentenceFolder(modules: ["Transformer"], pooling: Self.poolingConfig(mean: true))
        expectFlintError("unsupportedModel", ["no sentence_transformers.models.Pooling module"]) { () throws(FlintError) in
            _ = try SentenceTransformersConfig.load(folder: noPooling)
        }
    }

    @Test func badSentenceEncoderConfig() {
        let folder = Self.sentenceFolder(
            modules: ["Transformer", "Pooling"], pooling: Self.poolingConfig(mean: true), sbert: #"{"max_seq_length": "256"}"#)
        expectFlintError("badConfig", [folder + "/sentence_bert_config.json", "max_seq_length"]) { () throws(FlintError) in
            _ = try SentenceTransformersConfig.load(folder: folder)
        }
    }
}
