import FlintJSON
import Hummingbird
import NIOCore

/// A request body's JSON object, read field by field; every wrong type names its field.
struct RequestJSON {
    let value: JSONValue

    /// Reads the body (at most `limit` bytes: 413 past it) and parses it as a JSON object.
    static func read(_ request: Request, limit: Int) async throws(ServeError) -> RequestJSON {
        try parse(try await collect(request, limit: limit))
    }

    /// Parses a body's bytes as a JSON object (400 naming the problem otherwise).
    static func parse(_ bytes: [UInt8]) throws(ServeError) -> RequestJSON {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw .invalid("the body is not valid JSON: \(error.reason) at byte \(error.offset)")
        }
        guard case .object = value else { throw .invalid("the body must be a JSON object, got \(value.typeName)") }
        return RequestJSON(value: value)
    }

    /// The body's bytes, at most `limit` of them.
    static func collect(_ request: Request, limit: Int) async throws(ServeError) -> [UInt8] {
        var request = request
        do {
            let buffer = try await request.collectBody(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw .bodyTooLarge(limit: limit)
        } catch {
            throw .invalid("could not read the body: \(error)")
        }
    }

    func has(_ key: String) -> Bool {
        guard let v = value[key] else { return false }
        return !v.isNull
    }

    func string(_ key: String) throws(ServeError) -> String? {
        guard let v = value[key], !v.isNull else { return nil }
        guard let s = v.string else { throw .badField(key, "expected a string, got \(v.typeName)") }
        return s
    }

    func bool(_ key: String) throws(ServeError) -> Bool? {
        guard let v = value[key], !v.isNull else { return nil }
        guard let b = v.bool else { throw .badField(key, "expected a boolean, got \(v.typeName)") }
        return b
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws(ServeError) -> Int? {
        guard let v = value[key], !v.isNull else { return nil }
        guard let i = v.int else { throw .badField(key, "expected an integer, got \(v.serialized)") }
        guard range.contains(i) else { throw .invalid("\(key) must be in \(range.lowerBound)...\(range.upperBound), got \(i)", param: key) }
        return i
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws(ServeError) -> Double? {
        guard let v = value[key], !v.isNull else { return nil }
        guard case let .number(d) = v else { throw .badField(key, "expected a number, got \(v.typeName)") }
        guard range.contains(d) else {
            throw .invalid("\(key) must be in [\(range.lowerBound), \(range.upperBound)], got \(d)", param: key)
        }
        return d
    }

    /// A string or an array of strings (`stop`, TEI's `inputs`).
    func strings(_ key: String) throws(ServeError) -> [String]? {
        guard let v = value[key], !v.isNull else { return nil }
        if let s = v.string { return [s] }
        guard let items = v.array else { throw .badField(key, "expected a string or an array of strings, got \(v.typeName)") }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.string else { throw .badField("\(key)[\(i)]", "expected a string, got \(item.typeName)") }
            out.append(s)
        }
        return out
    }
}

/// The inputs of an embeddings or completions request: texts or token ids, one entry per input.
enum TextOrTokens: Equatable {
    case text(String)
    case tokens([Int32])

    /// OpenAI's forms: a string, an array of strings, an array of token ids, or an array of
    /// arrays of token ids. Ids must be in `0..<vocabSize`.
    static func parse(_ value: JSONValue?, field: String, vocabSize: Int) throws(ServeError) -> [TextOrTokens] {
        guard let value, !value.isNull else { throw .badField(field, "is required") }
        if let s = value.string { return [.text(s)] }
        guard let items = value.array else {
            throw .badField(field, "expected a string, an array of strings, an array of token ids or an array of arrays of ids, "
                + "got \(value.typeName)")
        }
        guard !items.isEmpty else { throw .invalid("\(field) is an empty array", param: field) }
        if items.allSatisfy({ if case .number = $0 { true } else { false } }) {
            return [.tokens(try ids(items, field: field, vocabSize: vocabSize))]
        }
        var out: [TextOrTokens] = []
        for (i, item) in items.enumerated() {
            if let s = item.string {
                out.append(.text(s))
            } else if let inner = item.array {
                guard !inner.isEmpty else { throw .invalid("\(field)[\(i)] is an empty array of token ids", param: field) }
                out.append(.tokens(try ids(inner, field: "\(field)[\(i)]", vocabSize: vocabSize)))
            } else {
                throw .badField("\(field)[\(i)]", "expected a string or an array of token ids, got \(item.typeName)")
            }
        }
        return out
    }

    private static func ids(_ items: [JSONValue], field: String, vocabSize: Int) throws(ServeError) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let id = item.int else { throw .badField("\(field)[\(i)]", "expected a token id, got \(item.serialized)") }
            guard id >= 0, id < vocabSize else {
                throw .invalid("\(field)[\(i)]: token id \(id) is outside the vocabulary (0..<\(vocabSize))", param: field)
            }
            out.append(Int32(id))
        }
        return out
    }
}
