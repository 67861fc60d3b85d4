import ArgumentParser
import FlintJSON

/// Inputs shared by `flint classify`, `rerank` and `tag`: texts on the command line or a JSON Lines
/// file, and the JSON each prints.
enum TaskInputs {
    /// `TEXT...` or `--jsonl FILE` lines `{"text"}` (with `pairs`, also `{"text", "pair"}`).
    static func read(texts: [String], jsonl: String?, pairs: Bool) throws -> [(text: String, pair: String?)] {
        guard let jsonl else { return texts.map { ($0, nil) } }
        let inputs = try Console.readJSONLines(jsonl).map { line, value -> (text: String, pair: String?) in
            guard let t = value["text"]?.string else {
                throw CommandError("\(jsonl):\(line): expected {\"text\": ...}" + (pairs ? " or {\"text\": ..., \"pair\": ...}" : ""))
            }
            guard let p = value["pair"], !p.isNull else { return (t, nil) }
            guard pairs, let pair = p.string else {
                throw CommandError("\(jsonl):\(line): " + (pairs ? "\"pair\" must be a string" : "this command takes no \"pair\""))
            }
            return (t, pair)
        }
        if inputs.isEmpty { throw CommandError("\(jsonl): no inputs") }
        return inputs
    }

    static func validate(texts: [String], jsonl: String?) throws {
        if jsonl == nil && texts.isEmpty { throw ValidationError("give TEXT... or --jsonl FILE") }
        if jsonl != nil && !texts.isEmpty { throw ValidationError("give either TEXT... or --jsonl FILE, not both") }
    }
}
