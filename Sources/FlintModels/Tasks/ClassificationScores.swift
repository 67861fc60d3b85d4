/// Turning classification logits into labelled scores, as transformers' `text-classification`
/// pipeline does (softmax, sigmoid or the raw logits; best label or the top k, best first).
public enum ScoreFunction: String, Sendable, CaseIterable {
    case softmax, sigmoid, none

    /// The pipeline's default: none for regression, sigmoid for multi-label or one label,
    /// softmax otherwise.
    public static func forModel(problemType: String?, numLabels: Int) -> ScoreFunction {
        if problemType == "regression" { return .none }
        if problemType == "multi_label_classification" || numLabels == 1 { return .sigmoid }
        return .softmax
    }

    /// `logits` `[labels]` -> scores `[labels]`, in Double (the inputs are fp32 logits).
    public func apply(_ logits: some Collection<Float>) -> [Double] {
        switch self {
        case .softmax: return Self.softmax(logits)
        case .sigmoid: return logits.map { Self.sigmoid(Double($0)) }
        case .none: return logits.map(Double.init)
        }
    }

    /// Softmax shifted by the maximum, as numpy's in the pipelines.
    public static func softmax(_ logits: some Collection<Float>) -> [Double] {
        guard let top = logits.max() else { return [] }
        let e = logits.map { exp(Double($0) - Double(top)) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    public static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
}

/// One label and its score.
public struct LabelScore: Sendable, Equatable {
    public var label: String
    public var score: Double

    public init(label: String, score: Double) {
        self.label = label
        self.score = score
    }

    /// The best label (the first of equal maxima, as numpy's argmax).
    public static func best(_ scores: [Double], labels: [String]) -> LabelScore? {
        guard let i = scores.indices.max(by: { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) }) else { return nil }
        return LabelScore(label: labels[i], score: scores[i])
    }

    /// The `topK` best labels, best first; equal scores keep label order (Python's stable sort).
    public static func ranked(_ scores: [Double], labels: [String], topK: Int?) -> [LabelScore] {
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return order.prefix(topK ?? order.count).map { LabelScore(label: labels[$0], score: scores[$0]) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
