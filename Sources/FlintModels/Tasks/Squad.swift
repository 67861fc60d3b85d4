import FlintCore
import FlintJSON

/// A SQuAD v1.1 or v2.0 file (`{"version", "data": [{"paragraphs": [{"context", "qas": [{"id",
/// "question", "answers": [{"text"}], "is_impossible"}]}]}]}`) and the official metrics
/// (evaluate-v1.1.py, evaluate-v2.0.py).
public struct Squad: Sendable {
    public struct Question: Sendable, Equatable {
        public var id: String
        public var question: String
        public var context: String
        /// The gold answers' texts (empty: unanswerable, v2.0).
        public var answers: [String]
    }

    public var version: String
    public var questions: [Question]
    /// v2.0: unanswerable questions exist, and the metrics add HasAns/NoAns.
    public var isVersion2: Bool

    /// Decodes a SQuAD file; `path` names it in errors.
    public init(json: JSONValue, path: String) throws(FlintError) {
        func bad(_ where: String, _ reason: String) -> FlintError { .invalidInput("\(path): \(`where`): \(reason)") }
        guard let data = json["data"]?.array else { throw bad("top level", "expected {\"version\", \"data\": [...]}") }
        version = json["version"]?.string ?? ""
        var questions: [Question] = []
        var impossible = false
        var seen = Set<String>()
        for (a, article) in data.enumerated() {
            guard let paragraphs = article["paragraphs"]?.array else { throw bad("data[\(a)]", "paragraphs is missing") }
            for (p, paragraph) in paragraphs.enumerated() {
                let at = "data[\(a)].paragraphs[\(p)]"
                guard let context = paragraph["context"]?.string, let qas = paragraph["qas"]?.array else {
                    throw bad(at, "expected {\"context\": ..., \"qas\": [...]}")
                }
                for (q, qa) in qas.enumerated() {
                    guard let id = qa["id"]?.string, let question = qa["question"]?.string, let answers = qa["answers"]?.array else {
                        throw bad("\(at).qas[\(q)]", "expected {\"id\", \"question\", \"answers\"}")
                    }
                    guard seen.insert(id).inserted else { throw bad("\(at).qas[\(q)]", "question id \"\(id)\" appears twice") }
                    var texts: [String] = []
                    for answer in answers {
                        guard let text = answer["text"]?.string else { throw bad("\(at).qas[\(q)]", "an answer has no text") }
                        texts.append(text)
                    }
                    if texts.isEmpty || qa["is_impossible"]?.bool == true { impossible = true }
                    questions.append(Question(id: id, question: question, context: context, answers: texts))
                }
            }
        }
        guard !questions.isEmpty else { throw bad("data", "no questions") }
        self.questions = questions
        isVersion2 = impossible || version.contains("2.")
    }

    /// The official metrics of `predictions` (question id -> answer text), as the official script
    /// of the file's version prints them: exact_match, f1 (percent), total; v2.0 adds
    /// HasAns_exact/f1/total and NoAns_exact/f1/total (when there are such questions). Questions
    /// without a prediction count as wrong (v1.1) or are left out (v2.0), as there.
    public func metrics(_ predictions: [String: String]) -> [(key: String, value: Double)] {
        isVersion2 ? metricsV2(predictions) : metricsV1(predictions)
    }

    func metricsV1(_ predictions: [String: String]) -> [(key: String, value: Double)] {
        var exact = 0.0, f1 = 0.0
        for q in questions {
            guard let pred = predictions[q.id], !q.answers.isEmpty else { continue }
            exact += q.answers.map { Self.normalize($0) == Self.normalize(pred) ? 1.0 : 0.0 }.max()!
            f1 += q.answers.map { Self.f1(gold: $0, prediction: pred, version2: false) }.max()!
        }
        let n = Double(questions.count)
        return [("exact_match", 100 * exact / n), ("f1", 100 * f1 / n), ("total", n)]
    }

    func metricsV2(_ predictions: [String: String]) -> [(key: String, value: Double)] {
        var scored: [(hasAnswer: Bool, exact: Double, f1: Double)] = []
        for q in questions {
            guard let pred = predictions[q.id] else { continue }
            let golds = q.answers.filter { !Self.normalize($0).isEmpty }
            let candidates = golds.isEmpty ? [""] : golds
            scored.append(
                (
                    !q.answers.isEmpty, candidates.map { Self.normalize($0) == Self.normalize(pred) ? 1.0 : 0.0 }.max()!,
                    candidates.map { Self.f1(gold: $0, prediction: pred, version2: true) }.max()!
                ))
        }
        func block(_ rows: [(hasAnswer: Bool, exact: Double, f1: Double)]) -> (Double, Double, Double) {
            let n = Double(rows.count)
            return (100 * rows.reduce(0) { $0 + $1.exact } / n, 100 * rows.reduce(0) { $0 + $1.f1 } / n, n)
        }
        guard !scored.isEmpty else { return [("exact_match", 0), ("f1", 0), ("total", 0)] }
        let (e, f, n) = block(scored)
        var out: [(key: String, value: Double)] = [("exact_match", e), ("f1", f), ("total", n)]
        for (name, want) in [("HasAns", true), ("NoAns", false)] {
            let rows = scored.filter { $0.hasAnswer == want }
            guard !rows.isEmpty else { continue }
            let (e, f, n) = block(rows)
            out += [("\(name)_exact", e), ("\(name)_f1", f), ("\(name)_total", n)]
        }
        return out
    }

    /// The official answer normalization: lower case, ASCII punctuation removed, the words a, an,
    /// the removed, whitespace collapsed.
    public static func normalize(_ s: String) -> String {
        let lowered = s.lowercased().filter { !($0.isASCII && $0.isPunctuationOrSymbolASCII) }
        // re.sub(r"\b(a|an|the)\b", " "): a whole run of word characters that is an article.
        var out = "", word = ""
        func flush() {
            out += ["a", "an", "the"].contains(word) ? " " : word
            word = ""
        }
        for c in lowered {
            if c.isLetter || c.isNumber || c == "_" { word.append(c) } else { flush(); out.append(c) }
        }
        flush()
        return out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// Token-overlap F1 of one gold answer and a prediction (v2.0: two empty answers agree).
    static func f1(gold: String, prediction: String, version2: Bool) -> Double {
        let g = normalize(gold).split(separator: " "), p = normalize(prediction).split(separator: " ")
        if version2, g.isEmpty || p.isEmpty { return g.isEmpty && p.isEmpty ? 1 : 0 }
        var counts: [Substring: Int] = [:]
        for t in g { counts[t, default: 0] += 1 }
        var same = 0
        for t in p where counts[t, default: 0] > 0 {
            counts[t]! -= 1
            same += 1
        }
        guard same > 0 else { return 0 }
        let precision = Double(same) / Double(p.count), recall = Double(same) / Double(g.count)
        return 2 * precision * recall / (precision + recall)
    }
}

extension Character {
    /// Python's `string.punctuation`: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~.
    var isPunctuationOrSymbolASCII: Bool {
        guard let v = asciiValue else { return false }
        return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
    }
}
