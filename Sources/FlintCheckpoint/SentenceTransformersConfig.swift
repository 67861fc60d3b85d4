import FlintCore
import FlintJSON

/// What a sentence-transformers folder says about turning token states into a sentence embedding:
/// `modules.json` (Transformer, Pooling, optional Normalize), the Pooling module's `config.json`,
/// and the Transformer module's `sentence_bert_config.json`.
///
/// Only the modules Flint implements are accepted (Transformer, Pooling with mean/CLS/max,
/// Normalize); any other module (Dense, LayerNorm, ...) is refused rather than skipped, since
/// skipping it would silently change the embeddings.
public struct SentenceTransformersConfig: Sendable, Equatable {
    public var pooling: Plan.Pooling
    /// Whether a Normalize module follows pooling (unit-length embeddings).
    public var normalize: Bool
    /// `max_seq_length` from sentence_bert_config.json (nil when absent or null).
    public var maxSeqLength: Int?
    /// `do_lower_case` from sentence_bert_config.json (false when absent).
    public var doLowerCase: Bool
    /// The Pooling config's `word_embedding_dimension` (must equal the model's hidden size; the
    /// model code checks), nil when absent.
    public var wordEmbeddingDimension: Int?
    /// The Transformer module's folder relative to the model folder ("" = the folder itself).
    public var transformerPath: String

    public init(pooling: Plan.Pooling, normalize: Bool, maxSeqLength: Int? = nil, doLowerCase: Bool = false,
                wordEmbeddingDimension: Int? = nil, transformerPath: String = "")
    {
        self.pooling = pooling
        self.normalize = normalize
        self.maxSeqLength = maxSeqLength
        self.doLowerCase = doLowerCase
        self.wordEmbeddingDimension = wordEmbeddingDimension
        self.transformerPath = transformerPath
    }

    static let transformerType = "sentence_transformers.models.Transformer"
    static let poolingType = "sentence_transformers.models.Pooling"
    static let normalizeType = "sentence_transformers.models.Normalize"

    /// The folder's sentence-transformers configuration, or nil when it has no `modules.json`.
    public static func load(folder: String) throws(FlintError) -> SentenceTransformersConfig? {
        let modulesPath = FileSystem.join(folder, "modules.json")
        guard FileSystem.kind(modulesPath) != .missing else { return nil }
        let modules = try FileSystem.json(modulesPath)
        func bad(_ reason: String) -> FlintError { .badConfig(path: modulesPath, reason: reason) }
        guard let list = modules.array else { throw bad("modules.json is \(modules.typeName), expected an array of modules") }

        var transformerPath: String?
        var poolingPath: String?
        var normalize = false
        for (i, module) in list.enumerated() {
            guard module.object != nil else { throw bad("module \(i) is \(module.typeName), expected an object") }
            guard let type = module["type"]?.string else { throw bad("module \(i) has no \"type\" string") }
            let path = module["path"]?.string ?? ""
            guard !path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw bad("module \(i) path \"\(path)\" is not inside the model folder")
            }
            switch type {
            case transformerType:
                guard transformerPath == nil else { throw .unsupportedModel(path: modulesPath, reason: "more than one Transformer module") }
                guard i == 0 else {
                    throw .unsupportedModel(path: modulesPath, reason: "the Transformer module must come first (it is module \(i))")
                }
                transformerPath = path
            case poolingType:
                guard transformerPath != nil, poolingPath == nil, !normalize else {
                    throw .unsupportedModel(
                        path: modulesPath, reason: "module \(i): Pooling must come once, after the Transformer and before Normalize")
                }
                poolingPath = path
            case normalizeType:
                guard poolingPath != nil, !normalize else {
                    throw .unsupportedModel(path: modulesPath, reason: "module \(i): Normalize must come once, after Pooling")
                }
                normalize = true
            default:
                throw .unsupportedModel(
                    path: modulesPath, reason: "module \(i) is \(type); supported modules are Transformer, Pooling and Normalize")
            }
        }
        guard let transformerPath else {
            throw .unsupportedModel(path: modulesPath, reason: "no sentence_transformers.models.Transformer module")
        }
        guard let poolingPath else { throw .unsupportedModel(path: modulesPath, reason: "no sentence_transformers.models.Pooling module") }

        // Pooling.
        let poolingConfigPath = FileSystem.join(FileSystem.join(folder, poolingPath), "config.json")
        let pc = try FileSystem.json(poolingConfigPath)
        guard let members = pc.object else {
            throw .badConfig(path: poolingConfigPath, reason: "config is \(pc.typeName), expected a JSON object")
        }
        let implemented: [String: Plan.Pooling] = [
            "pooling_mode_mean_tokens": .mean, "pooling_mode_cls_token": .cls, "pooling_mode_max_tokens": .max,
        ]
        let pooling: Plan.Pooling
        if let v = pc["pooling_mode"], !v.isNull {
            // The constructor's string form; when present sentence-transformers lets it decide.
            guard let mode = v.string else {
                throw .badConfig(path: poolingConfigPath, reason: "pooling_mode is \(v.typeName), expected a string")
            }
            switch mode.lowercased() {
            case "mean": pooling = .mean
            case "cls": pooling = .cls
            case "max": pooling = .max
            default:
                throw .unsupportedModel(path: poolingConfigPath, reason: "pooling_mode \"\(mode)\" is not implemented (mean, cls, max)")
            }
        } else {
            var set: [String] = []
            for (key, value) in members where key.hasPrefix("pooling_mode_") {
                guard let on = value.bool else {
                    throw .badConfig(path: poolingConfigPath, reason: "\(key) is \(value.typeName), expected true or false")
                }
                if on { set.append(key) }
            }
            guard set.count == 1, let mode = implemented[set[0]] else {
                let what = set.isEmpty ? "no pooling mode is set" : "pooling modes set: " + set.joined(separator: ", ")
                throw .unsupportedModel(
                    path: poolingConfigPath,
                    reason: "\(what); exactly one of pooling_mode_mean_tokens, pooling_mode_cls_token, pooling_mode_max_tokens must be true"
                )
            }
            pooling = mode
        }
        var dimension: Int?
        if let v = pc["word_embedding_dimension"], !v.isNull {
            guard let d = v.int, d > 0 else {
                throw .badConfig(
                    path: poolingConfigPath, reason: "word_embedding_dimension is \(v.serialized), expected a positive integer")
            }
            dimension = d
        }

        // sentence_bert_config.json (optional).
        var maxSeqLength: Int?
        var doLowerCase = false
        let sbertPath = FileSystem.join(FileSystem.join(folder, transformerPath), "sentence_bert_config.json")
        if FileSystem.kind(sbertPath) != .missing {
            let sb = try FileSystem.json(sbertPath)
            guard sb.object != nil else { throw .badConfig(path: sbertPath, reason: "config is \(sb.typeName), expected a JSON object") }
            if let v = sb["max_seq_length"], !v.isNull {
                guard let n = v.int, n > 0 else {
                    throw .badConfig(path: sbertPath, reason: "max_seq_length is \(v.serialized), expected a positive integer")
                }
                maxSeqLength = n
            }
            if let v = sb["do_lower_case"], !v.isNull {
                guard let b = v.bool else {
                    throw .badConfig(path: sbertPath, reason: "do_lower_case is \(v.typeName), expected true or false")
                }
                doLowerCase = b
            }
        }
        return SentenceTransformersConfig(pooling: pooling, normalize: normalize, maxSeqLength: maxSeqLength, doLowerCase: doLowerCase,
                                          wordEmbeddingDimension: dimension, transformerPath: transformerPath)
    }
}
