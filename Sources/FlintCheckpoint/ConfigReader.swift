import FlintCore
import FlintJSON

/// Typed reads of `config.json` fields for the model configs (BERT, GPT-2): every problem becomes
/// a `FlintError.badConfig` that names the file and the field.
struct ConfigReader {
    let json: JSONValue
    let path: String

    init(json: JSONValue, path: String) throws(FlintError) {
        self.json = json
        self.path = path
        guard json.object != nil else { throw bad("config is \(json.typeName), expected a JSON object") }
    }

    func bad(_ reason: String) -> FlintError { .badConfig(path: path, reason: reason) }

    /// The field's value, or nil when it is absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let v = json[key], !v.isNull else { return nil }
        return v
    }

    /// The largest size field accepted (a dimension, a vocabulary, a context length), so that no
    /// product of sizes a plan or an arena computes can run away before the checkpoint is consulted.
    static let maxSize = 1 << 24
    /// The most layers accepted (the largest released BERT and GPT-2 have 48).
    static let maxLayers = 1 << 12

    func int(_ key: String, default fallback: Int? = nil, minimum: Int = 1, maximum: Int = maxSize) throws(FlintError) -> Int {
        guard let v = value(key) else {
            if let fallback { return fallback }
            throw bad("\(key) is missing")
        }
        guard let i = v.int else {
            let found = if case .number = v { v.serialized } else { v.typeName }
            throw bad("\(key) is \(found), expected an integer")
        }
        guard i >= minimum else { throw bad("\(key) is \(i), expected at least \(minimum)") }
        guard i <= maximum else { throw bad("\(key) is \(i), more than the \(maximum) Flint accepts") }
        return i
    }

    /// A token id: an integer in 0...Int32.max.
    func tokenId(_ key: String) throws(FlintError) -> Int {
        let id = try int(key, minimum: 0, maximum: .max)
        guard id <= Int(Int32.max) else { throw bad("\(key) is \(id), larger than any token id") }
        return id
    }

    func string(_ key: String, default fallback: String? = nil) throws(FlintError) -> String? {
        guard let v = value(key) else { return fallback }
        guard let s = v.string else { throw bad("\(key) is \(v.typeName), expected a string") }
        return s
    }

    func bool(_ key: String, default fallback: Bool) throws(FlintError) -> Bool {
        guard let v = value(key) else { return fallback }
        guard let b = v.bool else { throw bad("\(key) is \(v.typeName), expected true or false") }
        return b
    }

    /// A LayerNorm epsilon: a number in (0, 1).
    func epsilon(_ key: String, default fallback: Double) throws(FlintError) -> Double {
        guard let v = value(key) else { return fallback }
        guard case let .number(eps) = v else { throw bad("\(key) is \(v.typeName), expected a number") }
        guard eps > 0, eps < 1 else { throw bad("\(key) is \(eps), expected a small positive number") }
        return eps
    }

    /// A list of strings (`architectures`); empty when absent.
    func strings(_ key: String) throws(FlintError) -> [String] {
        guard let v = value(key) else { return [] }
        guard let items = v.array else { throw bad("\(key) is \(v.typeName), expected an array of strings") }
        var names: [String] = []
        for item in items {
            guard let s = item.string else { throw bad("\(key) contains \(item.typeName), expected strings") }
            names.append(s)
        }
        return names
    }

    /// Throws `.unsupportedModel` unless `model_type` is `expected`.
    func requireModelType(_ expected: String) throws(FlintError) {
        guard let modelType = try string("model_type") else { throw bad("model_type is missing") }
        guard modelType == expected else {
            throw .unsupportedModel(
                path: path, reason: "model_type \"\(modelType)\" is not supported here (this loader reads \"\(expected)\")")
        }
    }
}
